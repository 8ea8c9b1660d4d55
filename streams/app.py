"""The Faust application: one app object, its topics and tables, and the count agent.

The agent only wires the pure ``tallyroom.streams.count.Count`` to Kafka. Delivery is
at-least-once with idempotent effects:

1. each event's alerts and result update are sent and *acknowledged by the
   broker* before the seat table is written, so a crash can never leave a seat
   stored whose alerts were lost;
2. a re-delivered declaration finds its revision already held and is ignored,
   so nothing is counted twice; alert ids are deterministic, and the Redis sink
   drops an id it has seen;
3. the in-memory tally is rebuilt from the seat table after every rebalance
   (tables are restored from their changelogs first), so it is always exactly
   the sum of the latest result of each seat.

Faust's own exactly_once guarantee is not used: see faust-streaming #177, #517, #323.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import faust
import faust.streams as faust_streams
from faust.serializers import codecs as faust_codecs
from pydantic import ValidationError

from tallyroom.schemas import DeadLetter, NightOpened, ResultUpdate, parse_event
from tallyroom.schemas.limits import Breach, Limits, event_breaches, payload_breach
from tallyroom.settings import Settings, get_settings
from tallyroom.streams.count import Count, Outcome, RecordAt
from tallyroom.streams.partitioning import election_partition
from tallyroom.streams.rules import RuleConfig

log = logging.getLogger("tallyroom.worker")
RAW_LIMIT = 2000


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


def shorten_fetch_wait(max_wait_ms: int) -> None:
    """Make the worker's consumer park a fetch at the broker for ``max_wait_ms``, not 1.5 s.

    faust-streaming hard-codes ``fetch_max_wait_ms=1500``, and aiokafka keeps one fetch
    in flight per broker. A fetch sent while the declarations partition still had
    records buffered covers only the other partitions (changelogs, the assignor's
    topic), which are quiet, so it sits at the broker for the whole 1.5 s while new
    declarations wait behind it. Measured on the 2024 night: stalls of 1.0 s at the
    start and mid-stream, and events handed to the agent at ~800/s.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_tallyroom_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self, transport):  # type: ignore[no-untyped-def]
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by the Fetcher that start() creates
        return consumer

    thread._tallyroom_original_create = original
    thread._create_worker_consumer = create_worker_consumer


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
        # A batch of events sends 3-5 records each (alerts, update, changelog) and
        # then waits for all of them: fewer, larger produce requests cost less.
        producer_linger=0.005,
        producer_max_batch_size=512 * 1024,
        web_enabled=False,
        table_standby_replicas=0,
    )


settings = get_settings()
shorten_fetch_wait(settings.fetch_max_wait_ms)
app = create_app(settings)

raw = {"key_serializer": "raw", "value_serializer": "raw"}
declarations_topic = app.topic(settings.topic_declarations, **raw)
alerts_topic = app.topic(settings.topic_alerts, **raw)
results_topic = app.topic(settings.topic_results, **raw)
dead_letters_topic = app.topic(settings.topic_dead_letters, **raw)

# Latest accepted result per seat, keyed "election/ons_id", as SeatResult JSON;
# nights keyed by election. Raw bytes: the seat is serialised once by pydantic,
# not turned into a dict and then serialised again by the table.
seats_table = app.Table("seats", key_type=str, value_type=bytes, partitions=settings.topic_partitions)
nights_table = app.Table("nights", key_type=str, partitions=settings.topic_partitions)

count = Count(RuleConfig(settings.marginal_votes, settings.marginal_share))
limits = Limits.from_settings(settings)
_books_stale = True


@app.on_rebalance_complete.connect
async def _tables_recovered(sender: Any, **kwargs: Any) -> None:
    global _books_stale
    _books_stale = True


def rebuild_books() -> None:
    """Re-derive every election's tally from the recovered tables."""
    global _books_stale
    count.books.clear()
    by_election: dict[str, list[bytes]] = {}
    for key, value in seats_table.items():
        by_election.setdefault(key.split("/", 1)[0], []).append(value)
    for election, night in nights_table.items():
        count.open_night(NightOpened.model_validate(night), stored=by_election.get(election, []))
    _books_stale = False
    log.info("tallies rebuilt for %d election(s) from %d seat(s)", len(count.books), len(seats_table))


def dead_letter(event: faust.EventT, reason: str, errors: list[dict] | None = None) -> bytes:
    payload = event.value if isinstance(event.value, bytes) else str(event.value).encode()
    key = event.key.decode("utf-8", "backslashreplace") if isinstance(event.key, bytes) else event.key
    return (
        DeadLetter(
            topic=event.message.topic,
            partition=event.message.partition,
            offset=event.message.offset,
            key=key,
            raw=payload[:RAW_LIMIT].decode("utf-8", "backslashreplace"),
            reason=reason,
            errors=errors or [],
            received_at=datetime.now(UTC),
        )
        .model_dump_json()
        .encode()
    )


def _validation_errors(exc: ValidationError) -> tuple[str, list[dict]]:
    errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()[:20]]
    first = errors[0] if errors else {"loc": "", "msg": str(exc)}
    return f"invalid event: {first['loc'] or 'payload'}: {first['msg']}", errors


class Batch:
    """What one batch of events sends and, once the broker has acknowledged it, stores."""

    def __init__(self) -> None:
        self.messages: list[tuple[faust.TopicT, str, bytes | ResultUpdate]] = []
        self.writes: list[tuple[faust.EventT, Any, str, Any]] = []
        self.seats: list[tuple[int, str, bytes]] = []  # (partition, key, SeatResult JSON)

    def send(self, topic: faust.TopicT, key: str, value: bytes | ResultUpdate) -> None:
        self.messages.append((topic, key, value))

    def emit(self, outcome: Outcome) -> None:
        for alert in outcome.alerts:
            self.send(alerts_topic, alert.election, alert.model_dump_json().encode())
        if outcome.update is not None:
            self.send(results_topic, outcome.update.election, outcome.update)

    async def flush(self) -> None:
        """Send everything in order and wait until the broker holds it all.

        The tally rides on each election's last update of the batch: one
        snapshot per batch instead of one per declaration, and still after
        every alert it counts.
        """
        last: dict[str, int] = {}
        for index, (_, _, value) in enumerate(self.messages):
            if isinstance(value, ResultUpdate) and value.seat is not None:
                last[value.election] = index
        for election, index in last.items():
            topic, key, update = self.messages[index]
            self.messages[index] = (topic, key, update.model_copy(update={"tally": count.snapshot(election)}))
        # Straight to the producer: Topic.send wraps each record in Faust's
        # FutureMessage/callback machinery, a third of the worker's CPU in a profile.
        producer = app.producer
        futures = []
        for topic, key, value in self.messages:
            payload = value if isinstance(value, bytes) else value.model_dump_json().encode()
            futures.append(await producer.send(topic.get_topic_name(), key.encode(), payload, None, None, None))
        await asyncio.gather(*futures)

    async def store(self) -> None:
        """Record what the batch counted, once its alerts and updates are acknowledged.

        Seats go to the table's changelog straight through the producer, all
        acknowledged together, and only then into the table itself. A table write
        per seat (Faust's ``send_soon``, a FutureMessage and callbacks each) was a
        tenth of the worker's CPU in a profile. The records are the ones the table
        would write: its changelog topic, its JSON key, the raw value, the
        partition of the event; recovery reads them back as ever. Faust flushes
        the producer before it commits, and these are awaited before that anyway.
        """
        for event, table, key, value in self.writes:
            with current_event(event):
                table[key] = value
        if not self.seats:
            return
        producer = app.producer
        changelog = seats_table.changelog_topic.get_topic_name()
        futures = [
            await producer.send(changelog, faust_codecs.dumps("json", key), value, partition, None, None)
            for partition, key, value in self.seats
        ]
        await asyncio.gather(*futures)
        for _, key, value in self.seats:
            seats_table.data[key] = value


def _over_limit(batch: Batch, event: faust.EventT, key: str, breach: Breach) -> None:
    """Dead-letter an event over a deployment limit (the same check live entry makes)."""
    errors = [{"loc": breach.field, "msg": breach.message}]
    batch.send(dead_letters_topic, key, dead_letter(event, f"invalid event: {breach.reason}", errors))


def home_partition(event: faust.EventT, election: str) -> int:
    partitions = app.consumer.topic_partitions(event.message.topic) or settings.topic_partitions
    return election_partition(election, partitions)


def handle(batch: Batch, event: faust.EventT) -> None:
    if breach := payload_breach(event.value, limits):
        return _over_limit(batch, event, "invalid", breach)
    try:
        parsed = parse_event(event.value)
    except ValidationError as exc:
        reason, errors = _validation_errors(exc)
        batch.send(dead_letters_topic, "invalid", dead_letter(event, reason, errors))
        return
    if breaches := event_breaches(parsed, limits):
        return _over_limit(batch, event, parsed.election, breaches[0])
    if (home := home_partition(event, parsed.election)) != event.message.partition:
        reason = (
            f"{parsed.kind} for {parsed.election} arrived on partition {event.message.partition}, but the "
            f"election lives on partition {home}: key events by election (the producers do)"
        )
        batch.send(dead_letters_topic, parsed.election, dead_letter(event, reason))
        return
    if isinstance(parsed, NightOpened):
        held = nights_table.get(parsed.election)
        if held is None or NightOpened.model_validate(held) != parsed:
            # The count's own results include this batch's, not yet in the table.
            book = count.books.get(parsed.election)
            stored = (
                list(book.results.values())
                if book
                else [v for k, v in seats_table.items() if k.startswith(parsed.election + "/")]
            )
            count.open_night(parsed, stored=stored)
            batch.writes.append((event, nights_table, parsed.election, parsed.model_dump(mode="json")))
        return
    # Provenance: the record this event was read from rides on its seat result and alerts.
    at = RecordAt(event.message.topic, event.message.partition, event.message.offset)
    outcome = count.count(parsed, at)  # a declaration, recount, rush or withdrawal
    if outcome.rejected:
        batch.send(dead_letters_topic, parsed.election, dead_letter(event, outcome.rejected))
        return
    batch.emit(outcome)
    if outcome.update is not None and outcome.update.seat is not None:
        seat = outcome.update.seat
        key = f"{seat.election}/{seat.ons_id}"
        batch.seats.append((event.message.partition, key, outcome.stored))


@app.agent(declarations_topic, concurrency=1)  # >1 can commit past unprocessed events (#606)
async def count_declarations(stream: faust.StreamT) -> None:
    async for events in stream.take_events(settings.worker_batch_size, within=settings.worker_batch_seconds):
        if _books_stale:
            rebuild_books()
        batch = Batch()
        for event in events:
            handle(batch, event)
        # The broker must hold every alert and update before the seat is
        # recorded as counted: a crash in between re-counts instead of losing alerts.
        await batch.flush()
        await batch.store()


@contextmanager
def current_event(event: faust.EventT) -> Iterator[None]:
    """Make ``event`` the one a table write belongs to.

    Tables write their changelog to the partition of the current event, which
    Faust keeps in a context variable; inside a batch it must be the event the
    write came from. Only the context variable is set: ``Stream.current_event``
    is shared with the task that fills ``take_events``' buffer, and changing it
    there loses events (seen here: 3 of 650 declarations vanished).
    """
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
