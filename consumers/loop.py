"""The one loop from Kafka to somewhere: it polls, hands each batch to a sink, commits once the
sink has flushed it (at most every ``TALLYROOM_SINK_COMMIT_SECONDS``), retries a sink whose
service is away, and stops on ``Stop``.

A sink is anything with these five methods (``RedisSink`` is one):

- ``open(partitions)``: connect; may return a ``Rebalance`` listener for the subscription
  (``partitions``: what it is assigned, and ``rewind`` to read partitions again from their start).
- ``write(records)``: take one poll's ``(topic, value)`` records, in order (called after
  every poll, also with none, so a sink can look at its own state once per poll). False
  means the sink rewound its partitions and dropped the batch: none of it is committed.
- ``flush()``: make what it took durable. Offsets are committed only after it returns.
- ``committed()``: the offsets of what was flushed are committed.
- ``close()``.

Delivery is at-least-once: a batch flushed but not committed comes again after a restart or
a rebalance, so a sink's writes must be idempotent. ``write``, ``flush`` and ``committed`` are
retried (``lifecycle.retrying``) while their service is unreachable, and the consumer's poll while
Kafka is; a refused password is not.

The consumer is confluent-kafka's (librdkafka, in C). kafka-python's, which the loop used before,
cost 0.068-0.078 ms of CPU per results record to fetch and decode, against confluent-kafka's
0.008 ms (30,000 records of the 2024 night, three interleaved rounds, in the session that made the
change): about a quarter of the sink's CPU per declaration at ``max``. In the real pipeline the
sink's CPU per declaration at ``max`` went from 0.245 ms (session 9) to 0.10-0.14 ms (bench/README.md,
session 13). librdkafka reconnects and fetches on threads of its own; its log lines and errors go
to the ``tallyroom.kafka`` logger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from tallyroom.lifecycle import RDKAFKA_LOGIN_REFUSED, Stop, check_kafka_login, kafka_transient, retrying
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.loop")
kafka_log = logging.getLogger("tallyroom.kafka")

Record = tuple[str, bytes]  # (topic, value)
POLL_MS = 500
MAX_POLL_RECORDS = 500


class Partitions:
    """What a sink may do with the loop's consumer: see what it is assigned, read some of it again.

    ``rewind`` seeks partitions back to their start and has the next commit record that (offset 0:
    Kafka reads an offset below what it still holds from its first record), so a sink that stops
    before it has taken them again is not resumed past what it never got."""

    def __init__(self, consumer: Consumer, commits: Commits):
        self.consumer, self.commits = consumer, commits

    def assignment(self) -> list[TopicPartition]:
        return list(self.consumer.assignment())

    def rewind(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))
        self.commits.rewound(partitions)


class Rebalance(Protocol):
    """Told of each assignment, inside the poll: returns the partitions to read from their start
    (the others resume where the group committed)."""

    def on_assign(self, assigned: Sequence[TopicPartition]) -> Sequence[TopicPartition]: ...


class Sink(Protocol):
    def open(self, partitions: Partitions) -> Rebalance | None: ...

    def write(self, records: Sequence[Record]) -> bool: ...

    def flush(self) -> None: ...

    def committed(self) -> None: ...

    def close(self) -> None: ...


def run_consumer(
    settings: Settings,
    sink: Sink,
    topics: Sequence[str],
    group: str,
    stop: Stop,
    stop_after: float | None = None,
    what: str = "Redis",
) -> None:
    """Feed ``topics`` (as consumer group ``group``) into ``sink`` until ``stop`` (or ``stop_after`` seconds)."""
    check_kafka_login(settings)
    errors = KafkaErrors()
    consumer = make_consumer(settings, group, errors)
    commits = Commits(consumer, sink, settings.sink_commit_seconds, stop, what)
    try:
        listener = retrying(lambda: sink.open(Partitions(consumer, commits)), stop, what)

        def on_assign(consumer: Consumer, assigned: list[TopicPartition]) -> None:
            # One line per rebalance: a sink that holds no partition of a topic says so here.
            log.info("Kafka: group %s assigned %s", group, partition_names(assigned) or "nothing")
            again = {(tp.topic, tp.partition) for tp in listener.on_assign(assigned)} if listener else set()
            for tp in assigned:
                if (tp.topic, tp.partition) in again:
                    tp.offset = OFFSET_BEGINNING
            consumer.assign(assigned)
            commits.rewound([tp for tp in assigned if (tp.topic, tp.partition) in again])

        def on_revoke(consumer: Consumer, revoked: list[TopicPartition]) -> None:
            log.info("Kafka: group %s gave up %s", group, partition_names(revoked) or "nothing")
            commits.revoked(revoked)

        consumer.subscribe(list(topics), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_revoke)
        started = time.monotonic()
        while not stop and (stop_after is None or time.monotonic() - started < stop_after):
            # librdkafka waits out a broker that goes away itself (reconnecting, errors to
            # ``errors``); what it raises that would pass is waited out like Redis, until the stop.
            polled = retrying(lambda: poll(consumer), stop, "Kafka", transient=kafka_transient)
            errors.raise_if_fatal()
            records, positions = taken(polled)
            if not retrying(lambda: sink.write(records), stop, what):
                continue  # the sink rewound (``Partitions.rewind``) and dropped the batch
            if records:
                retrying(sink.flush, stop, what)
                commits.flushed(positions)
            commits.when_due()
        commits.now()  # a sink stopped in good order leaves nothing flushed uncommitted
    finally:
        try:
            consumer.close()
        finally:
            sink.close()


def make_consumer(settings: Settings, group: str, errors: KafkaErrors) -> Consumer:
    """The loop's consumer: group ``group``, committing only when told, from the earliest offset."""
    return Consumer(
        settings.librdkafka_config()
        | {
            "group.id": group,
            "enable.auto.commit": False,
            # Commits names each offset it commits: what the sink flushed, or a rewound partition's start.
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
            "error_cb": errors.seen,
        },
        logger=kafka_log,
    )


def poll(consumer: Consumer, timeout: float = POLL_MS / 1000, most: int = MAX_POLL_RECORDS) -> list[Message]:
    """Wait up to ``timeout`` seconds for a record, then take what else is already fetched, up to ``most``.

    Not ``consume(most, timeout)``: it waits for ``most`` records or the whole timeout, so at 200
    results a second each poll sat out its 0.5 s (p50 253 ms, p99 498 ms from produce to poll for
    records 5 ms apart, against 2.0 and 5.4 ms this way; bench/README.md, session 13).
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    if most <= 1:
        return [first]
    try:
        rest = consumer.consume(most - 1, 0)
    except KafkaException as exc:
        # librdkafka has handed the first record over: dropping it here would lose it until a
        # refill (the next ones would be flushed and committed past it). The next poll meets the error.
        log.warning("Kafka: taking what was fetched after the first record failed (%s); the rest comes next poll", exc)
        return [first]
    return [first, *rest]


Position = tuple[str, int]  # (topic, partition)


def partition_names(partitions: Sequence[TopicPartition]) -> str:
    """``topic/partition`` of each, sorted, for a log line."""
    return ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in partitions))


def taken(polled: Sequence[Message]) -> tuple[list[Record], dict[Position, int]]:
    """A poll's records, in order, and the offset after each partition's last one.

    An error in a record's place is logged (or raised, if fatal) and skipped."""
    records: list[Record] = []
    positions: dict[Position, int] = {}
    for message in polled:
        error = message.error()
        if error is None:
            topic = message.topic() or ""
            records.append((topic, message.value() or b""))
            positions[topic, message.partition() or 0] = (message.offset() or 0) + 1
        elif error.fatal():
            raise KafkaException(error)
        else:  # e.g. a subscribed topic not there yet: librdkafka tries again by itself
            kafka_log.warning("Kafka: %s", error.str())
    return records, positions


class KafkaErrors:
    """librdkafka's errors outside a poll's records (a broker down, a refused login), as they come.

    It retries them all by itself. A fatal one (the consumer cannot go on) and a refused login (no
    wait makes a wrong password right: ``lifecycle.authentication_failure``) are raised by the loop."""

    def __init__(self) -> None:
        self.fatal: KafkaError | None = None

    def seen(self, error: KafkaError) -> None:
        if error.fatal() or error.code() in RDKAFKA_LOGIN_REFUSED:
            self.fatal = error
        kafka_log.warning("Kafka: %s", error.str())

    def raise_if_fatal(self) -> None:
        if self.fatal is not None:
            raise KafkaException(self.fatal)


class Commits:
    """What the loop commits, and when: the offsets the sink has flushed, at most every ``interval`` seconds.

    Each partition's offset is the one after its last flushed record, or 0 once the sink has
    rewound it (``Partitions.rewind``, or read from its start on assignment) until it has flushed
    something from it again; a revoked partition's is forgotten. At 200 results a second a commit
    per poll was a broker round trip every few records in the sink's loop.
    """

    def __init__(self, consumer: Consumer, sink: Sink, interval: float, stop: Stop, what: str):
        self.consumer, self.sink, self.interval, self.stop, self.what = consumer, sink, interval, stop, what
        self.positions: dict[Position, int] = {}
        self.last = time.monotonic()

    @property
    def pending(self) -> bool:
        return bool(self.positions)

    def flushed(self, positions: dict[Position, int]) -> None:
        self.positions.update(positions)

    def rewound(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.positions[tp.topic, tp.partition] = 0

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)

    def when_due(self) -> None:
        if self.pending and time.monotonic() - self.last >= self.interval:
            self.now()

    def now(self) -> None:
        if not self.pending:
            return
        positions, self.last = self.positions, time.monotonic()
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in positions.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # a rebalance, a broker away: the records come again, writes are idempotent
            # Kept for the next commit: a rewound partition's 0 must reach Kafka before the sink is told.
            log.warning("offset commit failed (%s); tried again at the next commit", exc)
            return
        self.positions = {}
        retrying(self.sink.committed, self.stop, self.what)
