"""Reading the Redis contract back: what `seats`, `history`, `replay --wait` and the summary show."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import redis

from tallyroom.consumers.keys import ElectionKeys, stream_entries
from tallyroom.schemas import Alert, TallySnapshot
from tallyroom.schemas.common import read_stored


@dataclass
class ElectionState:
    election: str
    declared: int
    total: int
    seats: dict[str, int]
    votes: dict[str, int]
    tally: TallySnapshot | None
    refused: int = 0  # events and stored records the worker refused or quarantined (tallyroom:E:refused)


def read_state(client: redis.Redis, election: str) -> ElectionState:
    keys = ElectionKeys(election)
    declared, total, tally = client.mget(keys.declared, keys.total, keys.tally)
    return ElectionState(
        election=election,
        declared=int(declared or 0),
        total=int(total or 0),
        seats={str(p): int(n) for p, n in client.hgetall(keys.seats).items()},
        votes={str(p): int(n) for p, n in client.hgetall(keys.votes).items()},
        tally=read_stored(TallySnapshot, tally) if tally else None,
        refused=client.hlen(keys.refused),
    )


def read_alerts(client: redis.Redis, election: str, kinds: set[str] | None = None) -> list[Alert]:
    alerts: list[Alert] = []
    last = "-"
    while True:
        entries = stream_entries(client.xrange(ElectionKeys(election).alerts, min=last, max="+", count=1000))
        if last != "-":
            entries = entries[1:]
        if not entries:
            return alerts
        for _, fields in entries:
            if kinds is None or fields["kind"] in kinds:
                alerts.append(read_stored(Alert, fields["json"]))
        last = entries[-1][0]


def alert_counts(client: redis.Redis, election: str) -> Counter[str]:
    return Counter(alert.kind.value for alert in read_alerts(client, election))


def wait_for_declared(
    client: redis.Redis, election: str, expected: int, timeout: float, version: int | None = None
) -> ElectionState:
    """Block until Redis shows ``expected`` seats declared (and the tally version, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(client, election)
        held_version = state.tally.version if state.tally else -1
        if state.declared >= expected and (version is None or held_version >= version):
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{election}: {state.declared} of {expected} seats landed in Redis after {timeout:.0f}s "
                "(is `tallyroom worker` running, and `tallyroom sink`?)"
            )
        time.sleep(0.2)
