"""Each seat's alerts, for the seat page, without reading the whole alert stream per view.

A seat page lists the alerts of one seat, which live in the election's one alert stream
(``tallyroom:E:alerts``, about 1,000 entries and 2 MB for a whole UK night). Reading that
per page view would cost a viewer 2 MB of Redis traffic; a thousand viewers a night's worth
each. Instead one index per election and process is kept: the stream read once, then only
the entries after the last one read (``XRANGE (last +``), at most once per ``refresh_seconds``
however many pages are served, with concurrent views waiting on the one read.

Alerts are keyed by their id, so a Redis refilled by the sink (the same alerts under new
stream ids) lists each once. Each alert is parsed by the web process's one ``ParsedAlerts``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from redis.asyncio import Redis

from tallyroom.consumers.keys import ElectionKeys, stream_entries
from tallyroom.consumers.web.store import ParsedAlerts
from tallyroom.consumers.web.view import FeedItem

READ_PAGE = 1000  # stream entries per XRANGE


@dataclass
class ElectionIndex:
    """One election's alerts by seat, in stream order, and where the reading got to."""

    last_id: str = "-"
    read_at: float = float("-inf")
    by_seat: dict[str, dict[str, FeedItem]] = field(default_factory=dict)  # ons_id -> alert id -> alert
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def take(self, entries: list[tuple[str, dict[str, str]]], parsed: ParsedAlerts) -> None:
        for stream_id, fields in entries:
            self.last_id = stream_id
            ons_id, raw = fields.get("ons_id"), fields.get("json")
            if not ons_id or not raw:
                continue  # a night-wide alert (majority, hung parliament) names no seat
            alert = parsed.alert(raw)
            self.by_seat.setdefault(ons_id, {}).setdefault(alert.id, FeedItem(stream_id, alert))


class SeatAlerts:
    """``for_seat(client, election, ons_id)``: that seat's alerts, oldest first."""

    def __init__(self, parsed: ParsedAlerts, refresh_seconds: float = 0.5, max_elections: int = 64):
        self.parsed = parsed
        self.refresh_seconds = refresh_seconds
        self.max_elections = max_elections
        self.indexes: OrderedDict[str, ElectionIndex] = OrderedDict()
        self.reads = 0  # XRANGE calls made, for tests and curiosity

    async def for_seat(self, client: Redis, election: str, ons_id: str) -> list[FeedItem]:
        index = self._index(election)
        async with index.lock:
            if time.monotonic() - index.read_at >= self.refresh_seconds:
                await self._read_new(client, election, index)
        return list(index.by_seat.get(ons_id, {}).values())

    def _index(self, election: str) -> ElectionIndex:
        index = self.indexes.pop(election, None) or ElectionIndex()
        self.indexes[election] = index  # the most recently used last
        while len(self.indexes) > self.max_elections:
            self.indexes.popitem(last=False)
        return index

    async def _read_new(self, client: Redis, election: str, index: ElectionIndex) -> None:
        stream = ElectionKeys(election).alerts
        while True:
            start = "-" if index.last_id == "-" else f"({index.last_id}"
            entries = stream_entries(await client.xrange(stream, min=start, max="+", count=READ_PAGE))
            self.reads += 1
            index.take(entries, self.parsed)
            if len(entries) < READ_PAGE:
                break
        index.read_at = time.monotonic()
