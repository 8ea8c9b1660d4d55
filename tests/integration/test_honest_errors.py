"""Honest errors from the real commands (``python -m tallyroom``, as a user runs them) against the real
Redis and broker: the one election picker, an unknown election's one line and status 2, and Kafka or
Redis that does not answer (a port nothing listens on) named in one line with status 69, no traceback.

Redis DB 6 is this module's own; the commands run side by side, as each spends seconds importing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tallyroom.consumers.redis_sink import RedisSink, redis_client
from tallyroom.lifecycle import UNREACHABLE_EXIT_STATUS
from tallyroom.schemas import ResultUpdate
from tallyroom.settings import Settings
from tallyroom.streams.count import Count
from tests.factories import night, seat_id

pytestmark = pytest.mark.integration

REDIS_DB = 6
REPO = Path(__file__).resolve().parents[2]
FIRST, SECOND = "errors-first", "errors-second"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def opened(settings: Settings, election: str, seats: int = 3) -> None:
    """An election as the worker leaves it when its night opens: the empty tally, in Redis through the sink."""
    count = Count()
    count.open_night(night({seat_id(n): "Con" for n in range(1, seats + 1)}, election=election))
    RedisSink(settings).write_update(ResultUpdate(election=election, tally=count.snapshot(election)))


@pytest.fixture(scope="module")
def redis_env(stack):
    url = stack.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    settings = stack.model_copy(update={"redis_url": url})
    client = redis_client(settings)
    client.flushdb()
    yield settings, {"TALLYROOM_REDIS_URL": url}
    client.flushdb()


def run_all(commands: dict[str, tuple[list[str], dict[str, str]]], timeout: float = 600) -> dict[str, tuple]:
    """Each command at once; (status, stdout, stderr, seconds) by name (the timeout is generous: on a
    shared machine under load, importing the package alone has taken a minute)."""
    base = {k: v for k, v in os.environ.items() if k != "TALLYROOM_ELECTION"} | {"COLUMNS": "200"}
    started, procs = time.monotonic(), {}
    for name, (args, env) in commands.items():
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tallyroom", *args],
            env=base | env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=timeout)
        results[name] = (proc.returncode, out, err, time.monotonic() - started)
    return results


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def test_the_election_picker_and_unknown_elections(redis_env):
    settings, env = redis_env
    opened(settings, FIRST)
    nosuch = f"no election 'nosuch' in Redis; elections in Redis: {FIRST}"
    got = run_all(
        {
            "only one, none chosen": (["seats"], env),
            "unknown seats": (["seats", "--election", "nosuch"], env),
            "unknown history": (["history", "--election", "nosuch"], env),
            "unknown watch": (["watch", "--once", "--election", "nosuch"], env),
            "unknown subscribe": (["subscribe", "--group", "g", "--election", "nosuch"], env),
            "unknown webhooks": (["webhooks", "--failures", "--election", "nosuch"], env),
            "unknown from the setting": (["history"], env | {"TALLYROOM_ELECTION": "nosuch"}),
        }
    )
    status, out, err, _ = got.pop("only one, none chosen")
    assert status == 0, err
    assert f"{FIRST}: 0 of 3 declared" in out  # opened, no result yet: a tally, not an error
    for name, (status, out, err, _) in got.items():
        assert status == 2, (name, out, err)
        assert one_line(err) == f"tallyroom: {nosuch}", name


def test_several_elections_ask_for_one_and_the_setting_picks_it(redis_env):
    settings, env = redis_env
    opened(settings, FIRST)
    opened(settings, SECOND, seats=5)
    got = run_all(
        {
            "none chosen": (["seats"], env),
            "the setting": (["seats"], env | {"TALLYROOM_ELECTION": SECOND}),
            "the option over the setting": (["seats", "--election", FIRST], env | {"TALLYROOM_ELECTION": SECOND}),
        }
    )
    status, _, err, _ = got["none chosen"]
    assert status == 2
    assert one_line(err) == (
        "tallyroom: several elections in Redis: choose one with --election or TALLYROOM_ELECTION; "
        f"elections in Redis: {FIRST}, {SECOND}"
    )
    assert got["the setting"][0] == 0 and f"{SECOND}: 0 of 5 declared" in got["the setting"][1]
    assert (
        got["the option over the setting"][0] == 0
        and f"{FIRST}: 0 of 3 declared" in got["the option over the setting"][1]
    )


def test_redis_and_kafka_not_answering_are_one_line_each(stack):
    redis_port, kafka_port = closed_port(), closed_port()
    no_redis = {"TALLYROOM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "TALLYROOM_CONNECT_TIMEOUT": "2"}
    no_kafka = {
        "TALLYROOM_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "TALLYROOM_CONNECT_TIMEOUT": "2",
        "TALLYROOM_KAFKA_START_TIMEOUT": "3",  # retried that long, then one line
    }
    redis_line = f"tallyroom: Redis at 127.0.0.1:{redis_port} is not answering (TALLYROOM_REDIS_URL)"
    kafka_line = f"tallyroom: Kafka at 127.0.0.1:{kafka_port} is not answering (TALLYROOM_KAFKA_BOOTSTRAP)"
    got = run_all(
        {
            "seats": (["seats"], no_redis),
            "history": (["history"], no_redis),
            "watch": (["watch"], no_redis),
            "subscribe": (["subscribe", "--group", "g"], no_redis),
            "audit": (["audit"], no_redis),
            "web": (["web", "--port", str(closed_port())], no_redis),
            "replay": (["replay", "--max"], no_kafka),
            "declare": (["declare", "/dev/null"], no_kafka),
            "worker": (["worker"], no_kafka),
            "sink": (["sink"], no_kafka),
        }
    )
    for name, (status, out, err, _) in got.items():
        assert status == UNREACHABLE_EXIT_STATUS, (name, out, err)
        assert one_line(err) == (kafka_line if name in ("replay", "declare", "worker", "sink") else redis_line), name


def test_debug_shows_the_traceback():
    port = closed_port()
    got = run_all({"seats": (["--debug", "seats"], {"TALLYROOM_REDIS_URL": f"redis://127.0.0.1:{port}/0"})})
    status, _, err, _ = got["seats"]
    assert status != 0 and "Traceback" in err and "ConnectionError" in err
