"""Hand-made declarations for tests: small, readable, no files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tallyroom.schemas import Candidate, Declaration, NightOpened, SeatBaseline

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
) -> Declaration:
    return Declaration(
        election=election,
        ons_id=ons_id,
        revision=revision,
        constituency=name or f"Seat {ons_id}",
        declared_at=T0 + timedelta(minutes=minutes),
        candidates=list(candidates),
    )


def night(held: dict[str, str | None], election: str = "test") -> NightOpened:
    return NightOpened(
        election=election,
        opened_at=T0,
        seats=[SeatBaseline(ons_id=k, constituency=f"Seat {k}", held_by=v) for k, v in held.items()],
    )


def seat_id(n: int) -> str:
    return f"E14{n:06d}"
