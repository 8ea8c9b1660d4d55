"""The sink loop's poll on the real broker: a record is handed on as soon as it is there, and a
backlog comes in polls of up to the batch limit, in order."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Message, Producer
from kafka import KafkaAdminClient

from tallyroom.consumers.loop import KafkaErrors, make_consumer, poll, taken
from tallyroom.producers.kafka import ensure_topics
from tests.integration.conftest import (
    isolated_settings,
    stack,  # noqa: F401  (the real stack)
)

pytestmark = pytest.mark.integration


@pytest.fixture
def results_topic(stack):  # noqa: F811
    settings, _ = isolated_settings(stack, "sink-poll")
    created = [spec.name for spec in ensure_topics(settings)]
    yield settings
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        admin.delete_topics(created)
    finally:
        admin.close()


def produce(settings, values: list[bytes]) -> None:
    producer = Producer(settings.librdkafka_config() | {"linger.ms": 0})
    for value in values:
        producer.produce(settings.topic_results, value)
    assert producer.flush(10) == 0


def assigned_consumer(settings) -> tuple[Consumer, list[list[Message]]]:
    """A sink's consumer once the group has given it the partition, and what its polls took meanwhile."""
    consumer = make_consumer(settings, settings.sink_group, KafkaErrors())
    consumer.subscribe([settings.topic_results])
    early: list[list[Message]] = []
    deadline = time.monotonic() + 30
    while not consumer.assignment():
        assert time.monotonic() < deadline, "no assignment within 30 s"
        if polled := poll(consumer, timeout=0.2):
            early.append(polled)
    return consumer, early


def test_one_record_is_handed_on_without_waiting_for_a_full_batch(results_topic):
    settings = results_topic
    consumer, early = assigned_consumer(settings)
    try:
        assert early == []  # nothing sent yet
        produce(settings, [b"one"])
        started = time.monotonic()
        records: list[tuple[str, bytes]] = []
        while not records and time.monotonic() - started < 60:
            records += taken(poll(consumer, timeout=30))[0]
        waited = time.monotonic() - started
        assert records == [(settings.topic_results, b"one")]
        # consume(500, 30) would have sat out its whole 30 s for 499 records that never come.
        assert waited < 15, f"a single record took {waited:.1f} s to be polled"
    finally:
        consumer.close()


def test_a_backlog_comes_whole_and_in_order_in_polls_of_at_most_the_limit(results_topic):
    settings = results_topic
    values = [b"%d" % i for i in range(1200)]
    produce(settings, values)
    consumer, early = assigned_consumer(settings)
    try:
        sizes = [len(polled) for polled in early]
        got = [value for polled in early for _, value in taken(polled)[0]]
        deadline = time.monotonic() + 60
        while len(got) < len(values) and time.monotonic() < deadline:
            polled = poll(consumer, timeout=1.0, most=500)
            sizes.append(len(polled))
            got += [value for _, value in taken(polled)[0]]
        assert got == values
        assert max(sizes) <= 500
        assert max(sizes) > 1  # what was already fetched came with the first record, not one a poll
    finally:
        consumer.close()
