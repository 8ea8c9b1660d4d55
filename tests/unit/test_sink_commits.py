"""What the sink's loop commits, and when: only what was flushed (or a rewound partition's start),
at most every TALLYROOM_SINK_COMMIT_SECONDS."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tallyroom.consumers.loop import Commits
from tallyroom.lifecycle import Stop

RESULTS = "tallyroom.results"


class Consumer:
    def __init__(self, fail: bool = False):
        self.commits: list[dict[tuple[str, int], int]] = []
        self.fail = fail

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False  # the sink is told only once Kafka holds the offsets
        if self.fail:
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})


class Sink:
    def __init__(self) -> None:
        self.told = 0

    def committed(self) -> None:
        self.told += 1


def commits(interval: float, consumer: Consumer | None = None) -> tuple[Commits, Consumer, Sink]:
    consumer, sink = consumer or Consumer(), Sink()
    return Commits(consumer, sink, interval, Stop(), "Redis"), consumer, sink  # type: ignore[arg-type]


def test_every_poll_with_no_interval():
    loop, consumer, sink = commits(0)
    for offset in (3, 7, 9):
        loop.flushed({(RESULTS, 0): offset})
        loop.when_due()
    assert consumer.commits == [{(RESULTS, 0): 3}, {(RESULTS, 0): 7}, {(RESULTS, 0): 9}] and sink.told == 3


def test_nothing_flushed_is_never_committed():
    loop, consumer, _ = commits(0)
    loop.when_due()
    loop.now()
    assert consumer.commits == []


def test_flushes_within_the_interval_wait_for_one_commit_of_the_latest_offsets():
    loop, consumer, sink = commits(3600)
    loop.last -= 3600  # the interval has passed since the loop began
    loop.flushed({(RESULTS, 0): 5})
    loop.when_due()
    for offset in range(6, 11):
        loop.flushed({(RESULTS, 0): offset, (RESULTS, 1): offset * 2})
        loop.when_due()
    assert (len(consumer.commits), sink.told) == (1, 1)
    loop.now()  # a stop in good order
    assert consumer.commits[-1] == {(RESULTS, 0): 10, (RESULTS, 1): 20}
    loop.now()
    assert len(consumer.commits) == 2


def test_a_rewound_partition_is_committed_at_its_start_until_it_is_flushed_again():
    loop, consumer, _ = commits(0)
    loop.flushed({(RESULTS, 0): 40, (RESULTS, 1): 30})
    loop.rewound([TopicPartition(RESULTS, 0), TopicPartition(RESULTS, 1)])  # Redis was wiped
    loop.flushed({(RESULTS, 1): 2})  # partition 1 has been read again up to 2, partition 0 not yet
    loop.when_due()
    assert consumer.commits == [{(RESULTS, 0): 0, (RESULTS, 1): 2}]


def test_a_revoked_partition_is_not_committed():
    loop, consumer, _ = commits(0)
    loop.flushed({(RESULTS, 0): 4, (RESULTS, 1): 6})
    loop.revoked([TopicPartition(RESULTS, 1)])
    loop.when_due()
    assert consumer.commits == [{(RESULTS, 0): 4}]


def test_a_failed_commit_is_not_reported_to_the_sink_and_is_tried_again():
    consumer = Consumer(fail=True)
    loop, _, sink = commits(0, consumer)
    loop.rewound([TopicPartition(RESULTS, 0)])
    loop.when_due()
    assert sink.told == 0 and loop.pending
    consumer.fail = False
    loop.when_due()
    assert consumer.commits == [{(RESULTS, 0): 0}] and sink.told == 1 and not loop.pending
