"""The sink's refill bookkeeping (RedisFill) with tiny stand-ins for Redis and the consumer."""

from __future__ import annotations


class _Pipe:
    def __init__(self, exists: int, run_id: str):
        self.replies = [exists, {"run_id": run_id}]

    def exists(self, key):
        pass

    def info(self, section):
        pass

    def execute(self):
        return self.replies


class _Redis:
    """Just what RedisFill asks of Redis here: no filled mark, the same server throughout."""

    def hkeys(self, key):
        return []

    def pipeline(self, transaction=False):
        return _Pipe(0, "same-server")


class _Partitions:
    """The loop's ``Partitions``, with nothing assigned."""

    def __init__(self):
        self.rewinds: list[list] = []

    def assignment(self):
        return []

    def rewind(self, partitions):
        self.rewinds.append(list(partitions))


def test_a_sink_given_no_partition_neither_marks_nor_rewinds():
    """Seen in the secure e2e: a first, empty assignment counted as 'filled', then a missing mark
    as a wiped Redis, and seek_to_beginning() with nothing assigned ended the sink."""
    from types import SimpleNamespace

    from tallyroom.consumers.redis_sink import RedisFill

    partitions = _Partitions()
    fill = RedisFill(SimpleNamespace(redis=_Redis()), partitions, "group")  # type: ignore[arg-type]
    assert fill.on_assign([]) == []
    assert fill.marked is False
    assert fill.wiped() is False and fill.wiped() is False
    fill.marked = True  # even if it were marked: a "wiped" Redis with nothing assigned rewinds nothing
    assert fill.wiped() is True and partitions.rewinds == [[]]


def test_partitions_this_redis_has_no_mark_for_are_read_from_their_start():
    from types import SimpleNamespace

    from confluent_kafka import TopicPartition

    from tallyroom.consumers.redis_sink import RedisFill

    class Marked(_Redis):
        def hkeys(self, key):
            return [b"tallyroom.results/0"]

    fill = RedisFill(SimpleNamespace(redis=Marked()), _Partitions(), "group")  # type: ignore[arg-type]
    given = [TopicPartition("tallyroom.results", 0), TopicPartition("tallyroom.results", 1)]
    again = fill.on_assign(given)
    assert [(tp.topic, tp.partition) for tp in again] == [("tallyroom.results", 1)]
    assert fill.marked is False  # marked only after the commit that records partition 1's start
