"""Async reads of the Redis contract for the web page (redis.asyncio)."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, NoPermissionError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tallyroom.consumers.keys import PREFIX, ElectionKeys, StreamEntry, stream_entries
from tallyroom.consumers.reader import OPENED, election_of, mark_pattern
from tallyroom.consumers.web.view import FeedItem, state_json
from tallyroom.schemas import Alert, SeatResult, TallySnapshot
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


async def latest_alerts(client: Redis, election: str, count: int) -> list[FeedItem]:
    """The newest ``count`` alerts, newest first."""
    entries = stream_entries(await client.xrevrange(ElectionKeys(election).alerts, count=count))
    return [feed_item(entry) for entry in entries]


async def alerts_after(client: Redis, election: str, after: str, count: int) -> list[StreamEntry]:
    """Up to ``count`` stream entries strictly after ``after``, oldest first."""
    return stream_entries(await client.xrange(ElectionKeys(election).alerts, min=f"({after}", max="+", count=count))


def feed_item(entry: StreamEntry) -> FeedItem:
    stream_id, fields = entry
    return FeedItem(stream_id=stream_id, alert=read_stored(Alert, fields["json"]))


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
