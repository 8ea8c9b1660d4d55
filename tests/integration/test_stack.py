"""The local stack runs a real broker and a real redis-server that clients can use."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tallyroom import stack as local_stack
from tallyroom.settings import Settings

pytestmark = pytest.mark.integration


def _pids(settings: Settings) -> dict[str, int | None]:
    return {s.name: s.pid for s in local_stack.status(settings)}


def test_status_reports_both_services_running(stack: Settings) -> None:
    statuses = {s.name: s for s in local_stack.status(stack)}

    assert set(statuses) == {"kafka", "redis"}
    for s in statuses.values():
        assert s.running, s
        assert s.pid and s.pid > 0
    assert statuses["kafka"].address == stack.kafka_bootstrap
    assert statuses["kafka"].detail == "answering"


def test_kafka_record_round_trip(stack: Settings) -> None:
    topic = f"tallyroom.test-stack.{uuid.uuid4().hex}"
    admin = KafkaAdminClient(**stack.kafka_python_config())
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()

    producer = KafkaProducer(**stack.kafka_python_config(), acks="all", enable_idempotence=True)
    try:
        meta = producer.send(topic, key=b"E14000530", value=b"declared").get(timeout=30)
    finally:
        producer.close()
    assert meta.topic == topic and meta.offset == 0

    consumer = KafkaConsumer(**stack.kafka_python_config(), enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = []
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=1000).get(tp, [])
    finally:
        consumer.close()

    assert [(r.key, r.value) for r in records] == [(b"E14000530", b"declared")]


def test_redis_set_get_round_trip(stack: Settings) -> None:
    client = redis.Redis.from_url(stack.redis_url, **stack.redis_kwargs())
    key = f"tallyroom:test-stack:{uuid.uuid4().hex}"
    try:
        assert client.set(key, "42", ex=60)
        assert client.get(key) == "42"
    finally:
        client.delete(key)
        client.close()


def test_second_up_is_a_no_op(stack: Settings) -> None:
    before = _pids(stack)

    started = time.monotonic()
    local_stack.up(stack)

    assert _pids(stack) == before
    assert time.monotonic() - started < 15


def test_redis_can_be_stopped_and_started_alone(stack: Settings) -> None:
    kafka_pid = _pids(stack)["kafka"]

    local_stack.redis_down(stack)
    assert not {s.name: s for s in local_stack.status(stack)}["redis"].running

    local_stack.redis_up(stack)
    statuses = {s.name: s for s in local_stack.status(stack)}
    assert statuses["redis"].running
    assert statuses["kafka"].pid == kafka_pid
