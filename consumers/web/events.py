"""The live feed as Server-Sent Events: alerts from the Redis stream, tallies as they change.

Each alert event carries its Redis stream entry id as the SSE ``id``, so a
browser that reconnects sends ``Last-Event-ID`` and resumes strictly after the
last alert it saw: every alert it missed, none twice. Tally events carry no
``id`` (the browser's resume point must only ever be an alert).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis
from sse_starlette import ServerSentEvent

from tallyroom.consumers.keys import ElectionKeys, read_entries
from tallyroom.consumers.web.store import read_state, tally_version

FROM_START = "0-0"


@dataclass(frozen=True)
class FeedTiming:
    block_ms: int = 500  # longest XREAD BLOCK; also how late a tally event can be
    tally_interval: float = 0.5  # at most one tally event this often (a --max replay changes it 650 times)
    batch: int = 200  # alerts read per XREAD
    retry_ms: int = 2000  # the browser's reconnect delay


def resume_point(last_event_id: str | None, after: str | None) -> str:
    """A reconnect's Last-Event-ID wins over the page's ``after``; neither means the whole stream."""
    return last_event_id or after or FROM_START


async def live_events(
    client: Redis, election: str, after: str, timing: FeedTiming = FeedTiming()
) -> AsyncIterator[ServerSentEvent]:
    """Alerts after ``after``, then whatever lands, until the client goes away (the task is cancelled).

    Alerts are plain ``message`` events; the tally is a ``tally`` event, sent
    when its version has changed and the alerts read so far have caught up
    with the stream, so the browser sees a seat's alerts before its tally.
    """
    stream = ElectionKeys(election).alerts
    last_id = after
    sent_version: int | None = None
    next_tally = 0.0
    retry: int | None = timing.retry_ms  # sent once: how long the browser waits before reconnecting
    block: int | None = None  # the first read returns at once, so the first tally is not held up
    while True:
        entries = await client.xread({stream: last_id}, count=timing.batch, block=block)
        block = timing.block_ms
        records = read_entries(entries)
        for stream_id, fields in records:
            yield ServerSentEvent(data=fields["json"], id=stream_id, retry=retry)
            retry = None
            last_id = stream_id
        if len(records) < timing.batch and time.monotonic() >= next_tally:
            if await tally_version(client, election) != sent_version:
                state = await read_state(client, election)
                yield ServerSentEvent(data=json.dumps(state, separators=(",", ":")), event="tally", retry=retry)
                retry = None
                sent_version = state["tally"]["version"] if state["tally"] else -1
                next_tally = time.monotonic() + timing.tally_interval
