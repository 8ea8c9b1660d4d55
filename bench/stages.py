"""Where a declaration's latency goes: to the worker's send of its result, and from there into Redis.

A load knows when each declaration was handed to the producer and when the probe saw it land
in Redis (``tallyroom.bench.load``). Between the two, the worker's results record for it
carries the worker's send time (its Kafka timestamp: CreateTime, set by the worker's producer
at ``send``) and, in its seat's provenance, the partition and offset of the declaration it
counted. So each declaration's latency splits in two:

- ``to_worker_send``: the producer, the broker, the worker's fetch, its batch window
  (``TALLYROOM_WORKER_BATCH_SECONDS``) and its work on the batch up to the send;
- ``worker_send_to_redis``: the broker, the sink's poll, its Redis script, and the probe's
  look (at most 1 ms late).

The send and landing times are on the monotonic clock, the worker's timestamps on the wall
clock in whole milliseconds: the bench notes both clocks at one moment (``ClockPair``), on the
same machine, and converts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from tallyroom.bench.stats import latency_summary
from tallyroom.settings import Settings

Position = tuple[int, int]  # (partition, offset) of a declaration's record


@dataclass(frozen=True)
class ClockPair:
    """The wall clock and the monotonic clock read at one moment."""

    wall: float
    monotonic: float

    @classmethod
    def now(cls) -> ClockPair:
        return cls(time.time(), time.monotonic())

    def wall_ms(self, monotonic: float) -> float:
        return (monotonic - self.monotonic + self.wall) * 1000


def split(
    clocks: ClockPair,
    sent_at: Sequence[float],
    positions: Sequence[Position],
    landed_at: Sequence[float | None],
    worker_sent_ms: Mapping[Position, int],
) -> dict:
    """Both stages' latency summaries over the declarations that landed and whose result was found."""
    to_worker: list[float] = []
    to_redis: list[float] = []
    for sent, position, landed in zip(sent_at, positions, landed_at, strict=True):
        worker_sent = worker_sent_ms.get(position)
        if landed is None or worker_sent is None:
            continue
        to_worker.append(worker_sent - clocks.wall_ms(sent))
        to_redis.append(clocks.wall_ms(landed) - worker_sent)
    return {
        "matched": len(to_worker),
        "to_worker_send": latency_summary(to_worker),
        "worker_send_to_redis": latency_summary(to_redis),
    }


def result_position(value: bytes, declarations_topic: str) -> Position | None:
    """The declaration a results record counted: its seat's provenance, if it came from ``declarations_topic``."""
    try:
        seat = json.loads(value).get("seat")
        origin = seat.get("provenance") if isinstance(seat, dict) else None
    except (ValueError, AttributeError):
        return None
    if not isinstance(origin, dict) or origin.get("topic") != declarations_topic:
        return None
    return int(origin["partition"]), int(origin["offset"])


def worker_send_times(settings: Settings, election: str, since_wall: float, timeout: float = 60) -> dict[Position, int]:
    """The worker's send time (ms) of each results record of ``election`` written since ``since_wall``,
    by the declaration it counted: read from the results topic by its own consumer (no group)."""
    consumer = KafkaConsumer(
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        **settings.kafka_python_config(),
        **settings.kafka_timeouts(),
    )
    key = election.encode()
    found: dict[Position, int] = {}
    try:
        topic = settings.topic_results
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        starts = consumer.offsets_for_times({tp: int(since_wall * 1000) for tp in partitions})
        ends = consumer.end_offsets(partitions)
        for tp in partitions:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else ends[tp])
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    if record.key != key or record.value is None:
                        continue
                    position = result_position(record.value, settings.topic_declarations)
                    if position is not None:
                        found.setdefault(position, record.timestamp)  # the first send: a re-count comes later
    finally:
        consumer.close()
    return found
