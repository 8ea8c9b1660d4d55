"""How far a consumer group is behind its topics: to know when the pipeline has gone quiet."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tallyroom.settings import Settings


def group_lag(settings: Settings, group: str, topic: str) -> int:
    """Messages on ``topic`` that ``group`` has not committed yet."""
    admin = KafkaAdminClient(**settings.kafka_python_config())
    consumer = KafkaConsumer(**settings.kafka_python_config())
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = consumer.end_offsets(tps)
        committed = admin.list_group_offsets({group: tps}).get(group, {})
        return sum(
            ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) for tp in tps
        )
    finally:
        consumer.close()
        admin.close()


def wait_until_caught_up(settings: Settings, timeout: float = 120) -> None:
    """Block until the worker has committed every declaration and the sink every result."""
    checks = [
        (settings.worker_id, settings.topic_declarations),
        (settings.sink_group, settings.topic_results),
        (settings.sink_group, settings.topic_dead_letters),
    ]
    deadline = time.monotonic() + timeout
    while True:
        lags = {f"{group} on {topic}": group_lag(settings, group, topic) for group, topic in checks}
        if not any(lags.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still behind after {timeout:.0f}s: {lags}")
        time.sleep(0.5)
