"""The one loop from Kafka to somewhere: it polls, hands each batch to a sink, commits once the
sink has flushed it (at most every ``TALLYROOM_SINK_COMMIT_SECONDS``), retries a sink whose
service is away, and stops on ``Stop``.

A sink is anything with these five methods (``RedisSink`` is one):

- ``open(consumer)``: connect; may return a rebalance listener for the subscription.
- ``write(records)``: take one poll's ``(topic, value)`` records, in order (called after
  every poll, also with none, so a sink can look at its own state once per poll). False
  means the sink rewound the consumer and dropped the batch: nothing is committed.
- ``flush()``: make what it took durable. Offsets are committed only after it returns.
- ``committed()``: the offsets of what was flushed are committed.
- ``close()``.

Delivery is at-least-once: a batch flushed but not committed comes again after a restart or
a rebalance, so a sink's writes must be idempotent. ``write``, ``flush`` and ``committed`` are
retried (``lifecycle.retrying``) while their service is unreachable, and the consumer's poll while
Kafka is; a refused password is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError

from tallyroom.lifecycle import Stop, check_kafka_login, kafka_transient, retrying
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.loop")

Record = tuple[str, bytes]  # (topic, value)
POLL_MS = 500
MAX_POLL_RECORDS = 500


class Sink(Protocol):
    def open(self, consumer: KafkaConsumer) -> ConsumerRebalanceListener | None: ...

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
    consumer = KafkaConsumer(
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_POLL_RECORDS,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **settings.kafka_python_config(),
        **settings.kafka_timeouts(),
    )
    commits = Commits(consumer, sink, settings.sink_commit_seconds, stop, what)
    try:
        listener = retrying(lambda: sink.open(consumer), stop, what)
        consumer.subscribe(list(topics), listener=listener) if listener else consumer.subscribe(list(topics))
        started = time.monotonic()
        while not stop and (stop_after is None or time.monotonic() - started < stop_after):
            # A broker going away can raise out of poll (the sink died so, exit 69, in the broker
            # restart fault test in CI): it is waited out like Redis, until the stop.
            batches = retrying(lambda: consumer.poll(timeout_ms=POLL_MS), stop, "Kafka", transient=kafka_transient)
            records = [(tp.topic, record.value) for tp, batch in batches.items() for record in batch]
            if not retrying(lambda: sink.write(records), stop, what):
                commits.dropped()
                continue
            if records:
                retrying(sink.flush, stop, what)
                commits.flushed()
            commits.when_due()
        commits.now()  # a sink stopped in good order leaves nothing flushed uncommitted
    finally:
        try:
            consumer.close()
        finally:
            sink.close()


class Commits:
    """When the loop commits: what the sink has flushed, at most every ``interval`` seconds.

    Only ever right after a flush or after a poll that returned nothing, so the consumer's
    positions (what ``commit()`` sends) are exactly what the sink has flushed. At 200 results
    a second a commit per poll was a broker round trip every few records in the sink's loop.
    """

    def __init__(self, consumer: KafkaConsumer, sink: Sink, interval: float, stop: Stop, what: str):
        self.consumer, self.sink, self.interval, self.stop, self.what = consumer, sink, interval, stop, what
        self.pending = False
        self.last = time.monotonic()

    def flushed(self) -> None:
        self.pending = True

    def dropped(self) -> None:
        # The sink rewound the consumer: its positions are no longer what was flushed.
        self.pending = False

    def when_due(self) -> None:
        if self.pending and time.monotonic() - self.last >= self.interval:
            self.now()

    def now(self) -> None:
        if not self.pending:
            return
        self.pending, self.last = False, time.monotonic()
        try:
            self.consumer.commit()
        except KafkaError as exc:  # a rebalance: the records will come again, writes are idempotent
            log.warning("offset commit failed (%s); records will be re-delivered", exc)
            return
        retrying(self.sink.committed, self.stop, self.what)
