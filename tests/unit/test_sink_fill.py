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


class _Consumer:
    def __init__(self):
        self.seeks: list[tuple] = []

    def assignment(self):
        return set()

    def seek_to_beginning(self, *partitions):
        if not partitions:
            raise ValueError("No partitions are currently assigned")  # as kafka-python does
        self.seeks.append(partitions)


def test_a_sink_given_no_partition_neither_marks_nor_seeks():
    """Seen in the secure e2e: a first, empty assignment counted as 'filled', then a missing mark
    as a wiped Redis, and seek_to_beginning() with nothing assigned ended the sink."""
    from types import SimpleNamespace

    from tallyroom.consumers.redis_sink import RedisFill

    consumer = _Consumer()
    fill = RedisFill(SimpleNamespace(redis=_Redis()), consumer, "group")  # type: ignore[arg-type]
    fill.on_partitions_assigned(set())
    assert fill.marked is False
    assert fill.wiped() is False and fill.wiped() is False
    fill.marked = True  # even if it were marked: a "wiped" Redis with nothing assigned seeks nothing
    assert fill.wiped() is True and consumer.seeks == []
