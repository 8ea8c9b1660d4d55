"""A refused password is never retried: the command exits at once, with one line naming the setting.

Runs against a real redis-server of its own, started here with a password (the stack's Redis has none,
and Redis accepts any password when it has none), and the real Kafka broker of the stack.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tallyroom.consumers.redis_sink import RedisSink
from tallyroom.lifecycle import AUTH_EXIT_STATUS
from tallyroom.schemas import ResultUpdate
from tallyroom.settings import Settings
from tallyroom.streams.count import Count
from tests.factories import night, seat_id
from tests.integration.conftest import cli_env, isolated_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "the-right-one"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def guarded_redis(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("redis-auth")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", ""],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, password=PASSWORD)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def run(env: dict[str, str], *args: str, seconds: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tallyroom", *args],
        cwd=ROOT,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=seconds,
    )


def assert_refused(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == AUTH_EXIT_STATUS, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    (line,) = [text for text in done.stderr.splitlines() if text.startswith("tallyroom:")]
    assert "Redis refused authentication" in line and "TALLYROOM_REDIS_PASSWORD" in line
    assert PASSWORD not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("command", "password"),
    [
        (["subscribe", "--group", "auth-test"], "wrong"),
        (["subscribe", "--group", "auth-test"], None),
        (["watch", "--once"], "wrong"),
        (["history"], None),
        (["webhooks", "--drain"], "wrong"),
    ],
    ids=["subscribe, wrong password", "subscribe, no password", "watch", "history", "webhooks"],
)
def test_a_refused_redis_password_ends_the_command_in_one_line(guarded_redis, command, password):
    env = {"TALLYROOM_REDIS_URL": guarded_redis, "TALLYROOM_WEBHOOK_URLS": "http://127.0.0.1:9/hook"}
    env["TALLYROOM_REDIS_PASSWORD"] = password or ""
    started = time.monotonic()
    assert_refused(run(env, *command))
    assert time.monotonic() - started < 30  # not retried


def test_the_sink_stops_at_once_on_a_refused_password(stack, guarded_redis):
    _, env = isolated_settings(stack, "auth")
    env |= {"TALLYROOM_REDIS_URL": guarded_redis, "TALLYROOM_REDIS_PASSWORD": "wrong"}
    assert_refused(run(env, "sink"))


def test_the_right_password_is_let_in(guarded_redis):
    env = {"TALLYROOM_REDIS_URL": guarded_redis, "TALLYROOM_REDIS_PASSWORD": PASSWORD}
    settings = Settings(redis_url=guarded_redis, redis_password=PASSWORD)
    count = Count()
    count.open_night(night({seat_id(1): "Con"}, election="auth-night"))  # a night opened, as the worker does it
    RedisSink(settings).write_update(ResultUpdate(election="auth-night", tally=count.snapshot("auth-night")))
    done = run(env, "history")
    assert done.returncode == 0, done.stderr
    assert "auth-night: 0 alerts" in done.stdout
