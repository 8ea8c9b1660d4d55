"""Hand-made declarations for tests: small, readable, no files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo

from tallyroom.schemas import Alert, AlertKind, Candidate, Declaration, NightOpened, PreviousResult, SeatBaseline
from tallyroom.schemas.alerts import ALERT_KINDS

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


def _plain_value(field: FieldInfo) -> Any:
    """The plainest value a fact can take: null if it may be, else its lowest number, "X", false, empty."""
    annotation = field.annotation
    if type(None) in get_args(annotation):
        return None
    origin = get_origin(annotation) or annotation
    if origin is Literal:
        return get_args(annotation)[0]
    lowest = next((bound.ge for bound in field.metadata if hasattr(bound, "ge")), 0)
    return {str: "X", int: lowest, float: float(lowest), bool: False, dict: {}, list: []}[origin]


def alert(n: int, kind: AlertKind, headline: str, election: str = "night", **facts: Any) -> Alert:
    """An alert of ``kind`` with plain facts of its kind's model, ``facts`` overriding them."""
    model = ALERT_KINDS[kind].facts
    values = {name: _plain_value(field) for name, field in model.model_fields.items()}
    return Alert(
        id=f"a{n}",
        kind=kind,
        election=election,
        headline=headline,
        facts=model(**(values | facts)),
        occurred_at=datetime(2024, 7, 5, 0, n, tzinfo=UTC),
    )
