"""When the sink's loop commits: only what was flushed, at most every TALLYROOM_SINK_COMMIT_SECONDS."""

from __future__ import annotations

from kafka.errors import CommitFailedError

from tallyroom.consumers.loop import Commits
from tallyroom.lifecycle import Stop


class Consumer:
    def __init__(self, fail: bool = False):
        self.commits = 0
        self.fail = fail

    def commit(self) -> None:
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.commits += 1


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
    for _ in range(3):
        loop.flushed()
        loop.when_due()
    assert (consumer.commits, sink.told) == (3, 3)


def test_nothing_flushed_is_never_committed():
    loop, consumer, _ = commits(0)
    loop.when_due()
    loop.now()
    assert consumer.commits == 0


def test_flushes_within_the_interval_wait_for_one_commit():
    loop, consumer, sink = commits(3600)
    loop.last -= 3600  # the interval has passed since the loop began
    loop.flushed()
    loop.when_due()
    for _ in range(5):
        loop.flushed()
        loop.when_due()
    assert (consumer.commits, sink.told) == (1, 1)
    loop.now()  # a stop in good order
    assert consumer.commits == 2
    loop.now()
    assert consumer.commits == 2


def test_a_rewound_batch_drops_what_was_pending():
    loop, consumer, _ = commits(0)
    loop.flushed()
    loop.dropped()
    loop.when_due()
    assert consumer.commits == 0


def test_a_failed_commit_is_not_reported_to_the_sink():
    loop, consumer, sink = commits(0, Consumer(fail=True))
    loop.flushed()
    loop.when_due()
    assert sink.told == 0 and not loop.pending
