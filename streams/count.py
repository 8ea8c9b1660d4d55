"""The count: what each event on the declarations topic does to an election's state.

Pure: the worker calls ``Count.count``, sends what comes out, then stores
the new seat result in its table. The count keeps each seat's latest result
itself (the table is its durable copy, replayed into ``open_night`` on recovery),
so that a declaration never waits for a table read or a re-validation.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from tallyroom.schemas import (
    Alert,
    CandidateResult,
    Declaration,
    NightOpened,
    PreviousResult,
    Provenance,
    RecountNotice,
    ResultUpdate,
    Rush,
    SeatEvent,
    SeatResult,
    TallySnapshot,
    Withdrawal,
)
from tallyroom.schemas.common import json_bytes, read_stored
from tallyroom.streams.live_alerts import rush_alert, rush_contradicted, withdrawn_alert
from tallyroom.streams.rules import (
    RaisedBySeat,
    RuleConfig,
    SeatChange,
    evaluate,
    majority_reached,
    recount,
    seat_change,
)
from tallyroom.streams.tally import Tally, seat_result


@dataclass(frozen=True)
class RecordAt:
    """Where an event was read: its Kafka topic, partition and offset."""

    topic: str
    partition: int
    offset: int


def provenance(event: SeatEvent, at: RecordAt | None) -> Provenance | None:
    """Who entered ``event`` and which record it was, for the seat result and alerts it leads to."""
    if at is None:
        return None
    return Provenance(
        entered_by=event.entered_by, source=event.source, topic=at.topic, partition=at.partition, offset=at.offset
    )


def _traced(alerts: list[Alert], origin: Provenance | None) -> list[Alert]:
    """The alerts, each with ``origin`` as its provenance. The rules build a seat's alerts with
    the seat's provenance, which is already ``origin``: only the others are copied."""
    if origin is None:
        return alerts
    return [
        alert
        if alert.provenance is origin or alert.provenance == origin
        else alert.model_copy(update={"provenance": origin})
        for alert in alerts
    ]


@dataclass
class Outcome:
    update: ResultUpdate | None = None
    rejected: str | None = None
    ignored: str | None = None
    stored: bytes | None = None  # the seat's new result as kept: SeatResult JSON

    @property
    def alerts(self) -> list[Alert]:
        """The alerts raised, in order: the ones the update carries."""
        return self.update.alerts if self.update is not None else []


class RecentResults:
    """The latest results of the seats whose results were replaced most recently, as models, for every
    election of a count.

    A correction (or a withdrawal) reads its predecessor from here instead of parsing its JSON. Only
    a seat whose result has already been replaced once is kept (``Book.keep``): a night's first
    results are most of its declarations and are never read back. A model is about 12.7 kB where
    its JSON is 1.6 kB (tracemalloc, the bench's synthetic seats), so at most ``limit`` are kept,
    the least recently replaced dropped first. An entry counts only while the book still holds the
    very bytes it was kept with, so one left behind by a rebuild or a re-opened election is never read.
    """

    def __init__(self, limit: int = 1024):
        self.limit = limit
        self.models: OrderedDict[tuple[str, str], tuple[bytes, SeatResult]] = OrderedDict()

    def put(self, election: str, raw: bytes, seat: SeatResult) -> None:
        key = (election, seat.ons_id)
        self.models.pop(key, None)
        if self.limit > 0:
            self.models[key] = (raw, seat)
            if len(self.models) > self.limit:
                self.models.popitem(last=False)

    def get(self, election: str, ons_id: str, raw: bytes) -> SeatResult | None:
        kept = self.models.get((election, ons_id))
        return kept[1] if kept is not None and kept[0] is raw else None


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
    # the same bytes are the seat table's value. A correction parses its predecessor only
    # when ``RecentResults`` no longer holds it as a model.
    results: dict[str, bytes] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)
    # Stored results this code cannot read, by ONS id: their tally weight. The seat counts as
    # undeclared, but its weight stays in the tally's version, so the version a rebuild
    # derives never falls below one already published (readers keep only newer tallies).
    quarantined: dict[str, int] = field(default_factory=dict)
    # What the seat rules raised for each seat's latest declared revision (``rules.RaisedBySeat``): a
    # correction then skips running them on the result it replaces. Empty after a rebuild: the rules
    # run again then, as they always may.
    raised: RaisedBySeat = field(default_factory=dict)
    recent: RecentResults = field(default_factory=RecentResults)  # shared by the books of a count

    def result(self, ons_id: str) -> SeatResult | None:
        raw = self.results.get(ons_id)
        if raw is None:
            return None
        return self.recent.get(self.night.election, ons_id, raw) or read_stored(SeatResult, raw)

    def keep(self, seat: SeatResult, raw: bytes | None = None, *, replaced: bool = False) -> bytes:
        """Hold ``seat`` as the seat's latest result; ``replaced``: it replaced an earlier one, and
        the seat is kept as a model too (``RecentResults``: a seat that has changed once is the one
        likely to change again)."""
        raw = raw if raw is not None else json_bytes(seat)
        self.results[seat.ons_id] = raw
        self.revisions[seat.ons_id] = seat.revision
        if replaced:
            self.recent.put(self.night.election, raw, seat)
        return raw

    @classmethod
    def open(cls, night: NightOpened, recent: RecentResults | None = None) -> Book:
        baseline = {s.ons_id: s.held_by for s in night.seats}
        previous = {s.ons_id: s.previous for s in night.seats}
        return cls(
            night=night,
            tally=Tally.open(night.election, baseline, previous),
            baseline=baseline,
            previous=previous,
            names={s.ons_id: s.constituency for s in night.seats},
            parties_holding_seats=frozenset(p for p in baseline.values() if p),
            recent=recent if recent is not None else RecentResults(),
        )


Evaluate = Callable[[SeatChange, RuleConfig], list[Alert]]


class Count:
    def __init__(self, config: RuleConfig | None = None, evaluate: Evaluate = evaluate):
        self.config = config or RuleConfig()
        self.evaluate = evaluate  # the rules; a test may wrap them (see tallyroom.streams.faults)
        self.books: dict[str, Book] = {}
        self.recent = RecentResults()

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
        book = Book.open(night, self.recent)
        pairs: list[tuple[SeatResult, bytes | None]] = [(seat, None) for seat in seats]
        unreadable: dict[str, str] = {}
        keyed = stored if isinstance(stored, Mapping) else {str(i): raw for i, raw in enumerate(stored)}
        for key, raw in keyed.items():
            try:
                pairs.append((read_stored(SeatResult, raw), raw))
            except ValidationError as exc:
                unreadable[key] = f"unreadable stored seat result: {_first_error(exc)}"
                _hold_weight(book, raw)
        kept: dict[str, SeatResult] = {}
        for seat, raw in pairs:
            # By weight, not revision: a rush holds the revision before the result's (0 for none).
            held = kept.get(seat.ons_id)
            if seat.ons_id in book.baseline and (held is None or seat.tally_weight > held.tally_weight):
                book.tally.apply(held, seat)
                book.keep(seat, raw)
                kept[seat.ons_id] = seat
        self.books[night.election] = book
        return unreadable

    def held(self, election: str, ons_id: str) -> SeatResult | None:
        """The seat's latest accepted result, if it has one."""
        book = self.books.get(election)
        return book.result(ons_id) if book else None

    def snapshot(self, election: str) -> TallySnapshot:
        return self.books[election].tally.snapshot()

    def snapshot_json(self, election: str) -> bytes:
        """The election's tally as ``TallySnapshot`` JSON, without building the model (once per batch)."""
        return self.books[election].tally.snapshot_json()

    def count(self, event: Declaration | RecountNotice | Rush | Withdrawal, at: RecordAt | None = None) -> Outcome:
        """Count any seat event read from ``at`` (the tally is left for the caller to attach once per batch)."""
        if isinstance(event, Declaration):
            return self.declare(event, snapshot=False, at=at)
        if isinstance(event, Rush):
            return self.rush(event, at, snapshot=False)
        if isinstance(event, Withdrawal):
            return self.withdraw(event, at, snapshot=False)
        return self.recount(event, at)

    def _seat_book(self, event: Rush | Withdrawal) -> tuple[Book | None, str | None]:
        book = self.books.get(event.election)
        if book is None:
            return None, f"election {event.election!r} has not been opened: send its night first"
        if event.ons_id not in book.baseline:
            return None, f"seat {event.ons_id} is not one of the {book.tally.total} seats of {event.election}"
        return book, None

    def _changed(
        self,
        book: Book,
        previous: SeatResult | None,
        seat: SeatResult,
        alerts_of: Callable[[SeatChange], list[Alert]],
        snapshot: bool,
    ) -> Outcome:
        as_of = book.tally.as_of
        change = seat_change(book.tally, previous, seat, book.parties_holding_seats)
        try:
            alerts = _traced(alerts_of(change), seat.provenance)
        except Exception:
            book.tally.revert(previous, seat, as_of)  # as in declare: the count is left as it was
            raise
        stored = book.keep(seat, replaced=previous is not None)
        self._replaces_quarantined(book, seat)
        tally = book.tally.snapshot() if snapshot else None
        update = ResultUpdate(election=seat.election, alerts=alerts, seat=seat, tally=tally)
        return Outcome(update=update, stored=stored)

    def rush(self, rush: Rush, at: RecordAt | None = None, snapshot: bool = True) -> Outcome:
        """A winner flashed before the figures: counted in seats (and gains), not in declared or votes."""
        book, rejected = self._seat_book(rush)
        if book is None:
            return Outcome(rejected=rejected)
        held = book.result(rush.ons_id)
        if held is not None and held.status != "withdrawn":
            # Re-delivered, or late: the seat already has its rush or its figures.
            return Outcome(ignored=f"seat {rush.ons_id} already has a {held.status} result (revision {held.revision})")
        winner = CandidateResult(name=rush.candidate or rush.party, party=rush.party, votes=0, share=0.0)
        seat = SeatResult(
            election=rush.election,
            ons_id=rush.ons_id,
            constituency=book.names[rush.ons_id],
            revision=held.revision if held else 0,  # the result to follow must be newer
            declared_at=rush.announced_at,
            winner=winner,
            runner_up=None,
            majority=0,
            valid_votes=0,
            held_by=book.baseline[rush.ons_id],
            party_votes={},
            candidates=[winner],
            provenance=provenance(rush, at),
            status="rush",
            interim_steps=(held.interim_steps if held else 0) + 1,
        )
        # A rush counts the seat: it can be the one that takes a party over the majority line.
        return self._changed(
            book, held, seat, lambda change: [rush_alert(seat), *majority_reached(change, self.config)], snapshot
        )

    def withdraw(self, withdrawal: Withdrawal, at: RecordAt | None = None, snapshot: bool = True) -> Outcome:
        """A result withdrawn: the seat counts for nothing until a later revision declares it again."""
        book, rejected = self._seat_book(withdrawal)
        if book is None:
            return Outcome(rejected=rejected)
        held = book.result(withdrawal.ons_id)
        if held is not None and withdrawal.revision <= held.revision:
            return Outcome(ignored=f"revision {withdrawal.revision} <= held revision {held.revision}")
        if held is None or held.status == "withdrawn":
            return Outcome(rejected=f"seat {withdrawal.ons_id} of {withdrawal.election} has no result to withdraw")
        seat = held.model_copy(
            update={
                "status": "withdrawn",
                "revision": withdrawal.revision,
                "withdrawn_reason": withdrawal.reason,
                "declared_at": withdrawal.withdrawn_at,
                "provenance": provenance(withdrawal, at),
                "interim_steps": held.interim_steps + 1,
            }
        )
        return self._changed(book, held, seat, lambda change: [withdrawn_alert(seat, held)], snapshot)

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
        seat = seat_result(
            declaration,
            book.baseline[declaration.ons_id],
            book.previous[declaration.ons_id],
            provenance=origin,
            interim_steps=previous.interim_steps if previous is not None else 0,  # the tally version keeps growing
        )
        as_of = book.tally.as_of
        change = seat_change(book.tally, previous, seat, book.parties_holding_seats, book.raised)
        try:
            if previous is not None and previous.status != "declared":
                # After a rush or a withdrawal this is the seat's first result as far as the rules go:
                # its gain, marginal, ... are raised now. Only a rush's wrong winner is a correction.
                alerts = self.evaluate(replace(change, previous=None), self.config)
                if previous.status == "rush" and previous.winning_party != seat.winning_party:
                    alerts.append(rush_contradicted(previous, seat))
            else:
                alerts = self.evaluate(change, self.config)
        except Exception:
            # A rule that fails is this declaration's fault alone: the count is left as
            # it was, so the caller can dead-letter the declaration and go on exactly.
            book.tally.revert(previous, seat, as_of)
            raise
        stored = book.keep(seat, replaced=previous is not None)
        self._replaces_quarantined(book, seat)
        alerts = _traced(alerts, origin)
        tally = book.tally.snapshot() if snapshot else None
        update = ResultUpdate(election=seat.election, alerts=alerts, seat=seat, tally=tally)
        return Outcome(update=update, stored=stored)

    @staticmethod
    def _replaces_quarantined(book: Book, seat: SeatResult) -> None:
        if (weight := book.quarantined.pop(seat.ons_id, None)) is not None:
            book.tally.version -= weight  # a readable result now stands for the unreadable one

    def recount(self, notice: RecountNotice, at: RecordAt | None = None) -> Outcome:
        book = self.books.get(notice.election)
        if book is None:
            return Outcome(rejected=f"election {notice.election!r} has not been opened: send its night first")
        if notice.ons_id not in book.baseline:
            return Outcome(rejected=f"seat {notice.ons_id} is not one of the seats of {notice.election}")
        alerts = _traced([recount(notice, book.names.get(notice.ons_id))], provenance(notice, at))
        return Outcome(update=ResultUpdate(election=notice.election, alerts=alerts))


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else None
    if first is None:
        return str(exc)
    return f"{'.'.join(str(p) for p in first['loc']) or 'value'}: {first['msg']}"


def _hold_weight(book: Book, raw: bytes) -> None:
    """Keep an unreadable stored result's revision and tally weight, when at least that much can be read."""
    try:
        value = json.loads(raw)
        ons_id, revision, steps = value["ons_id"], value["revision"], value.get("interim_steps", 0)
    except (ValueError, TypeError, KeyError, AttributeError):
        return
    if not (isinstance(ons_id, str) and ons_id in book.baseline and type(revision) is int and type(steps) is int):
        return
    weight = revision + steps
    if weight > book.quarantined.get(ons_id, 0):
        book.tally.version += weight - book.quarantined.get(ons_id, 0)
        book.quarantined[ons_id] = weight
        book.revisions[ons_id] = max(book.revisions.get(ons_id, 0), revision)
