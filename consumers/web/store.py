"""Async reads of the Redis contract for the web page (redis.asyncio)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tallyroom.consumers.keys import PREFIX, ElectionKeys, StreamEntry, stream_entries
from tallyroom.consumers.reader import OPENED, election_of, mark_pattern
from tallyroom.consumers.web.hexmap import NightMap, map_for_night
from tallyroom.consumers.web.view import FeedItem, MapCell, map_cells, night_names, seat_list_json, state_json
from tallyroom.schemas import Alert, NightSeat, SeatResult, SeatSummary, TallySnapshot
from tallyroom.schemas.common import read_stored
from tallyroom.settings import Settings


async def read_state(client: Redis, election: str) -> dict:
    keys = ElectionKeys(election)
    # One MULTI so that seats, votes and the tally come from the same sink write.
    async with client.pipeline(transaction=True) as pipe:
        pipe.mget(keys.declared, keys.total, keys.tally)
        pipe.hgetall(keys.seats)
        pipe.hgetall(keys.votes)
        pipe.hlen(keys.refused)
        (declared, total, tally), seats, votes, refused = await pipe.execute()
    return state_json(
        election,
        declared=int(declared or 0),
        total=int(total or 0),
        seats={p: int(n) for p, n in seats.items()},
        votes={p: int(n) for p, n in votes.items()},
        tally=read_stored(TallySnapshot, tally) if tally else None,
        refused=int(refused),
    )


async def read_winners(client: Redis, election: str) -> tuple[int, dict[str, str]]:
    """The tally version and every seat's summary as stored (ons_id -> SeatSummary JSON), in one MULTI."""
    keys = ElectionKeys(election)
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.version)
        pipe.hgetall(keys.winners)
        version, winners = await pipe.execute()
    return int(version) if version is not None else -1, winners


async def read_night(client: Redis, election: str) -> dict[str, NightSeat]:
    """Every seat of the night (``tallyroom:E:night``), in no particular order; {} before it opens."""
    held = await client.hgetall(ElectionKeys(election).night)
    return {str(ons_id): read_stored(NightSeat, raw) for ons_id, raw in held.items()}


def summaries(winners: dict[str, str]) -> dict[str, SeatSummary]:
    return {ons_id: read_stored(SeatSummary, raw) for ons_id, raw in winners.items()}


async def night_size(client: Redis, election: str) -> tuple[int, int]:
    """(tally version, seats in the night's list): what a cache of the seats is keyed on."""
    keys = ElectionKeys(election)
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.version)
        pipe.hlen(keys.night)
        version, size = await pipe.execute()
    return int(version) if version is not None else -1, int(size)


async def election_known(client: Redis, election: str) -> bool:
    """Whether the election is in Redis: its night has opened (consumers.reader.OPENED)."""
    return bool(await client.exists(*(f"{PREFIX}:{election}:{mark}" for mark in OPENED)))


async def present_elections(client: Redis) -> list[str]:
    """Every election in Redis, sorted (as consumers.reader.present_elections)."""
    found = set()
    for mark in OPENED:
        async for key in client.scan_iter(match=mark_pattern(mark), count=1000):
            found.add(election_of(key, mark))
    return sorted(found)


async def tally_version(client: Redis, election: str) -> int:
    held = await client.get(ElectionKeys(election).version)
    return int(held) if held is not None else -1


async def read_seat(client: Redis, election: str, ons_id: str) -> SeatResult | None:
    raw = await client.get(ElectionKeys(election).seat(ons_id))
    return read_stored(SeatResult, raw) if raw else None


class ParsedAlerts:
    """Each alert's JSON parsed once per web process, kept for the last ``size`` alerts read: the one
    parse of the page's feed, the alerts API and the seat pages' index (``seat_alerts.SeatAlerts``).

    An alert's JSON never changes, so it is the key. Re-validating the page's whole feed with
    pydantic on every page view was 43% of the web process's CPU in the viewers bench (a page
    fetched every 0.2 s beside 5,000 viewers; bench/README.md, "Viewers").
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._alerts: OrderedDict[str, Alert] = OrderedDict()
        self.parsed = 0  # alerts validated (not found here): for tests

    def alert(self, raw: str) -> Alert:
        alert = self._alerts.get(raw)
        if alert is None:
            alert = read_stored(Alert, raw)
            self.parsed += 1
            self._alerts[raw] = alert
            if len(self._alerts) > self.size:
                self._alerts.popitem(last=False)
        else:
            self._alerts.move_to_end(raw)
        return alert


async def latest_alerts(client: Redis, election: str, count: int, parsed: ParsedAlerts) -> list[FeedItem]:
    """The newest ``count`` alerts, newest first."""
    entries = stream_entries(await client.xrevrange(ElectionKeys(election).alerts, count=count))
    return [feed_item(entry, parsed) for entry in entries]


async def alerts_after(client: Redis, election: str, after: str, count: int) -> list[StreamEntry]:
    """Up to ``count`` stream entries strictly after ``after``, oldest first."""
    return stream_entries(await client.xrange(ElectionKeys(election).alerts, min=f"({after}", max="+", count=count))


def feed_item(entry: StreamEntry, parsed: ParsedAlerts) -> FeedItem:
    stream_id, fields = entry
    return FeedItem(stream_id=stream_id, alert=parsed.alert(fields["json"]))


def redis_problem(exc: RedisError, settings: Settings) -> str:
    """What is wrong with Redis, in one line an operator can act on (no password in it)."""
    url = urlsplit(settings.redis_url)
    where = settings.redis_address
    if isinstance(exc, AuthenticationError):
        given = "the one in TALLYROOM_REDIS_PASSWORD" if settings.redis_password or url.password else "none given"
        return f"redis at {where} refused the credentials ({given}): {exc}"
    if isinstance(exc, NoPermissionError):
        return f"redis at {where}: this user may not run the command: {exc}"
    if isinstance(exc, RedisTimeoutError):
        return f"redis at {where} did not answer in time: {exc}"
    if isinstance(exc, RedisConnectionError):
        return f"redis at {where} is unreachable: {exc}"
    return f"redis at {where}: {exc}"


@dataclass(frozen=True)
class NightSeats:
    """The night's seats, their results' summaries and its hex map, as of one tally version."""

    version: int
    night: dict[str, NightSeat]
    winners: dict[str, SeatSummary]
    map: NightMap
    cells: list[MapCell]  # the map's hexagons, coloured as of this version
    rows: list[dict]  # view.seat_list_json: what the page's list and map start from


NO_NIGHT = "the night's list of seats is not in Redis yet (it comes with its opening)"


class SeatsCache:
    """The seats as of the latest tally version, read from Redis once per version per process.

    A page view then costs two small reads (the version and the night's size), not 650 seat
    JSONs; thousands of viewers of one election share one copy, and a new version is read by
    one request while the others wait for it. The map's geometry is kept while the night's
    seats stay the same (placing 650 seats took 130 ms on a loaded machine; the rest of a
    version's read, 200 ms).
    """

    def __init__(self, elections: int = 64):
        self.elections = elections
        self._held: dict[str, tuple[tuple[int, int], NightSeats]] = {}
        self._maps: dict[str, tuple[tuple[tuple[str, str], ...], NightMap]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, client: Redis, election: str) -> NightSeats:
        key = await night_size(client, election)
        held = self._held.get(election)
        if held is not None and held[0] == key:
            return held[1]
        async with self._locks.setdefault(election, asyncio.Lock()):
            held = self._held.get(election)
            if held is not None and held[0] == key:
                return held[1]  # read by the request this one waited for
            seats = await self._read(client, election)
            if election not in self._held and len(self._held) >= self.elections:
                oldest = next(iter(self._held))  # the oldest election followed goes first
                for table in (self._held, self._maps, self._locks):
                    table.pop(oldest, None)
            self._held[election] = (key, seats)
            return seats

    async def _read(self, client: Redis, election: str) -> NightSeats:
        version, raw = await read_winners(client, election)
        night = await read_night(client, election)
        winners = summaries(raw)
        drawn = self._map(election, night_names(night, winners)) if night else NightMap(None, [], 0, 0, 0, NO_NIGHT)
        return NightSeats(version, night, winners, drawn, map_cells(drawn, winners), seat_list_json(night, winners))

    def _map(self, election: str, names: dict[str, str]) -> NightMap:
        seats = tuple(sorted(names.items()))
        held = self._maps.get(election)
        if held is None or held[0] != seats:
            held = self._maps[election] = (seats, map_for_night(names))
        return held[1]
