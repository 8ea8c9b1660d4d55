"""The count: what each event on the declarations topic does to an election's state.

Pure: the Faust agent calls ``Count.declare``, sends what comes out, then stores
the new seat result in its table. The count keeps each seat's latest result
itself (the table is its durable copy, replayed into ``open_night`` on recovery),
so that a declaration never waits for a table read or a re-validation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tallyroom.schemas import Alert, Declaration, NightOpened, Provenance, RecountNotice, ResultUpdate, SeatResult
from tallyroom.streams.rules import RuleConfig, evaluate, recount, seat_change
from tallyroom.streams.tally import Tally, seat_result


@dataclass(frozen=True)
class RecordAt:
    """Where an event was read: its Kafka topic, partition and offset."""

    topic: str
    partition: int
    offset: int


def provenance(event: Declaration | RecountNotice, at: RecordAt | None) -> Provenance | None:
    """Who entered ``event`` and which record it was, for the seat result and alerts it leads to."""
    if at is None:
        return None
    return Provenance(
        entered_by=event.entered_by, source=event.source, topic=at.topic, partition=at.partition, offset=at.offset
    )


def _traced(alerts: list[Alert], origin: Provenance | None) -> list[Alert]:
    return alerts if origin is None else [alert.model_copy(update={"provenance": origin}) for alert in alerts]


@dataclass
class Outcome:
    alerts: list[Alert] = field(default_factory=list)
    update: ResultUpdate | None = None
    rejected: str | None = None
    ignored: str | None = None
    stored: bytes | None = None  # the seat's new result as kept: SeatResult JSON


@dataclass
class Book:
    """One election: its night (seats and baseline) and its running tally."""

    night: NightOpened
    tally: Tally
    baseline: dict[str, str | None]
    names: dict[str, str]
    parties_holding_seats: frozenset[str]
    # Latest accepted result by ONS id, kept as SeatResult JSON: 10,000 seats of the
    # bench's synthetic night take 82 MB as models and 12 MB as JSON (tracemalloc), and
    # the same bytes are the seat table's value. Only a correction parses its predecessor.
    results: dict[str, bytes] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)

    def result(self, ons_id: str) -> SeatResult | None:
        raw = self.results.get(ons_id)
        return SeatResult.model_validate_json(raw) if raw is not None else None

    def keep(self, seat: SeatResult, raw: bytes | None = None) -> bytes:
        raw = raw if raw is not None else seat.model_dump_json().encode()
        self.results[seat.ons_id] = raw
        self.revisions[seat.ons_id] = seat.revision
        return raw

    @classmethod
    def open(cls, night: NightOpened) -> Book:
        baseline = {s.ons_id: s.held_by for s in night.seats}
        return cls(
            night=night,
            tally=Tally.open(night.election, baseline),
            baseline=baseline,
            names={s.ons_id: s.constituency for s in night.seats},
            parties_holding_seats=frozenset(p for p in baseline.values() if p),
        )


class Count:
    def __init__(self, config: RuleConfig | None = None):
        self.config = config or RuleConfig()
        self.books: dict[str, Book] = {}

    def open_night(self, night: NightOpened, seats: Iterable[SeatResult] = (), *, stored: Iterable[bytes] = ()) -> None:
        """Open (or re-open) an election and replay the seat results already held:
        as models, or ``stored`` as the JSON a seat table holds (kept as they are)."""
        book = Book.open(night)
        pairs = [(seat, None) for seat in seats] + [(SeatResult.model_validate_json(raw), raw) for raw in stored]
        for seat, raw in pairs:
            if seat.ons_id in book.baseline and seat.revision > book.revisions.get(seat.ons_id, 0):
                book.tally.apply(book.result(seat.ons_id), seat)
                book.keep(seat, raw)
        self.books[night.election] = book

    def held(self, election: str, ons_id: str) -> SeatResult | None:
        """The seat's latest accepted result, if it has one."""
        book = self.books.get(election)
        return book.result(ons_id) if book else None

    def snapshot(self, election: str):
        return self.books[election].tally.snapshot()

    def declare(self, declaration: Declaration, snapshot: bool = True, at: RecordAt | None = None) -> Outcome:
        """Count one declaration, read from ``at``. ``snapshot=False`` leaves the tally off the update,
        for a caller that attaches one snapshot per batch (see ``tallyroom.streams.app``)."""
        book = self.books.get(declaration.election)
        if book is None:
            return Outcome(rejected=f"election {declaration.election!r} has not been opened: send its night first")
        if declaration.ons_id not in book.baseline:
            return Outcome(
                rejected=(
                    f"seat {declaration.ons_id} is not one of the {book.tally.total} seats of {declaration.election}"
                )
            )
        held_revision = book.revisions.get(declaration.ons_id, 0)
        if declaration.revision <= held_revision:
            # Re-delivery or an out-of-date revision: the seat already holds this or newer.
            return Outcome(ignored=f"revision {declaration.revision} <= held revision {held_revision}")
        previous = book.result(declaration.ons_id)
        origin = provenance(declaration, at)
        seat = seat_result(declaration, book.baseline[declaration.ons_id])
        if origin is not None:
            seat = seat.model_copy(update={"provenance": origin})
        change = seat_change(book.tally, previous, seat, book.parties_holding_seats)
        stored = book.keep(seat)
        alerts = _traced(evaluate(change, self.config), origin)
        tally = book.tally.snapshot() if snapshot else None
        update = ResultUpdate(election=seat.election, alerts=alerts, seat=seat, tally=tally)
        return Outcome(alerts=alerts, update=update, stored=stored)

    def recount(self, notice: RecountNotice, at: RecordAt | None = None) -> Outcome:
        book = self.books.get(notice.election)
        if book is None:
            return Outcome(rejected=f"election {notice.election!r} has not been opened: send its night first")
        if notice.ons_id not in book.baseline:
            return Outcome(rejected=f"seat {notice.ons_id} is not one of the seats of {notice.election}")
        alerts = _traced([recount(notice, book.names.get(notice.ons_id))], provenance(notice, at))
        return Outcome(alerts=alerts, update=ResultUpdate(election=notice.election, alerts=alerts))
