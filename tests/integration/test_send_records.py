"""The worker's batched sends on the real broker (``faust_compat.send_records``): every record lands
once, on the partition Kafka's default partitioner gives its key (or the one it names), in its order."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, Producer
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from tallyroom.streams import faust_compat
from tallyroom.streams.app import create_app
from tests.integration.conftest import (
    isolated_settings,
    stack,  # noqa: F401  (the real stack)
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


@pytest.fixture
def topics(stack):  # noqa: F811
    settings, _ = isolated_settings(stack, "send-records")
    names = [settings.topic_results, settings.topic_alerts]
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
        yield settings
        admin.delete_topics(names)
    finally:
        admin.close()


def sent_through_the_worker_producer(settings, records, max_batch_size: int | None = None) -> None:
    async def run() -> None:
        app = create_app(settings.model_copy(update={"worker_id": f"{settings.worker_id}-send"}))
        if max_batch_size is not None:
            app.conf.producer_max_batch_size = max_batch_size
        await app.producer.start()
        try:
            await faust_compat.send_records(app, records)
        finally:
            await app.producer.stop()

    asyncio.run(run())


def read_back(settings, topic: str, count: int) -> list[tuple[int, bytes | None, bytes | None]]:
    consumer = Consumer(
        settings.librdkafka_config()
        | {"group.id": f"{topic}-reader", "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    got: list[tuple[int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append((message.partition(), message.key(), message.value()))
        time.sleep(1)  # nothing more may come
        while (message := consumer.poll(0.2)) is not None:
            got.append((message.partition(), message.key(), message.value()))
    finally:
        consumer.close()
    return got


def where_kafka_puts(settings, topic: str, keys: list[bytes]) -> dict[bytes, int]:
    """The partition the Kafka client's own default partitioner picks for each key (librdkafka, murmur2)."""
    placed: dict[bytes, int] = {}
    producer = Producer(settings.librdkafka_config() | {"partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(
            topic, b"probe", key=key, on_delivery=lambda err, msg: placed.__setitem__(msg.key(), msg.partition())
        )
    assert producer.flush(10) == 0
    return placed


def test_keyed_records_land_where_the_default_partitioner_puts_them_in_order(topics):
    settings = topics
    keys = [b"ge2024", b"ge2019", b"by-election-x", b"invalid", b"\xc3\xa9lection"]
    records = [(settings.topic_results, keys[i % len(keys)], b"%d" % i, None) for i in range(2000)]
    records += [(settings.topic_alerts, b"ge2024", b"named-%d" % i, 3) for i in range(10)]
    sent_through_the_worker_producer(settings, records)

    got = read_back(settings, settings.topic_results, 2000)
    assert sorted(int(value) for _, _, value in got) == list(range(2000))  # each once
    placed = where_kafka_puts(settings, settings.topic_alerts, keys)
    for partition, key, value in got:
        assert partition == placed[key], f"{key!r} on partition {partition}, Kafka's partitioner says {placed[key]}"
    for key in keys:
        mine = [int(value) for _, k, value in got if k == key]
        assert mine == sorted(mine)  # in the order sent
    named = read_back(settings, settings.topic_alerts, 10 + len(keys))
    assert [value for partition, _, value in named if value.startswith(b"named")] == [
        b"named-%d" % i for i in range(10)
    ]
    assert {partition for partition, _, value in named if value.startswith(b"named")} == {3}


def test_more_than_one_batch_of_a_partition_goes_in_order(topics):
    settings = topics
    records = [(settings.topic_results, b"ge2024", b"%04d" % i + b"x" * 1000, None) for i in range(300)]
    sent_through_the_worker_producer(settings, records, max_batch_size=16 * 1024)  # about 15 records a batch
    got = read_back(settings, settings.topic_results, 300)
    assert [int(value[:4]) for _, _, value in got] == list(range(300))


def test_a_record_over_the_batch_limit_goes_alone_in_its_order(topics):
    settings = topics
    sizes = [100, 40_000, 100, 100, 40_000]
    records = [(settings.topic_results, b"ge2024", b"%d:" % i + b"x" * size, None) for i, size in enumerate(sizes)]
    sent_through_the_worker_producer(settings, records, max_batch_size=16 * 1024)
    got = read_back(settings, settings.topic_results, len(sizes))
    assert [(int(value.split(b":")[0]), len(value)) for _, _, value in got] == [
        (i, len(b"%d:" % i) + size) for i, size in enumerate(sizes)
    ]
