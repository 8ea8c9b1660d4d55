"""Hand-made declarations for tests: small, readable, no files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tallyroom.schemas import Candidate, Declaration, NightOpened, PreviousResult, SeatBaseline

T0 = datetime(2024, 7, 4, 23, 30, tzinfo=timezone(timedelta(hours=1)))


def cand(name: str, party: str, votes: int, sitting: bool = False) -> Candidate:
    return Candidate(name=name, party=party, votes=votes, sitting_mp=sitting)


def decl(
    ons_id: str,
    *candidates: Candidate,
    revision: int = 1,
    election: str = "test",
    minutes: int = 0,
    name: str | None = None,
    electorate: int | None = None,
) -> Declaration:
    return Declaration(
        election=election,
        ons_id=ons_id,
        revision=revision,
        constituency=name or f"Seat {ons_id}",
        declared_at=T0 + timedelta(minutes=minutes),
        electorate=electorate,
        candidates=list(candidates),
    )


def night(
    held: dict[str, str | None], election: str = "test", previous: dict[str, PreviousResult] | None = None
) -> NightOpened:
    previous = previous or {}
    return NightOpened(
        election=election,
        opened_at=T0,
        seats=[
            SeatBaseline(ons_id=k, constituency=f"Seat {k}", held_by=v, previous=previous.get(k))
            for k, v in held.items()
        ],
    )


def before(turnout: float | None = None, valid_votes: int | None = None, **shares: float) -> PreviousResult:
    """A seat's previous figures: before(0.6, Lab=0.5, Con=0.3)."""
    return PreviousResult(shares=shares, turnout=turnout, valid_votes=valid_votes)


def seat_id(n: int) -> str:
    return f"E14{n:06d}"
