"""The web page with Redis down or refusing the credentials: /healthz says which, with a 503; nothing is a 500.

Its own redis-server (a password required, on a free port), started and stopped here by its pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import httpx
import pytest
import redis

from tallyroom.consumers.redis_sink import RedisSink
from tallyroom.consumers.web.events import FeedConfig
from tallyroom.schemas import ResultUpdate
from tallyroom.settings import Settings
from tallyroom.streams.count import Count
from tests.factories import night, seat_id
from tests.integration.test_web import WebServer

pytestmark = pytest.mark.integration

PASSWORD = "tallyroom-test-secret"
QUICK = FeedConfig(ready_timeout=1.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def guarded_redis(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: run bin/setup")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, password=PASSWORD).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(10)


EVERY_ROUTE = ("/healthz", "/", "/api/e/ge2024/state", "/api/e/ge2024/alerts", "/e/ge2024/events")


def answers(settings: Settings, paths: tuple[str, ...] = EVERY_ROUTE) -> dict[str, httpx.Response]:
    with WebServer(settings, QUICK) as server:
        return {path: httpx.get(server.url + path, timeout=30) for path in paths}


@pytest.mark.parametrize(
    ("password", "said"),
    [(None, "refused the credentials (none given)"), ("wrong", "refused the credentials (the one in")],
)
def test_credentials_refused_are_a_503_saying_so(guarded_redis, password, said):
    settings = Settings(redis_url=f"redis://127.0.0.1:{guarded_redis}/0", redis_password=password)
    got = answers(settings)
    health = got.pop("/healthz")
    assert health.status_code == 503 and health.json()["redis"] == "down"
    assert said in health.json()["detail"] and f"127.0.0.1:{guarded_redis}" in health.json()["detail"]
    assert "wrong" not in health.json()["detail"]  # the password itself is never shown
    assert {path: answer.status_code for path, answer in got.items()} == dict.fromkeys(got, 503)


def test_redis_unreachable_is_a_503_saying_so():
    port = free_port()  # nothing listens there
    got = answers(Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    health = got.pop("/healthz")
    assert health.status_code == 503 and f"redis at 127.0.0.1:{port} is unreachable" in health.json()["detail"]
    assert {path: answer.status_code for path, answer in got.items()} == dict.fromkeys(got, 503)


def test_with_the_right_password_it_is_healthy(guarded_redis):
    settings = Settings(redis_url=f"redis://127.0.0.1:{guarded_redis}/0", redis_password=PASSWORD)
    # An opened night with no result yet, as the worker publishes it when the night opens.
    count = Count()
    count.open_night(night({seat_id(n): "Con" for n in range(1, 4)}, election="ge2024"))
    RedisSink(settings).write_update(ResultUpdate(election="ge2024", tally=count.snapshot("ge2024")))
    got = answers(settings, ("/healthz", "/api/e/ge2024/state", "/api/e/nosuch/state"))  # not the event stream
    assert got["/healthz"].status_code == 200 and got["/healthz"].json() == {"redis": "ok"}
    assert got["/api/e/ge2024/state"].status_code == 200 and got["/api/e/ge2024/state"].json()["total"] == 3
    assert got["/api/e/nosuch/state"].status_code == 404
