"""Reading the Redis contract back: what `seats`, `history`, `replay --wait` and the summary show,
and the one election picker every reader uses (``pick_election``)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import redis

from tallyroom.consumers.keys import PREFIX, ElectionKeys, stream_entries
from tallyroom.lifecycle import OneLineFailure
from tallyroom.schemas import Alert, TallySnapshot
from tallyroom.schemas.common import read_stored

ELECTION_NOT_FOUND_EXIT_STATUS = 2  # a usage error: the election asked for is not there


class ElectionNotFound(OneLineFailure):
    """No such election in Redis, or none chosen where several (or none) are there: says which are."""

    exit_status = ELECTION_NOT_FOUND_EXIT_STATUS

    def __init__(self, message: str, present: list[str]):
        listed = ", ".join(present) if present else "none yet (a night is there once the worker has opened it)"
        super().__init__(f"{message}; elections in Redis: {listed}")
        self.present = present


# What makes an election known: its seat count, which the sink writes from the empty tally the
# worker publishes when the night opens. The audit trail also knows an election from attempts
# to write to it, refused ones included, before any night has opened.
OPENED: tuple[str, ...] = ("total",)
AUDITED: tuple[str, ...] = ("total", "audit")


def mark_pattern(mark: str) -> str:
    """The SCAN pattern of one mark's keys, every election's."""
    return f"{PREFIX}:*:{mark}"


def election_of(key: str, mark: str) -> str:
    """The election whose mark ``key`` is (``tallyroom:E:total`` -> ``E``)."""
    return str(key)[len(PREFIX) + 1 : -len(mark) - 1]


def present_elections(client: redis.Redis, marks: tuple[str, ...] = OPENED) -> list[str]:
    """Every election in Redis (each one's night has opened; or with ``AUDITED``, has audit entries), sorted."""
    return sorted(
        {election_of(key, mark) for mark in marks for key in client.scan_iter(match=mark_pattern(mark), count=1000)}
    )


def choose_election(chosen: str | None, present: list[str], where: str = "TALLYROOM_ELECTION") -> str:
    """The picker's rule, with no I/O: ``chosen`` (the --election option, else TALLYROOM_ELECTION)
    if it is present; with none chosen, the only election present; else ``ElectionNotFound``."""
    if chosen is not None:
        if chosen not in present:
            raise ElectionNotFound(f"no election {chosen!r} in Redis", present)
        return chosen
    if len(present) == 1:
        return present[0]
    if not present:
        raise ElectionNotFound("no election to show", present)
    raise ElectionNotFound(f"several elections in Redis: choose one with --election or {where}", present)


def pick_election(
    client: redis.Redis, option: str | None, configured: str | None, marks: tuple[str, ...] = OPENED
) -> str:
    """``--election``, then TALLYROOM_ELECTION (``configured``), then the only election in Redis.

    An election is there once its night has opened (the worker publishes its empty tally
    then); one that is not is an ``ElectionNotFound`` listing those that are.
    """
    chosen = option or configured
    if chosen is not None and client.exists(*(f"{PREFIX}:{chosen}:{mark}" for mark in marks)):
        return chosen  # the common case costs one EXISTS, not a SCAN
    return choose_election(chosen, present_elections(client, marks))


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
