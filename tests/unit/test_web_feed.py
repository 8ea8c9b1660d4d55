"""The web page's fan-out without Redis: one election's feed, its history and its viewers."""

from __future__ import annotations

import asyncio
import json

import pytest

from tallyroom.consumers.web.events import PING, ElectionFeed, FeedConfig, Feeds, Viewer
from tallyroom.consumers.web.stream_ids import format_stream_id, parse_stream_id

CONFIG = FeedConfig(viewer_queue=3, history_max=10)


def entries(first: int, count: int) -> list[tuple[str, dict[str, str]]]:
    return [(f"{1000 + n}-0", {"json": json.dumps({"n": n})}) for n in range(first, first + count)]


def frame_ids(chunk: bytes) -> list[str]:
    return [line[4:].decode() for line in chunk.split(b"\r\n") if line.startswith(b"id: ")]


def state(version: int) -> dict:
    return {"election": "e", "declared": version, "total": 9, "seats": {}, "votes": {}, "tally": {"version": version}}


def pending(viewer: Viewer) -> bytes:
    return b"".join(viewer.pending)


def publish(feed: ElectionFeed, alerts: list[tuple[str, dict[str, str]]] = (), tally: dict | None = None) -> None:
    """What one read of Redis does, then the fan-out tick."""
    feed.publish_alerts(list(alerts))
    if tally is not None:
        feed.publish_tally(tally)
    feed.fan_out()


def test_a_viewer_gets_the_held_alerts_after_its_resume_point_then_the_tally():
    feed = ElectionFeed("e", CONFIG)
    publish(feed, entries(0, 5))
    publish(feed, tally=state(5))
    viewer = Viewer(3)
    assert feed.join(viewer, parse_stream_id("1001-0")) is None
    chunk = pending(viewer)
    assert frame_ids(chunk) == ["1002-0", "1003-0", "1004-0"]
    tally = chunk.split(b"\r\n\r\n")[-2]
    assert tally.startswith(b"event: tally\r\n") and b"id:" not in tally  # never moves the resume point


def test_every_viewer_gets_each_batch_once_as_the_same_bytes():
    feed = ElectionFeed("e", FeedConfig())
    viewers = [Viewer(8) for _ in range(50)]
    for viewer in viewers:
        feed.join(viewer, (0, 0))
    publish(feed, entries(0, 3))
    publish(feed, entries(2, 3))  # overlaps the last read: 1002-0 is not sent again
    assert all(len(v.pending) == 2 and v.pending[0] is viewers[0].pending[0] for v in viewers)
    assert frame_ids(pending(viewers[7])) == [f"{1000 + n}-0" for n in range(5)]
    assert feed.counts.alerts_fanned_out == 50 * 5


def test_next_chunk_sends_everything_waiting_as_one_chunk():
    async def scenario():
        viewer = Viewer(8)
        viewer.offer(b"a")
        viewer.offer(b"b")
        assert await viewer.next_chunk() == b"ab"
        waiting = asyncio.create_task(viewer.next_chunk())
        await asyncio.sleep(0)
        assert not waiting.done()
        viewer.offer(b"c")
        assert await waiting == b"c"

    asyncio.run(scenario())


def test_a_viewer_that_falls_behind_is_dropped_and_the_others_go_on():
    feed = ElectionFeed("e", CONFIG)
    slow, fast = Viewer(3), Viewer(3)
    feed.join(slow, (0, 0))
    feed.join(fast, (0, 0))
    for n in range(4):
        publish(feed, entries(n, 1))
        fast.pending.clear()  # fast sends as it goes
    assert slow.dropped and not slow.pending and slow not in feed.viewers
    assert not fast.dropped and fast in feed.viewers
    assert feed.counts.viewers_dropped == 1
    assert asyncio.run(slow.next_chunk()) is None


def one_stream():
    """Feeds with one election (its tally read) and one viewer's SSE body, as the server streams it."""
    feeds = Feeds(client=None, config=CONFIG)
    feed = feeds.feeds["e"] = ElectionFeed("e", CONFIG, feeds.counts)
    publish(feed, tally=state(1))
    return feeds, feed, feeds.stream(feed, feeds.viewer(), (0, 0))


def test_a_dropped_stream_ends_with_a_retry_hint():
    async def scenario():
        feeds, feed, body = one_stream()
        first = await body.__anext__()
        assert first.startswith(b"retry: %d\r\nevent: tally" % CONFIG.retry_ms)
        for n in range(CONFIG.viewer_queue + 1):
            publish(feed, entries(n, 1))
        last = await body.__anext__()
        assert b"retry: %d\r\n" % CONFIG.drop_retry_ms in last and last.startswith(b": dropped")
        with pytest.raises(StopAsyncIteration):
            await body.__anext__()
        assert not feed.viewers and "e" in feeds._idle  # left, and the feed will stop unless someone joins
        await feeds.close()

    asyncio.run(scenario())


def test_resuming_after_an_id_the_feed_has_not_read_yet_skips_up_to_it():
    feed = ElectionFeed("e", CONFIG)
    publish(feed, entries(0, 2))
    viewer = Viewer(8)
    feed.join(viewer, parse_stream_id("1003-0"))  # seen by this browser on another server, further on
    publish(feed, entries(2, 2))  # 1002, 1003: both already seen
    assert not viewer.pending
    publish(feed, entries(4, 2))
    assert frame_ids(pending(viewer)) == ["1004-0", "1005-0"]


def test_a_trimmed_history_asks_for_the_older_alerts_from_redis():
    feed = ElectionFeed("e", CONFIG)
    publish(feed, entries(0, 11))  # over history_max (10): the oldest half goes
    assert not feed.complete and format_stream_id(feed.ids[0]) == "1006-0"
    viewer = Viewer(8)
    assert feed.join(viewer, parse_stream_id("1002-0")) == (1006, 0)
    assert frame_ids(pending(viewer))[0] == "1006-0"
    assert feed.join(Viewer(8), parse_stream_id("1007-0")) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("18446744073709551616-0", "out of range"),
        ("1-18446744073709551616", "out of range"),
        ("yesterday", "not a Redis stream id"),
        ("1-", "not a Redis stream id"),
    ],
)
def test_stream_ids_outside_what_redis_holds_are_refused_by_name(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_stream_id(text, "after")
    assert str(caught.value).startswith("after: ")


def test_stream_ids_parse_and_order_as_redis_orders_them():
    assert parse_stream_id("18446744073709551615-18446744073709551615") == (2**64 - 1, 2**64 - 1)
    assert parse_stream_id("5") == (5, 0) < parse_stream_id("5-1") < parse_stream_id("10-0")


def test_reads_between_two_ticks_go_out_as_one_chunk_in_order():
    feed = ElectionFeed("e", FeedConfig())
    viewer = Viewer(8)
    feed.join(viewer, (0, 0))
    feed.publish_alerts(entries(0, 2))
    feed.publish_tally(state(2))
    feed.publish_alerts(entries(2, 2))
    assert not viewer.pending  # nothing goes out before the tick
    feed.fan_out()
    (chunk,) = viewer.pending
    assert frame_ids(chunk) == ["1000-0", "1001-0", "1002-0", "1003-0"]
    assert chunk.index(b"event: tally") < chunk.index(b"id: 1002-0")  # after the alerts it counts
    assert feed.tally_frame and feed.ids[-1] == (1003, 0)


def test_a_viewer_resuming_after_an_id_not_fanned_out_yet_gets_only_what_follows():
    feed = ElectionFeed("e", FeedConfig())
    publish(feed, entries(0, 2))
    feed.publish_alerts(entries(2, 3))  # read, not yet sent: 1002-1004
    viewer = Viewer(8)
    feed.join(viewer, parse_stream_id("1003-0"))
    assert not viewer.pending
    feed.fan_out()
    assert frame_ids(pending(viewer)) == ["1004-0"]


def test_the_fan_out_runs_at_once_then_at_most_once_per_interval():
    async def scenario():
        feed = ElectionFeed("e", FeedConfig(fanout_interval=0.05))
        viewer = Viewer(8)
        feed.join(viewer, (0, 0))
        feed.publish_alerts(entries(0, 1))
        feed._fan_out_soon()
        assert len(viewer.pending) == 1  # the first read goes out at once
        for n in range(1, 4):
            feed.publish_alerts(entries(n, 1))
            feed._fan_out_soon()
        assert len(viewer.pending) == 1 and feed.fan_out_handle is not None
        await asyncio.sleep(0.1)
        assert len(viewer.pending) == 2 and frame_ids(viewer.pending[1]) == ["1001-0", "1002-0", "1003-0"]

    asyncio.run(scenario())


def test_a_ping_reaches_every_viewer_and_a_stopping_server_ends_each_stream_with_a_retry_hint():
    async def scenario():
        feeds, feed, body = one_stream()
        assert b"event: tally" in await body.__anext__()
        feed.ping()
        assert await body.__anext__() == PING == b"event: heartbeat\r\ndata: 1\r\n\r\n"  # the page sees it
        publish(feed, entries(0, 1))
        feeds.end_all()
        assert frame_ids(await body.__anext__()) == ["1000-0"]  # what was waiting still goes
        last = await body.__anext__()
        assert last.startswith(b": the server is stopping") and b"retry: %d" % CONFIG.drop_retry_ms in last
        with pytest.raises(StopAsyncIteration):
            await body.__anext__()
        await feeds.close()

    asyncio.run(scenario())


def test_a_viewer_that_left_gets_nothing_more():
    async def scenario():
        viewer = Viewer(8)
        viewer.offer(b"a")
        viewer.end()
        assert await viewer.next_chunk() is None

    asyncio.run(scenario())


def test_a_backlog_goes_out_in_sends_of_bounded_size_in_order():
    from tallyroom.consumers.web.events import SEND_MAX

    async def scenario():
        viewer = Viewer(64)
        parts = [bytes([65 + n]) * (SEND_MAX // 3) for n in range(7)] + [b"z" * (SEND_MAX * 2)]
        for part in parts:
            viewer.offer(part)
        sends = []
        while viewer.pending:
            sends.append(await viewer.next_chunk())
        assert b"".join(sends) == b"".join(parts)
        assert [len(s) for s in sends[:-1]] == [3 * (SEND_MAX // 3)] * 2 + [SEND_MAX // 3]
        assert sends[-1] is parts[-1]  # a chunk over the bound goes alone, not copied

    asyncio.run(scenario())
