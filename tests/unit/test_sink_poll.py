"""The sink loop's poll: the first record, then what is already fetched; a record librdkafka has
handed over is never dropped (its real-broker twin is tests/integration/test_sink_poll.py)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tallyroom.consumers.loop import partition_names, poll


class Fetched:
    """A consumer holding ``records`` already fetched; ``consume`` fails once if ``fail`` is set."""

    def __init__(self, records: list[str], fail: bool = False):
        self.records, self.fail = list(records), fail
        self.calls: list[tuple[str, int, float]] = []

    def poll(self, timeout: float) -> str | None:
        self.calls.append(("poll", 1, timeout))
        return self.records.pop(0) if self.records else None

    def consume(self, num_messages: int, timeout: float) -> list[str]:
        self.calls.append(("consume", num_messages, timeout))
        if self.fail:
            self.fail = False
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        taken, self.records = self.records[:num_messages], self.records[num_messages:]
        return taken


def test_the_first_record_is_waited_for_and_the_rest_taken_without_waiting():
    consumer = Fetched(["r0", "r1", "r2"])
    assert poll(consumer, timeout=0.5, most=500) == ["r0", "r1", "r2"]  # type: ignore[arg-type]
    assert consumer.calls == [("poll", 1, 0.5), ("consume", 499, 0)]


def test_a_poll_takes_at_most_the_limit_and_the_rest_comes_next():
    consumer = Fetched([f"r{i}" for i in range(7)])
    assert poll(consumer, timeout=0.5, most=3) == ["r0", "r1", "r2"]  # type: ignore[arg-type]
    assert poll(consumer, timeout=0.5, most=3) == ["r3", "r4", "r5"]  # type: ignore[arg-type]
    assert poll(consumer, timeout=0.5, most=3) == ["r6"]  # type: ignore[arg-type]
    assert poll(consumer, timeout=0.5, most=3) == []  # type: ignore[arg-type]


def test_nothing_fetched_within_the_timeout_is_an_empty_poll():
    consumer = Fetched([])
    assert poll(consumer, timeout=0.5) == []  # type: ignore[arg-type]
    assert consumer.calls == [("poll", 1, 0.5)]


def test_a_failure_after_the_first_record_keeps_it_and_the_rest_come_next_poll():
    consumer = Fetched(["r0", "r1", "r2"], fail=True)
    assert poll(consumer, timeout=0.5) == ["r0"]  # type: ignore[arg-type]
    assert poll(consumer, timeout=0.5) == ["r1", "r2"]  # type: ignore[arg-type]


def test_an_assignment_is_logged_as_sorted_topic_slash_partition():
    assigned = [TopicPartition("t.results", 1), TopicPartition("t.alerts", 0), TopicPartition("t.results", 0)]
    assert partition_names(assigned) == "t.alerts/0, t.results/0, t.results/1"
    assert partition_names([]) == ""
