"""The count: what each event on the declarations topic does to an election's state.

Pure: the Faust agent calls ``Count.declare``, sends what comes out, then stores
the new seat result in its table. The count keeps each seat's latest result
itself (the table is its durable copy, replayed into ``open_night`` on recovery),
so that a declaration never waits for a table read or a re-validation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from tallyroom.schemas import (
    Alert,
    Declaration,
    NightOpened,
    PreviousResult,
    RecountNotice,
    ResultUpdate,
    SeatResult,
    TallySnapshot,
)
from tallyroom.schemas.common import read_stored
from tallyroom.streams.rules import RuleConfig, SeatChange, evaluate, recount, seat_change
from tallyroom.streams.tally import Tally, seat_result


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
    previous: dict[str, PreviousResult | None]
    names: dict[str, str]
    parties_holding_seats: frozenset[str]
    # Latest accepted result by ONS id, kept as SeatResult JSON: 10,000 seats of the
    # bench's synthetic night take 82 MB as models and 12 MB as JSON (tracemalloc), and
    # the same bytes are the seat table's value. Only a correction parses its predecessor.
    results: dict[str, bytes] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    # Stored results this code cannot read, by ONS id: their revisions. The seat counts as
    # undeclared, but its revision stays in the tally's version, so the version a rebuild
    # derives never falls below one already published (readers keep only newer tallies).
    quarantined: dict[str, int] = field(default_factory=dict)

    def result(self, ons_id: str) -> SeatResult | None:
        raw = self.results.get(ons_id)
        return read_stored(SeatResult, raw) if raw is not None else None

    def keep(self, seat: SeatResult, raw: bytes | None = None) -> bytes:
        raw = raw if raw is not None else seat.model_dump_json().encode()
        self.results[seat.ons_id] = raw
        self.revisions[seat.ons_id] = seat.revision
        return raw

    @classmethod
    def open(cls, night: NightOpened) -> Book:
        baseline = {s.ons_id: s.held_by for s in night.seats}
        previous = {s.ons_id: s.previous for s in night.seats}
        return cls(
            night=night,
            tally=Tally.open(night.election, baseline, previous),
            baseline=baseline,
            previous=previous,
            names={s.ons_id: s.constituency for s in night.seats},
            parties_holding_seats=frozenset(p for p in baseline.values() if p),
        )


Evaluate = Callable[[SeatChange, RuleConfig], list[Alert]]


class Count:
    def __init__(self, config: RuleConfig | None = None, evaluate: Evaluate = evaluate):
        self.config = config or RuleConfig()
        self.evaluate = evaluate  # the rules; a test may wrap them (see tallyroom.streams.faults)
        self.books: dict[str, Book] = {}

    def open_night(
        self,
        night: NightOpened,
        seats: Iterable[SeatResult] = (),
        *,
        stored: Mapping[str, bytes] | Iterable[bytes] = (),
    ) -> dict[str, str]:
        """Open (or re-open) an election and replay the seat results already held: as
        models, or ``stored`` as the JSON a seat table holds, kept as it is (by table
        key, or a plain sequence, whose keys are then its positions).

        A stored result this code cannot read is left out of the count and returned
        (key -> why) for the caller to quarantine; the rest of the election opens.
        """
        book = Book.open(night)
        pairs: list[tuple[SeatResult, bytes | None]] = [(seat, None) for seat in seats]
        unreadable: dict[str, str] = {}
        keyed = stored if isinstance(stored, Mapping) else {str(i): raw for i, raw in enumerate(stored)}
        for key, raw in keyed.items():
            try:
                pairs.append((read_stored(SeatResult, raw), raw))
            except ValidationError as exc:
                unreadable[key] = f"unreadable stored seat result: {_first_error(exc)}"
                _hold_revision(book, raw)
        for seat, raw in pairs:
            if seat.ons_id in book.baseline and seat.revision > book.revisions.get(seat.ons_id, 0):
                book.tally.apply(book.result(seat.ons_id), seat)
                book.keep(seat, raw)
        self.books[night.election] = book
        return unreadable

    def held(self, election: str, ons_id: str) -> SeatResult | None:
        """The seat's latest accepted result, if it has one."""
        book = self.books.get(election)
        return book.result(ons_id) if book else None

    def snapshot(self, election: str) -> TallySnapshot:
        return self.books[election].tally.snapshot()

    def declare(self, declaration: Declaration, snapshot: bool = True) -> Outcome:
        """Count one declaration. ``snapshot=False`` leaves the tally off the update,
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
        seat = seat_result(declaration, book.baseline[declaration.ons_id], book.previous[declaration.ons_id])
        as_of = book.tally.as_of
        change = seat_change(book.tally, previous, seat, book.parties_holding_seats)
        try:
            alerts = self.evaluate(change, self.config)
        except Exception:
            # A rule that fails is this declaration's fault alone: the count is left as
            # it was, so the caller can dead-letter the declaration and go on exactly.
            book.tally.revert(previous, seat, as_of)
            raise
        stored = book.keep(seat)
        if (quarantined := book.quarantined.pop(seat.ons_id, None)) is not None:
            book.tally.version -= quarantined  # the readable result replaces the unreadable one
        tally = book.tally.snapshot() if snapshot else None
        update = ResultUpdate(election=seat.election, alerts=alerts, seat=seat, tally=tally)
        return Outcome(alerts=alerts, update=update, stored=stored)

    def recount(self, notice: RecountNotice) -> Outcome:
        book = self.books.get(notice.election)
        if book is None:
            return Outcome(rejected=f"election {notice.election!r} has not been opened: send its night first")
        if notice.ons_id not in book.baseline:
            return Outcome(rejected=f"seat {notice.ons_id} is not one of the seats of {notice.election}")
        alerts = [recount(notice, book.names.get(notice.ons_id))]
        return Outcome(alerts=alerts, update=ResultUpdate(election=notice.election, alerts=alerts))


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else None
    if first is None:
        return str(exc)
    return f"{'.'.join(str(p) for p in first['loc']) or 'value'}: {first['msg']}"


def _hold_revision(book: Book, raw: bytes) -> None:
    """Keep an unreadable stored result's revision, when at least that much can be read."""
    try:
        value = json.loads(raw)
        ons_id, revision = value["ons_id"], value["revision"]
    except (ValueError, TypeError, KeyError):
        return
    if isinstance(ons_id, str) and type(revision) is int and ons_id in book.baseline and revision > 0:
        if revision > book.quarantined.get(ons_id, 0):
            book.tally.version += revision - book.quarantined.get(ons_id, 0)
            book.quarantined[ons_id] = revision
            book.revisions[ons_id] = max(book.revisions.get(ons_id, 0), revision)
