"""The worker: the pure ``tallyroom.streams.count.Count`` wired to Kafka by Faust, built on call.

``build_worker(settings)`` returns a ``Worker``: the Faust app, its topics and
tables, the count, and the agent. The agent hands each batch to a ``Tallier``,
which does the work without Faust (unit-tested with a fake producer, profiled by
``bench.hotpath``). Delivery is at-least-once with idempotent effects:

1. each event's alerts and result update are sent and *acknowledged by the
   broker* before the seat table is written, so a crash can never leave a seat
   stored whose alerts were lost;
2. a re-delivered declaration finds its revision already held and is ignored,
   so nothing is counted twice; alert ids are deterministic, and the Redis sink
   drops an id it has seen;
3. the in-memory tally is rebuilt from the seat table after every rebalance
   (tables are restored from their changelogs first), so it is always exactly
   the sum of the latest result of each seat.

A failure never skips (README, "What a failure does"):

- an exception while counting one event is that event's fault: it is
  dead-lettered with the exception as its reason, and the batch goes on;
- a stored record the running code cannot read is quarantined: dead-lettered
  with its changelog topic, partition and offset, left out of the count, and kept
  in the table for a release that can read it;
- any other failure (a send or store the broker does not acknowledge, an error
  outside one event) ends the process at once with ``EXIT_WORKER_FAULT``, before
  Faust can acknowledge or commit the batch (``faust_compat.exit_now``), so the
  next worker counts it again;
- records Faust never hands the agent end the process the same way: a hole in the
  offsets it is handed (``Positions``), or, with nothing after them, a partition
  whose end stays past the next offset to count (``StallWatch``).

Faust's own exactly_once guarantee is not used: see faust-streaming #177, #517, #323.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from pydantic import ValidationError

from tallyroom.metrics import WorkerMetrics, worker_metrics
from tallyroom.schemas import DeadLetter, NightOpened, NightSeat, parse_event
from tallyroom.schemas.common import SCHEMA_VERSION, json_bytes, read_stored
from tallyroom.schemas.limits import Breach, Limits, event_breaches, payload_breach
from tallyroom.settings import Settings
from tallyroom.streams import faults, faust_compat
from tallyroom.streams.count import Count, Evaluate, Outcome, RecordAt
from tallyroom.streams.partitioning import election_partition
from tallyroom.streams.rules import RuleConfig, evaluate

log = logging.getLogger("tallyroom.worker")
RAW_LIMIT = 2000
EXIT_WORKER_FAULT = 70  # EX_SOFTWARE: `tallyroom serve` restarts a worker that ends so
LEAVE_GROUP_SECONDS = 2.0  # a faulted worker's last word to the broker; a broker that is away costs this


@dataclass(frozen=True)
class Received:
    """One record from the declarations topic, as the tallier needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | str | None
    value: bytes | None
    event: Any = None  # the Faust event it came from, for a table write that must name it

    @classmethod
    def of(cls, event: faust.types.EventT) -> Received:
        message = event.message
        return cls(message.topic, message.partition, message.offset, event.key, event.value, event)


class SendRecord(Protocol):
    """Hand a record to the producer; await the result for the broker's acknowledgement."""

    def __call__(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Awaitable[Awaitable[Any]]: ...


class TableAccess(Protocol):
    """The worker's two tables, as the tallier reads and writes them."""

    @property
    def seats(self) -> MutableMapping[str, bytes]: ...  # "election/ons_id" -> SeatResult JSON (the local store)
    @property
    def seats_changelog(self) -> str: ...
    @property
    def nights_changelog(self) -> str: ...

    def nights(self) -> Iterable[tuple[str, Any]]: ...
    def night(self, election: str) -> Any: ...
    def set_night(self, received: Received, election: str, value: dict[str, Any]) -> None: ...
    def origin(self, table: str, key: str) -> faust_compat.Origin | None: ...


@dataclass(frozen=True)
class TopicNames:
    declarations: str
    alerts: str
    results: str
    dead_letters: str

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        return cls(
            settings.topic_declarations, settings.topic_alerts, settings.topic_results, settings.topic_dead_letters
        )


@dataclass
class UpdateParts:
    """A ``ResultUpdate`` as the JSON of its parts, each serialised once.

    The seat's JSON is the one the seat table keeps, and each alert's is the one sent on the
    alerts topic; the batch's tally is added to an election's last update. ``to_json`` joins
    them into exactly what ``ResultUpdate.model_dump_json`` writes (tests/unit/test_worker.py
    holds it to that), instead of serialising the seat and alerts a second time.
    """

    election: str
    alerts: list[bytes]
    seat: bytes | None
    tally: bytes | None = None
    night: bytes | None = None

    def to_json(self) -> bytes:
        return b"".join(
            (
                b'{"schema_version":%d,"election":' % SCHEMA_VERSION,
                json.dumps(self.election).encode(),
                b',"alerts":[',
                b",".join(self.alerts),
                b'],"seat":',
                self.seat if self.seat is not None else b"null",
                b',"tally":',
                self.tally if self.tally is not None else b"null",
                b',"night":',
                self.night if self.night is not None else b"null",
                b"}",
            )
        )


Message = tuple[str, str, bytes | UpdateParts]  # (topic, key, value)


@dataclass
class Batch:
    """What one batch of events sends and, once the broker has acknowledged it, stores."""

    messages: list[Message] = field(default_factory=list)
    nights: list[tuple[Received, str, dict[str, Any]]] = field(default_factory=list)
    seats: list[tuple[int, str, bytes]] = field(default_factory=list)  # (partition, key, SeatResult JSON)


@dataclass
class Handled:
    """What one event adds to its batch; added only once the whole event has been handled."""

    messages: list[Message] = field(default_factory=list)
    night: tuple[Received, str, dict[str, Any]] | None = None
    seat: tuple[int, str, bytes] | None = None
    outcome: str = "counted"  # or "ignored", "dead_lettered" (tallyroom_worker_events_total)
    refusal: str | None = None  # the dead letter's kind of reason (tallyroom_worker_dead_letters_total)


class CountedButUnsent(RuntimeError):
    """The count took an event but what it raised could not be prepared: the state is ahead of Kafka."""


class OffsetHole(RuntimeError):
    """An event came past the next offset of its partition: records in between never reached the worker."""


# (topic, partition) -> the offset counting resumes from, or None to start at the first record handed
Committed = Callable[[str, int], Awaitable[int | None]]


class Positions:
    """The next offset of each partition the worker must be handed: nothing is counted past a hole.

    Faust can lose a fetched record on its way to the agent while a worker starts with a backlog:
    in the flush fault test the restarted worker's first batch held offsets 7-41 and 43-78, with no
    error logged. Faust's commit then steps over a hole of one record (faust-streaming 0.15.3,
    ``Consumer._new_offset`` allows ``min(acked) - committed == 1``), so that declaration was never
    counted and never counted again. Records of the declarations topic have consecutive offsets
    (no transactions write to it, and it is not compacted), so a record past the next offset is a
    hole. A batch with one is refused whole, before anything of it is counted, and the worker ends
    with ``EXIT_WORKER_FAULT``: no event at or past the hole has been acknowledged, so the commit
    stays below it and the next worker is handed it again.

    The first record of a partition after a rebalance must be at or below the offset the group
    resumes from (``committed``: the committed offset, or the partition's first offset if none).
    """

    def __init__(self, committed: Committed):
        self.committed = committed
        self.next: dict[tuple[str, int], int] = {}

    def reset(self) -> None:
        """After a rebalance: each partition is read again from what its group committed."""
        self.next.clear()

    async def check(self, events: list[Received]) -> None:
        for received in events:
            where = (received.topic, received.partition)
            expected = self.next.get(where)
            if expected is None:
                expected = await self.committed(received.topic, received.partition)
                if expected is None:
                    expected = received.offset
                log.info("counting %s/%d from offset %d", received.topic, received.partition, expected)
            if received.offset > expected:
                raise OffsetHole(
                    f"{received.topic}/{received.partition}: handed offset {received.offset} while the next "
                    f"is {expected}: records {expected}-{received.offset - 1} never reached the worker"
                )
            # A record below the next one is handed again (a seek back): counting it is idempotent.
            self.next[where] = max(expected, received.offset + 1)

    async def next_to_count(self, topic: str, partition: int) -> int:
        """The offset of the next record the agent should be handed from ``topic``/``partition``."""
        expected = self.next.get((topic, partition))
        if expected is None:
            expected = await self.committed(topic, partition)
        return expected if expected is not None else 0


@dataclass
class StallWatch:
    """A partition whose records are in Kafka but never reach the agent, with nothing after them.

    Faust can lose a fetched record on its way to the agent (``Positions``). A later record of the
    partition shows the hole; when the lost record is the partition's last, nothing does, and the
    partition stalls, silently, until more arrive. Seen in one of 26 runs of the partition test
    beside the fault lane: after one worker stopped, the correction sent to the partition the other
    took over never reached it, and that election stood still for four minutes. With this watch, in
    2 of 43 runs, on the partition the other had kept: found 8.9 and 9.5 s after counting resumed.

    A partition is stalled when its end offset is past the next offset to count at two checks in a
    row, in the same consumer generation, with no batch begun between: a record fetched in time for
    the first check would have been counted by the second.
    """

    seen: dict[tuple[str, int], tuple[int, int, int, int]] = field(default_factory=dict)

    def stalled(
        self, topic: str, partition: int, *, generation: int, batches: int, next_offset: int, end_offset: int
    ) -> bool:
        where = (topic, partition)
        if end_offset <= next_offset:
            self.seen.pop(where, None)
            return False
        looked = (generation, batches, next_offset, end_offset)
        stalled = self.seen.get(where) == looked
        self.seen[where] = looked
        return stalled

    def forget(self) -> None:
        """A batch or a rebalance is under way: what was seen before it proves nothing."""
        self.seen.clear()


class Tallier:
    """The worker's work on each batch, with no Faust in it."""

    def __init__(
        self,
        settings: Settings,
        count: Count,
        send: SendRecord,
        tables: TableAccess,
        partitions_of: Callable[[str], int | None],
        metrics: WorkerMetrics | None = None,
        committed: Committed | None = None,
    ):
        self.settings = settings
        self.metrics = metrics or worker_metrics()
        self.count = count
        self.send = send
        self.tables = tables
        self.partitions_of = partitions_of
        self.topics = TopicNames.of(settings)
        self.limits = Limits.from_settings(settings)
        self.books_stale = True
        self.batches = 0  # begun since the worker started (StallWatch)
        self.in_batch = False
        # Without a consumer (unit tests, bench.hotpath) counting starts at the first record handed.
        self.positions = Positions(committed or _from_first_handed)

    # --- one batch ---------------------------------------------------------------------------

    async def count_batch(self, events: Iterable[Received]) -> None:
        self.batches += 1
        self.in_batch = True
        try:
            with self.metrics.batch_seconds.time():
                await self._count_batch(events)
        finally:
            self.in_batch = False

    async def next_to_count(self, topic: str, partition: int) -> int:
        """The offset of the next record the agent should be handed; after a rebalance, before
        the first batch (whose start forgets the old positions), what the group resumes from."""
        if self.books_stale:
            return await self.positions.committed(topic, partition) or 0
        return await self.positions.next_to_count(topic, partition)

    async def _count_batch(self, events: Iterable[Received]) -> None:
        if self.books_stale:
            self.positions.reset()
            await self.rebuild_books()
        events = list(events)
        await self.positions.check(events)
        batch = Batch()
        outcomes: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        for received in events:
            try:
                handled = self.handle(received)
            except CountedButUnsent:
                raise
            except Exception as exc:  # noqa: BLE001  (any failure of one event is that event's fault)
                log.error(
                    "could not count %s/%d@%d; dead-lettered",
                    received.topic,
                    received.partition,
                    received.offset,
                    exc_info=exc,
                )
                handled = Handled()
                reason = f"could not count: {type(exc).__name__}: {exc}"
                self._dead_letter(handled, received, _election_of(received.value), reason, kind="could_not_count")
            outcomes[handled.outcome] += 1
            if handled.refusal is not None:
                refusals[handled.refusal] += 1
            batch.messages += handled.messages
            if handled.night is not None:
                batch.nights.append(handled.night)
            if handled.seat is not None:
                batch.seats.append(handled.seat)
        # Counted once per batch: a labelled child looked up per event was 1.3% of bench.hotpath's worker.
        for outcome, taken in outcomes.items():
            self.metrics.events.labels(outcome).inc(taken)
        for refusal, letters in refusals.items():
            self.metrics.dead_letters.labels(refusal).inc(letters)
        # The broker must hold every alert and update before the seat is
        # recorded as counted: a crash in between re-counts instead of losing alerts.
        await self.flush(batch)
        await self.store(batch)

    def handle(self, received: Received) -> Handled:
        handled = Handled()
        if breach := payload_breach(received.value, self.limits):
            self._over_limit(handled, received, "invalid", breach)
            return handled
        try:
            parsed = parse_event(received.value or b"")  # no payload at all was refused just above
        except ValidationError as exc:
            reason, errors = _validation_errors(exc)
            self._dead_letter(handled, received, "invalid", reason, errors)
            return handled
        if breaches := event_breaches(parsed, self.limits):
            self._over_limit(handled, received, parsed.election, breaches[0])
            return handled
        partitions = self.partitions_of(received.topic) or self.settings.topic_partitions
        if (home := election_partition(parsed.election, partitions)) != received.partition:
            reason = (
                f"{parsed.kind} for {parsed.election} arrived on partition {received.partition}, but the "
                f"election lives on partition {home}: key events by election (the producers do)"
            )
            self._dead_letter(handled, received, parsed.election, reason, kind="wrong_partition")
            return handled
        if isinstance(parsed, NightOpened):
            self._open_night(handled, received, parsed)
            return handled
        # Provenance: the record this event was read from rides on its seat result and alerts.
        at = RecordAt(received.topic, received.partition, received.offset)
        outcome = self.count.count(parsed, at)  # a declaration, recount, rush or withdrawal
        if outcome.rejected:
            self._dead_letter(handled, received, parsed.election, outcome.rejected, kind="rejected")
            return handled
        if outcome.ignored:
            handled.outcome = "ignored"
        try:
            self._emit(handled, received, outcome)
        except Exception as exc:
            raise CountedButUnsent(f"{parsed.election}/{getattr(parsed, 'ons_id', '')}: {exc}") from exc
        return handled

    def _open_night(self, handled: Handled, received: Received, night: NightOpened) -> None:
        held = self.tables.night(night.election)
        if held is not None and _read_night(held) == night:
            return
        # The count's own results include this batch's, not yet in the table.
        book = self.count.books.get(night.election)
        if book is not None:
            stored = {f"{night.election}/{ons_id}": raw for ons_id, raw in book.results.items()}
        else:
            stored = {k: v for k, v in self.tables.seats.items() if k.startswith(night.election + "/")}
        unreadable = self.count.open_night(night, stored=stored)
        for key, reason in unreadable.items():
            self._quarantine(handled.messages, self.tables.seats_changelog, "seats", key, stored[key], reason)
        handled.night = (received, night.election, night.model_dump(mode="json"))
        # The opened night's tally (no seat) and every seat of it, declared or not: readers know the
        # election, its seats (tallyroom:E:night) and its majority line from the opening, not from
        # its first result.
        seats = [
            NightSeat(ons_id=b.ons_id, constituency=b.constituency, expected_at=b.expected_at) for b in night.seats
        ]
        opened = UpdateParts(
            night.election,
            alerts=[],
            seat=None,
            tally=self.count.snapshot_json(night.election),
            night=b"[" + b",".join(json_bytes(seat) for seat in seats) + b"]",
        )
        handled.messages.append((self.topics.results, night.election, opened))

    def _emit(self, handled: Handled, received: Received, outcome: Outcome) -> None:
        update = outcome.update
        if update is None:
            return
        # Each alert serialised once: the same bytes go on the alerts topic and in the update.
        alerts = [json_bytes(alert) for alert in update.alerts]
        for alert, raw in zip(update.alerts, alerts):
            handled.messages.append((self.topics.alerts, alert.election, raw))
        seat, raw_seat = update.seat, None
        if seat is not None:
            raw_seat = outcome.stored if outcome.stored is not None else json_bytes(seat)
            if outcome.stored is not None:
                handled.seat = (received.partition, f"{seat.election}/{seat.ons_id}", outcome.stored)
        tally = json_bytes(update.tally) if update.tally is not None else None
        parts = UpdateParts(update.election, alerts, raw_seat, tally)
        handled.messages.append((self.topics.results, update.election, parts))

    async def flush(self, batch: Batch) -> None:
        """Send everything in order and wait until the broker holds it all.

        The tally rides on each election's last update of the batch: one
        snapshot per batch instead of one per declaration, and still after
        every alert it counts.
        """
        faults.fail_once_if_triggered(self.settings.fault_flush_trigger)
        last: dict[str, UpdateParts] = {}
        for _, _, value in batch.messages:
            if isinstance(value, UpdateParts) and value.seat is not None:
                last[value.election] = value
        for election, parts in last.items():
            parts.tally = self.count.snapshot_json(election)
        futures = []
        for topic, key, value in batch.messages:
            payload = value if isinstance(value, bytes) else value.to_json()
            futures.append(await self.send(topic, key.encode(), payload, None))
        await asyncio.gather(*futures)

    async def store(self, batch: Batch) -> None:
        """Record what the batch counted, once its alerts and updates are acknowledged.

        Seats go to the table's changelog straight through the producer, all
        acknowledged together, and only then into the table itself. A table write
        per seat (Faust's ``send_soon``, a FutureMessage and callbacks each) was a
        tenth of the worker's CPU in a profile. The records are the ones the table
        would write: its changelog topic, its JSON key, the raw value, the
        partition of the event; recovery reads them back as ever.
        """
        for received, election, night in batch.nights:
            self.tables.set_night(received, election, night)
        if not batch.seats:
            return
        changelog = self.tables.seats_changelog
        futures = [
            await self.send(changelog, faust_compat.changelog_key(key), value, partition)
            for partition, key, value in batch.seats
        ]
        await asyncio.gather(*futures)
        for _, key, value in batch.seats:
            self.tables.seats[key] = value

    # --- recovery ----------------------------------------------------------------------------

    async def rebuild_books(self) -> None:
        """Re-derive every election's tally from the recovered tables.

        A stored record this code cannot read is quarantined; the rest of its
        election rebuilds, and other elections are untouched.
        """
        self.count.books.clear()
        by_election: dict[str, dict[str, bytes]] = {}
        for key, value in self.tables.seats.items():
            by_election.setdefault(key.split("/", 1)[0], {})[key] = value
        quarantined: list[Message] = []  # dead letters
        for election, held in self.tables.nights():
            try:
                night = _read_night(held)
            except ValidationError as exc:
                reason = f"unreadable stored night: {_validation_errors(exc)[0].removeprefix('invalid event: ')}"
                self._quarantine(quarantined, self.tables.nights_changelog, "nights", election, _as_bytes(held), reason)
                continue
            stored = by_election.get(election, {})
            for key, reason in self.count.open_night(night, stored=stored).items():
                self._quarantine(quarantined, self.tables.seats_changelog, "seats", key, stored[key], reason)
        if quarantined:
            await self.flush(Batch(messages=quarantined))
        self.books_stale = False
        log.info(
            "tallies rebuilt for %d election(s) from %d seat(s); %d stored record(s) quarantined",
            len(self.count.books),
            len(self.tables.seats),
            len(quarantined),
        )

    def _quarantine(
        self,
        messages: list[Message],
        changelog: str,
        table: str,
        key: str,
        raw: bytes,
        reason: str,
    ) -> None:
        election = key.split("/", 1)[0]
        origin = self.tables.origin(table, key)
        topic, partition, offset = origin if origin is not None else (changelog, -1, -1)
        log.error(
            "quarantined the stored %s record %s (%s/%d@%d): %s; left out of %s's count",
            table,
            key,
            topic,
            partition,
            offset,
            reason,
            election,
        )
        letter = _dead_letter_record(topic, partition, offset, election, raw, reason)
        messages.append((self.topics.dead_letters, election, letter))
        self.metrics.dead_letters.labels("quarantined").inc()

    # --- refusals ----------------------------------------------------------------------------

    def _dead_letter(
        self,
        handled: Handled,
        received: Received,
        key: str,
        reason: str,
        errors: list[dict[str, Any]] | None = None,
        kind: str = "invalid",
    ) -> None:
        handled.outcome, handled.refusal = "dead_lettered", kind
        raw_key = received.key.decode("utf-8", "backslashreplace") if isinstance(received.key, bytes) else received.key
        payload = received.value if isinstance(received.value, bytes) else str(received.value).encode()
        letter = _dead_letter_record(
            received.topic, received.partition, received.offset, raw_key, payload, reason, errors
        )
        handled.messages.append((self.topics.dead_letters, key, letter))

    def _over_limit(self, handled: Handled, received: Received, key: str, breach: Breach) -> None:
        """Dead-letter an event over a deployment limit (the same check live entry makes)."""
        errors = [{"loc": breach.field, "msg": breach.message}]
        self._dead_letter(handled, received, key, f"invalid event: {breach.reason}", errors)


async def _from_first_handed(topic: str, partition: int) -> int | None:
    return None


def _election_of(value: bytes | None) -> str:
    """The election an event names, as far as its JSON can be read: the dead letter's key."""
    try:
        election = json.loads(value or b"").get("election")
    except (ValueError, AttributeError):
        return "invalid"
    return election if isinstance(election, str) else "invalid"


def _read_night(held: Any) -> NightOpened:
    # Faust's table keeps a night as the dict its json codec read.
    return read_stored(NightOpened, held if isinstance(held, bytes | str) else json.dumps(held))


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, default=str).encode()


def _dead_letter_record(
    topic: str,
    partition: int,
    offset: int,
    key: str | None,
    payload: bytes,
    reason: str,
    errors: list[dict[str, Any]] | None = None,
) -> bytes:
    letter = DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        raw=payload[:RAW_LIMIT].decode("utf-8", "backslashreplace"),
        reason=reason,
        errors=errors or [],
        received_at=datetime.now(UTC),
    )
    return json_bytes(letter)


def _validation_errors(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()[:20]]
    first = errors[0] if errors else {"loc": "", "msg": str(exc)}
    return f"invalid event: {first['loc'] or 'payload'}: {first['msg']}", errors


# --- Faust --------------------------------------------------------------------------------------


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    protocol = settings.kafka_security_protocol.upper()
    context = None
    if "SSL" in protocol:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.worker_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store="memory://",
        datadir=str(settings.worker_data_dir),
        processing_guarantee="at_least_once",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A SIGKILLed worker's group membership lingers until this runs out; the
        # replacement gets its partitions only then (Faust's default is 60 s).
        broker_session_timeout=settings.worker_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout / 3),
        # A batch of events sends 3-5 records each (alerts, update, changelog) and then waits for
        # all of them, twice (results, then the changelog): the linger is paid twice per batch.
        # 1 ms instead of 5: p50 at 200/s 52.5, 42.0 -> 37.8, 32.2 ms and at 500/s 81.3, 66.7 ->
        # 53.5, 51.5 ms over two interleaved rounds, the same CPU per declaration; the 2024 night
        # at max 0.48, 0.57 -> 0.50, 0.62 s (bench/README.md, session 5).
        producer_linger=0.001,
        producer_max_batch_size=512 * 1024,
        web_enabled=False,
        table_standby_replicas=0,
        # No leader topic: nothing here runs on the leader alone (no on_leader timers). Faust makes
        # it itself at start-up and subscribes at once; a broker whose metadata does not have it yet
        # ("Ignoring missing topic" in the fault tests) leaves it out of the assignment until
        # aiokafka's metadata ages out five minutes later, and then rebalances mid-night for it.
        topic_disable_leader=True,
    )


class FaustTables:
    """``TableAccess`` over the Faust tables."""

    def __init__(self, seats: faust_compat.OriginTable, nights: faust_compat.OriginTable):
        self._seats, self._nights = seats, nights
        self.seats: MutableMapping[str, bytes] = faust_compat.table_data(seats)
        self.seats_changelog = seats.changelog_topic.get_topic_name()
        self.nights_changelog = nights.changelog_topic.get_topic_name()

    def nights(self) -> Iterable[tuple[str, Any]]:
        return list(self._nights.items())

    def night(self, election: str) -> Any:
        return self._nights.get(election)

    def set_night(self, received: Received, election: str, value: dict[str, Any]) -> None:
        with faust_compat.current_event(received.event):
            self._nights[election] = value

    def origin(self, table: str, key: str) -> faust_compat.Origin | None:
        return (self._seats if table == "seats" else self._nights).origins.get(key)


@dataclass
class Worker:
    """The Faust worker, built on call: ``build_worker(settings).app`` is what Faust runs."""

    settings: Settings
    app: faust.App
    declarations: faust.TopicT
    seats_table: faust_compat.OriginTable
    nights_table: faust_compat.OriginTable
    tallier: Tallier


TABLES = ("seats", "nights")


def changelog_topics(settings: Settings) -> list[str]:
    """The worker's table changelogs, as Faust names them: created ahead, compacted and replicated."""
    return [f"{settings.worker_id}-{table}-changelog" for table in TABLES]


def build_worker(settings: Settings) -> Worker:
    faust_compat.check()
    app = create_app(settings)
    faust_compat.shorten_fetch_wait(app, settings.fetch_max_wait_ms)
    declarations = app.topic(settings.topic_declarations, key_serializer="raw", value_serializer="raw")
    # Latest accepted result per seat, keyed "election/ons_id", as SeatResult JSON;
    # nights keyed by election. Raw bytes: the seat is serialised once by pydantic,
    # not turned into a dict and then serialised again by the table.
    seats_table = faust_compat.origin_table(
        app, "seats", key_type=str, value_type=bytes, partitions=settings.topic_partitions
    )
    nights_table = faust_compat.origin_table(app, "nights", key_type=str, partitions=settings.topic_partitions)
    rules: Evaluate = evaluate
    if settings.fault_rule_seat:
        rules = faults.failing_rules_for_seat(rules, settings.fault_rule_seat)
    count = Count(RuleConfig.from_settings(settings), evaluate=rules)
    if settings.fault_lose_trigger:
        trigger, topic = settings.fault_lose_trigger, settings.topic_declarations
        faust_compat.wrap_message_callback(app, lambda callback: faults.losing_a_record_once(callback, topic, trigger))

    def send(topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> Awaitable[Any]:
        return faust_compat.send(app, topic, key, value, partition)

    tallier = Tallier(
        settings,
        count,
        send,
        FaustTables(seats_table, nights_table),
        app.consumer.topic_partitions,
        committed=lambda topic, partition: faust_compat.resume_offset(app, topic, partition),
    )

    @app.on_rebalance_complete.connect
    async def tables_recovered(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        tallier.books_stale = True

    @app.agent(declarations, concurrency=1, name="count_declarations")  # >1 can commit past events (#606)
    async def count_declarations(stream: faust.StreamT) -> None:
        in_batch = False
        try:
            # StreamT's stub lacks take_events, which Stream has (faust-streaming 0.15.3).
            batches = stream.take_events(  # type: ignore[attr-defined]
                settings.worker_batch_size, within=settings.worker_batch_seconds
            )
            async for events in batches:
                in_batch = True
                await tallier.count_batch(Received.of(event) for event in events)
                in_batch = False
        except asyncio.CancelledError:
            if in_batch:
                # Stopped mid-batch: unwinding would acknowledge events never counted.
                log.warning("stopped in the middle of a batch: exiting without a commit; it is counted again")
                faust_compat.exit_now(0)
            raise
        except BaseException as exc:  # noqa: BLE001  (the worker must never run on without its agent)
            await exit_on_fault(app, exc)

    if settings.worker_stall_check_seconds > 0:
        watch = StallWatch()

        @app.timer(interval=settings.worker_stall_check_seconds, name="look_for_stalled_partitions")
        async def look_for_stalled_partitions() -> None:
            try:
                stall = await stalled_partition(app, tallier, watch, settings.topic_declarations)
            except Exception as exc:  # noqa: BLE001  (a broker away: the next look asks again)
                watch.forget()
                log.info("could not look for stalled partitions (%s): %s", type(exc).__name__, exc)
                return
            if stall is not None:
                await exit_on_fault(app, stall)

    return Worker(settings, app, declarations, seats_table, nights_table, tallier)


async def stalled_partition(app: faust.App, tallier: Tallier, watch: StallWatch, topic: str) -> OffsetHole | None:
    """A hole in ``topic`` that no later record will show (``StallWatch``), or None."""
    if tallier.in_batch or app.rebalancing:
        watch.forget()
        return None
    generation, batches = app.consumer_generation_id, tallier.batches
    ends = await faust_compat.end_offsets(app, topic, faust_compat.streaming_partitions(app, topic))
    for partition, end_offset in ends.items():
        next_offset = await tallier.next_to_count(topic, partition)
        if watch.stalled(
            topic, partition, generation=generation, batches=batches, next_offset=next_offset, end_offset=end_offset
        ):
            return OffsetHole(
                f"{topic}/{partition}: records {next_offset}-{end_offset - 1} are in Kafka but never reached the "
                "worker, and no later record came to show the hole"
            )
    return None


async def exit_on_fault(app: faust.App, fault: BaseException) -> None:
    """End the worker at once without a commit, so that the worker restarted in its place counts
    again whatever this one has not (``EXIT_WORKER_FAULT``)."""
    log.critical(
        "the worker cannot go on, exiting without a commit (%s): %s", type(fault).__name__, fault, exc_info=fault
    )
    try:  # so that the worker restarted in its place is not kept waiting for this one's session
        await faust_compat.leave_group(app, LEAVE_GROUP_SECONDS)
    except BaseException as failed:  # noqa: BLE001  (nothing may keep the worker from exiting)
        log.warning("could not leave the consumer group before exiting: %r", failed)
    faust_compat.exit_now(EXIT_WORKER_FAULT)
