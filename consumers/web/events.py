"""The live feed as Server-Sent Events: each election read from Redis once per process, fanned out to every viewer.

One ``ElectionFeed`` per election follows the alert stream (``XREAD BLOCK`` on one pooled
connection) and the tally (a ``GET`` of its version every ``tally_interval``, one ``MULTI``
read when it changed). Each alert is encoded as an SSE frame once. What was read goes out
on a fan-out tick: at most once every ``fanout_interval``, everything read since the last
tick is joined into one chunk, the same bytes for every viewer, and kept in the history.
A viewer holds no Redis connection: it is a bounded list of chunks waiting to be sent and an
event that wakes it, and its response is one task writing whatever waits as one send.
Measured with 5,000 viewers (bench/README.md, "Viewers"): a wake-up and a send per viewer per
read was most of the process's CPU, so reads are coalesced per tick, not per alert.

Resume: an alert's SSE ``id`` is its stream entry id. A viewer joining with
``Last-Event-ID`` (or ``?after=``) gets every alert after it from the history (or, for an
id older than the history holds, from Redis), then the latest tally, then whatever lands:
none missed, none twice. Tally events carry no ``id``, so a browser's resume point is always
an alert, and each goes out after the alerts of the seats it counts.

A viewer that falls ``viewer_queue`` chunks behind (its socket is not being read) is
dropped: its stream ends with a ``retry:`` hint, and the browser reconnects with
``Last-Event-ID`` and catches up from the history. A send blocked for ``send_timeout``
ends the stream too. Neither stops the feed or the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from bisect import bisect_right
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sse_starlette import ServerSentEvent
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tallyroom.consumers.keys import ElectionKeys, StreamEntry, read_entries, stream_entries
from tallyroom.consumers.web.store import read_state, read_winners, tally_version
from tallyroom.consumers.web.stream_ids import StreamId, format_stream_id, parse_stream_id
from tallyroom.lifecycle import raise_if_cancelled

log = logging.getLogger("tallyroom.web.events")

FROM_START = "0-0"
# A heartbeat event, not a comment: the page's badge says "live" only while something arrives.
PING = b"event: heartbeat\r\ndata: 1\r\n\r\n"
# A viewer's waiting chunks are joined into sends of at most this much (a bigger chunk goes alone):
# joining a whole backlog made a copy of it per viewer (peak RSS 3.8 GB with 5,000 slow viewers).
SEND_MAX = 64 * 1024


@dataclass(frozen=True)
class FeedConfig:
    block_ms: int = 500  # longest XREAD BLOCK
    tally_interval: float = 0.5  # at most one tally event this often (a --max replay changes it 650 times)
    batch: int = 500  # alerts read per XREAD
    retry_ms: int = 2000  # the browser's reconnect delay, sent first on every stream
    drop_retry_ms: int = 5000  # a dropped viewer's: longer, so a crowd dropped at once comes back spread out
    viewer_queue: int = 256  # chunks a viewer may have waiting before it is dropped
    send_timeout: float = 30.0  # a send to a viewer blocked this long (nothing read) ends its stream
    history_max: int = 20_000  # alert frames kept per election (a UK night has about 600)
    idle_seconds: float = 30.0  # a feed nobody watches stops after this
    max_feeds: int = 64  # elections followed at once by one process
    max_viewers: int = 10_000  # viewers held at once by one process
    ready_timeout: float = 10.0  # how long a new viewer waits for its feed's first read of Redis
    fanout_interval: float = 0.1  # at most one fan-out to the viewers this often; reads in between are joined
    # A heartbeat to every viewer this often: proxies keep idle streams open, and the page's badge
    # (live while something arrived in the last 25 s) can tell a quiet night from a dead stream.
    ping_seconds: float = 10.0


class FeedUnavailable(Exception):
    """A viewer cannot be taken on now (too many viewers or elections, or Redis is not answering)."""


@dataclass
class FeedCounts:
    """What the feeds have done, for /metrics."""

    alerts_fanned_out: int = 0  # alert frames handed to viewers (one per viewer per alert)
    viewers_dropped: int = 0  # viewers cut off for falling behind (queue full or a send timed out)


class Viewer:
    """One browser's stream: chunks waiting to be sent, bounded by ``limit``."""

    __slots__ = ("pending", "wake", "dropped", "ended", "skip_through", "limit")

    def __init__(self, limit: int, skip_through: StreamId | None = None):
        self.pending: list[bytes] = []
        self.wake = asyncio.Event()
        self.dropped = False  # fell behind: cut off, told to come back later
        self.ended: bytes | None = None  # gone (b""), or the server is stopping (the frame to end with)
        self.skip_through = skip_through  # resumed after an id the feed has not read yet: skip up to it
        self.limit = limit

    def end(self, last_frame: bytes = b"") -> None:
        """Stop the stream after what is waiting: the browser left (b""), or the server is stopping."""
        if self.ended is None:
            self.ended = last_frame
            self.wake.set()

    def offer(self, chunk: bytes) -> bool:
        """Queue a chunk; False (and the viewer dropped) when ``limit`` chunks are already waiting."""
        if self.dropped:
            return False
        if len(self.pending) >= self.limit:
            self.dropped = True
            self.pending.clear()  # the browser catches up from the history when it reconnects
            self.wake.set()
            return False
        self.pending.append(chunk)
        self.wake.set()
        return True

    async def next_chunk(self) -> bytes | None:
        """What is waiting, as one chunk (one send) of up to ``SEND_MAX``; None once dropped or ended."""
        while not self.pending and not self.dropped and self.ended is None:
            self.wake.clear()
            await self.wake.wait()
        if self.dropped or self.ended == b"" or (self.ended is not None and not self.pending):
            return None  # dropped, gone, or stopping with nothing left to send
        pending = self.pending
        if len(pending) == 1 or len(pending[0]) >= SEND_MAX:
            return pending.pop(0)  # the feed's own bytes, no copy
        size, count = 0, 0
        for chunk in pending:
            if count and size + len(chunk) > SEND_MAX:
                break
            size += len(chunk)
            count += 1
        joined = b"".join(pending[:count])
        del pending[:count]
        return joined


@dataclass
class ElectionFeed:
    """One election's alerts and tally, read once, for every viewer of it in this process."""

    election: str
    config: FeedConfig
    counts: FeedCounts = field(default_factory=FeedCounts)
    ids: list[StreamId] = field(default_factory=list)  # the history: entry ids, oldest first ...
    frames: list[bytes] = field(default_factory=list)  # ... and their SSE frames
    complete: bool = True  # the history holds every entry since the stream's start
    last_id: StreamId = (0, 0)
    tally_frame: bytes | None = None
    tally_version: int | None = None
    winners: dict[str, str] = field(default_factory=dict)  # ons_id -> SeatSummary JSON, as last read
    viewers: set[Viewer] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    next_tally: float = 0.0
    next_ping: float = 0.0
    # Read but not yet fanned out, in order: (an alert's id, its frame), or (None, a tally frame).
    outbox: list[tuple[StreamId | None, bytes]] = field(default_factory=list)
    last_fan_out: float = float("-inf")
    fan_out_handle: asyncio.TimerHandle | None = None

    # --- what viewers get (no I/O) -------------------------------------------------------------

    def publish_alerts(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Queue the alerts read (each encoded once) for the next ``fan_out``."""
        last = self.last_id
        for stream_id, fields in entries:
            ident = parse_stream_id(stream_id)
            if ident <= last:
                continue  # already held (a read that overlapped the last one)
            last = ident
            if "json" not in fields:
                log.warning("%s: stream entry %s has no json field; skipped", self.election, stream_id)
                continue
            self.outbox.append((ident, ServerSentEvent(data=fields["json"], id=stream_id).encode()))
        self.last_id = last

    def publish_seats(self, version: int, winners: dict[str, str]) -> None:
        """The seats whose summary changed since the last read, as one ``seats`` event to every viewer.

        A viewer gets only changes: its page came with the seats as of some version, and it
        fetches ``/api/e/E/seats`` once when the first tally it is sent is newer than that.
        """
        changed = [(ons_id, raw) for ons_id, raw in winners.items() if self.winners.get(ons_id) != raw]
        self.winners = winners
        if not changed or not self.viewers:
            return
        body = ",".join(f"{json.dumps(ons_id)}:{raw}" for ons_id, raw in changed)
        frame = ServerSentEvent(data=f'{{"version":{version},"seats":{{{body}}}}}', event="seats").encode()
        for viewer in list(self.viewers):
            self._deliver(viewer, frame, 0)

    def publish_tally(self, state: dict) -> None:
        """Queue the tally for the next ``fan_out``, after the alerts read before it."""
        self.tally_version = state["tally"]["version"] if state["tally"] else -1
        frame = ServerSentEvent(data=json.dumps(state, separators=(",", ":")), event="tally").encode()
        self.outbox.append((None, frame))

    def fan_out(self) -> None:
        """Everything queued since the last call, to the history and to every viewer as one chunk."""
        items, self.outbox = self.outbox, []
        if not items:
            return
        ids = [ident for ident, _ in items if ident is not None]
        frames = [frame for ident, frame in items if ident is not None]
        for ident, frame in items:
            if ident is None:
                self.tally_frame = frame
        if ids:
            self.ids.extend(ids)
            self.frames.extend(frames)
            if len(self.ids) > self.config.history_max:
                cut = len(self.ids) - self.config.history_max // 2  # trim in halves, not one entry per alert
                del self.ids[:cut], self.frames[:cut]
                self.complete = False
        chunk = b"".join(frame for _, frame in items)
        for viewer in list(self.viewers):
            if viewer.skip_through is None:
                self._deliver(viewer, chunk, len(ids))
            else:
                self._deliver_after(viewer, items)

    def _deliver_after(self, viewer: Viewer, items: list[tuple[StreamId | None, bytes]]) -> None:
        """A viewer resumed after an id not fanned out yet: the tallies, and the alerts after that id."""
        skip = viewer.skip_through
        assert skip is not None
        kept = [(ident, frame) for ident, frame in items if ident is None or ident > skip]
        if any(ident is not None for ident, _ in kept):
            viewer.skip_through = None
        if kept:
            alerts = sum(ident is not None for ident, _ in kept)
            self._deliver(viewer, b"".join(frame for _, frame in kept), alerts)

    def ping(self) -> None:
        """A comment to every viewer (the same bytes), which keeps idle streams open through proxies."""
        for viewer in list(self.viewers):
            self._deliver(viewer, PING, 0)

    def _deliver(self, viewer: Viewer, chunk: bytes, alerts: int) -> None:
        if viewer.offer(chunk):
            self.counts.alerts_fanned_out += alerts
        else:
            self.viewers.discard(viewer)
            self.counts.viewers_dropped += 1

    def _fan_out_soon(self) -> None:
        """Fan out now if the last tick is ``fanout_interval`` old, else once it is (one pending tick)."""
        if not self.outbox or self.fan_out_handle is not None:
            return
        loop = asyncio.get_running_loop()
        due = self.last_fan_out + self.config.fanout_interval
        if loop.time() >= due:
            self._tick()
        else:
            self.fan_out_handle = loop.call_at(due, self._tick)

    def _tick(self) -> None:
        self.fan_out_handle = None
        self.last_fan_out = asyncio.get_running_loop().time()
        self.fan_out()

    def join(self, viewer: Viewer, after: StreamId) -> StreamId | None:
        """Take on ``viewer``, with every held alert after ``after`` and the latest tally queued for it.

        Returns the oldest held id when there are alerts after ``after`` older than the
        history holds: the caller reads those from Redis (``catch_up``) and queues them first.
        """
        if after > (self.ids[-1] if self.ids else (0, 0)):  # not fanned out yet (or not read yet)
            viewer.skip_through = after
            held: list[bytes] = []
        else:
            held = self.frames[bisect_right(self.ids, after) :]
        missing = None if self.complete or not self.ids or after >= self.ids[0] else self.ids[0]
        first = b"".join(held) + (self.tally_frame or b"")
        self.counts.alerts_fanned_out += len(held)
        if first:
            viewer.pending.append(first)
        self.viewers.add(viewer)
        return missing

    # --- reading Redis -------------------------------------------------------------------------

    async def run(self, client: Redis) -> None:
        """Follow the election until cancelled; a Redis outage is waited out, the viewers kept."""
        delay = 0.5
        while True:
            raise_if_cancelled()  # redis-py may have turned the cancel into an error caught below
            try:
                if not self.ready.is_set():
                    await self._load(client)
                    await self._read_tally(client)
                    self.fan_out()  # the history, before the first viewer joins
                    self.ready.set()
                await self._follow(client)
                self._fan_out_soon()
                delay = 0.5
            except RedisError as exc:
                raise_if_cancelled()
                log.warning("%s: Redis unavailable (%s); retrying in %.1fs", self.election, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # noqa: BLE001 - the feed outlives a bad read; its viewers wait for the next
                raise_if_cancelled()
                log.exception("%s: the feed failed; retrying in %.1fs", self.election, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _load(self, client: Redis) -> None:
        newest_first = stream_entries(
            await client.xrevrange(ElectionKeys(self.election).alerts, count=self.config.history_max)
        )
        self.publish_alerts(newest_first[::-1])
        self.complete = len(newest_first) < self.config.history_max

    async def _follow(self, client: Redis) -> None:
        loop = asyncio.get_running_loop()
        until_tally_ms = int((self.next_tally - loop.time()) * 1000)
        records = await self._read_alerts(client, block=max(1, min(self.config.block_ms, until_tally_ms)))
        if len(records) < self.config.batch and loop.time() >= self.next_tally:
            if await tally_version(client, self.election) != self.tally_version:
                await self._read_tally(client)
            self.next_tally = loop.time() + self.config.tally_interval
        if loop.time() >= self.next_ping:
            if self.next_ping:
                self.ping()
            self.next_ping = loop.time() + self.config.ping_seconds

    async def _read_alerts(self, client: Redis, block: int | None) -> list[StreamEntry]:
        entries = await client.xread(
            {ElectionKeys(self.election).alerts: format_stream_id(self.last_id)}, count=self.config.batch, block=block
        )
        records = read_entries(entries)
        self.publish_alerts(records)
        return records

    async def _read_tally(self, client: Redis) -> None:
        state = await read_state(client, self.election)
        # The sink sets a seat's summary before the tally that counts it: read after, it is never older.
        version, winners = await read_winners(client, self.election)
        # Every alert of the seats this tally counts landed before it: send those first.
        while len(await self._read_alerts(client, block=None)) == self.config.batch:
            pass
        self.publish_seats(version, winners)
        self.publish_tally(state)


async def catch_up(client: Redis, election: str, after: StreamId, before: StreamId, page: int = 1000) -> list[bytes]:
    """Alert frames strictly between ``after`` and ``before``, read from Redis (older than a feed's history)."""
    stream = ElectionKeys(election).alerts
    frames: list[bytes] = []
    low = format_stream_id(after)
    while True:
        entries = stream_entries(
            await client.xrange(stream, min=f"({low}", max=f"({format_stream_id(before)}", count=page)
        )
        frames.extend(ServerSentEvent(data=fields["json"], id=sid).encode() for sid, fields in entries)
        if len(entries) < page:
            return frames
        low = entries[-1][0]


class Feeds:
    """Every election followed by this process: started for its first viewer, stopped when left idle."""

    def __init__(self, client: Redis, config: FeedConfig = FeedConfig()):
        self.client = client
        self.config = config
        self.counts = FeedCounts()
        self.feeds: dict[str, ElectionFeed] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._idle: dict[str, asyncio.TimerHandle] = {}

    @property
    def viewers(self) -> int:
        return sum(len(feed.viewers) for feed in self.feeds.values())

    async def open(self, election: str) -> ElectionFeed:
        """The election's feed, once it has read Redis; FeedUnavailable if a viewer cannot be taken on now."""
        if self.viewers >= self.config.max_viewers:
            raise FeedUnavailable(f"this server holds {self.config.max_viewers} viewers already")
        feed = self.feeds.get(election)
        if feed is None:
            if len(self.feeds) >= self.config.max_feeds:
                raise FeedUnavailable(f"this server follows {self.config.max_feeds} elections already")
            feed = self.feeds[election] = ElectionFeed(election, self.config, self.counts)
            self._tasks[election] = asyncio.create_task(feed.run(self.client), name=f"feed {election}")
            self._stop_when_idle(feed)  # until a viewer joins: a stream never started must not keep it
        if not feed.ready.is_set():
            try:
                await asyncio.wait_for(feed.ready.wait(), self.config.ready_timeout)
            except TimeoutError:
                raise FeedUnavailable(
                    f"redis: no answer for {election} within {self.config.ready_timeout:g}s"
                ) from None
        return feed

    def viewer(self) -> Viewer:
        return Viewer(self.config.viewer_queue)

    async def stream(self, feed: ElectionFeed, viewer: Viewer, after: StreamId) -> AsyncGenerator[bytes, None]:
        """The viewer's SSE body, until the browser goes away (the task is cancelled) or it is dropped.

        The viewer joins the feed only here, once the response is streaming, so a response
        that never starts leaves nothing behind.
        """
        if self.feeds.get(feed.election) is not feed:
            feed = await self.open(feed.election)  # stopped as idle between the request and its first send
        missing = feed.join(viewer, after)
        self._cancel_idle(feed.election)
        prefix = b"retry: %d\r\n" % self.config.retry_ms  # sse-starlette's line separator
        try:
            if missing is not None:
                older = await catch_up(self.client, feed.election, after, missing)
                viewer.pending.insert(0, b"".join(older))
                self.counts.alerts_fanned_out += len(older)
            while True:
                chunk = await viewer.next_chunk()
                if chunk is None:
                    if viewer.dropped:
                        yield ServerSentEvent(
                            comment="dropped: this stream fell behind; reconnect with Last-Event-ID to resume",
                            retry=self.config.drop_retry_ms,
                        ).encode()
                    elif viewer.ended:
                        yield viewer.ended
                    return
                yield prefix + chunk if prefix else chunk
                prefix = b""
        finally:
            feed.viewers.discard(viewer)
            if not feed.viewers:
                self._stop_when_idle(feed)

    def send_timed_out(self, viewer: Viewer) -> None:
        """A send to ``viewer`` was blocked for ``send_timeout``: its stream is closed."""
        if not viewer.dropped:
            viewer.dropped = True
            self.counts.viewers_dropped += 1

    def _stop_when_idle(self, feed: ElectionFeed) -> None:
        if self.feeds.get(feed.election) is feed and feed.election not in self._idle:
            loop = asyncio.get_running_loop()
            self._idle[feed.election] = loop.call_later(self.config.idle_seconds, self._stop_if_idle, feed.election)

    def _cancel_idle(self, election: str) -> None:
        handle = self._idle.pop(election, None)
        if handle is not None:
            handle.cancel()

    def _stop_if_idle(self, election: str) -> None:
        self._idle.pop(election, None)
        feed = self.feeds.get(election)
        if feed is not None and not feed.viewers:
            del self.feeds[election]
            self._tasks.pop(election).cancel()

    def end_all(self) -> None:
        """The server is stopping: every stream ends after what it has waiting, with a retry hint."""
        goodbye = ServerSentEvent(
            comment="the server is stopping; reconnect with Last-Event-ID to resume", retry=self.config.drop_retry_ms
        ).encode()
        for feed in self.feeds.values():
            for viewer in feed.viewers:
                viewer.end(goodbye)

    async def close(self) -> None:
        for handle in self._idle.values():
            handle.cancel()
        self._idle.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.feeds.clear()
        self._tasks.clear()


class ViewerResponse(Response):
    """One viewer's event stream as a plain ASGI response: one task sending, one waiting for a disconnect.

    sse-starlette's ``EventSourceResponse`` runs four tasks per stream, a cancel scope per send
    and a lock per ping: with 5,000 viewers that was a third of the process's CPU (py-spy,
    bench/README.md "Viewers"). Here the feed pings every viewer, and a send is bounded by
    ``asyncio.timeout``: a send blocked for ``send_timeout`` (nothing read) ends the stream.
    """

    media_type = "text/event-stream"

    def __init__(self, feeds: Feeds, feed: ElectionFeed, after: StreamId, headers: dict[str, str] | None = None):
        self.viewer = feeds.viewer()
        self.feeds = feeds
        self.feed = feed
        self.after = after
        self.status_code = 200
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        viewer = self.viewer
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        watcher = asyncio.create_task(_until_disconnect(receive, viewer))
        body = self.feeds.stream(self.feed, viewer, self.after)
        try:
            async for chunk in body:
                try:
                    async with asyncio.timeout(self.feeds.config.send_timeout):
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                except TimeoutError:
                    self.feeds.send_timed_out(viewer)
                    log.info("a viewer read nothing for %gs: its stream is closed", self.feeds.config.send_timeout)
                    return  # the server closes the connection: the response never completed
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            await body.aclose()


async def _until_disconnect(receive: Receive, viewer: Viewer) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    viewer.end()


def resume_point(last_event_id: str | None, after: str | None) -> str:
    """A reconnect's Last-Event-ID wins over the page's ``after``; neither means the whole stream."""
    return last_event_id or after or FROM_START
