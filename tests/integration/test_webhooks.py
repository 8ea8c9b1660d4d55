"""Webhook delivery against a real Redis and real HTTP endpoints on 127.0.0.1.

Three endpoints on one local server: ``/good`` records every request, ``/flaky`` answers 500 to
its first two requests and 200 after, ``/dead`` always answers 500. The alerts are written the way
the sink writes them (``RedisSink``) into Redis DB 11, which no other test uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.redis_sink import RedisSink, redis_client
from tallyroom.consumers.webhooks import CONSUMER, deliver_webhooks, failures_key, group_for
from tallyroom.schemas import Alert, AlertKind, ResultUpdate
from tallyroom.schemas.alerts import alert_id
from tallyroom.streams.count import Count
from tests.factories import alert as sample_alert
from tests.factories import night, seat_id
from tests.integration.conftest import cli_env, isolated_settings

pytestmark = pytest.mark.integration

WEBHOOK_REDIS_DB = 11
SECRET = "test-secret"
ALERTS = 20
MAX_ATTEMPTS = 4
GATE_SECONDS = 30  # how long /dead holds its first request open waiting for /good to have everything


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Endpoints:
    """What the server saw, in arrival order, and the /dead gate."""

    expected: int
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    good_has_all: threading.Event = field(default_factory=threading.Event)
    gate_opened: bool | None = None

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            seen = [r for r in self.requests if r.path == path]
            first_dead = path == "/dead" and not seen
            status = {"/good": 200, "/flaky": 500 if len(seen) < 2 else 200}.get(path, 500)
            self.requests.append(Received(path, headers, body, status))
            if path == "/good" and len({r.body for r in seen}) + 1 >= self.expected:
                self.good_has_all.set()
        if first_dead:
            # Held open until /good has every alert: if delivery to one endpoint waited for
            # another, /good could not finish while this request hangs.
            self.gate_opened = self.good_has_all.wait(GATE_SECONDS)
        return status

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


class Server:
    def __init__(self, endpoints: Endpoints):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = endpoints.answer(self.path, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_alerts(election: str, n: int) -> list[Alert]:
    now = datetime.now(UTC)
    return [
        sample_alert(i, AlertKind.GAIN, f"Seat {i}: gain", election=election, winner_party="Lab").model_copy(
            update={
                "id": alert_id(election, seat_id(i), AlertKind.GAIN, 1),
                "ons_id": seat_id(i),
                "constituency": f"Seat {i}",
                "occurred_at": now,
            }
        )
        for i in range(1, n + 1)
    ]


@pytest.fixture
def webhook_settings(stack):
    settings, env = isolated_settings(stack, "webhooks", WEBHOOK_REDIS_DB)
    election = f"webhooks-{uuid.uuid4().hex[:8]}"
    settings = settings.model_copy(
        update={
            "webhook_secret": SecretStr(SECRET),
            "webhook_max_attempts": MAX_ATTEMPTS,
            "webhook_backoff_seconds": 0.01,
            "webhook_backoff_max_seconds": 0.04,
            "webhook_timeout_seconds": GATE_SECONDS + 30,
        }
    )
    yield settings, env, election
    client = redis_client(settings)
    for key in client.scan_iter(f"tallyroom:{election}:*"):  # the stream, the tally and the failures
        client.delete(key)


def write_alerts(settings, election: str, n: int) -> list[Alert]:
    sink = RedisSink(settings)
    count = Count()  # the election's night opened first, as the worker publishes it: the election is known
    count.open_night(night({seat_id(i): "Con" for i in range(1, n + 1)}, election=election))
    sink.write_update(ResultUpdate(election=election, tally=count.snapshot(election)))
    alerts = make_alerts(election, n)
    for alert in alerts:
        assert sink.write_alert(alert)
    return alerts


def expected_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_each_endpoint_gets_every_alert_signed_and_a_dead_one_holds_up_nobody(webhook_settings):
    settings, env, election = webhook_settings
    alerts = write_alerts(settings, election, ALERTS)
    ids = [a.id for a in alerts]
    endpoints = Endpoints(expected=ALERTS)
    with Server(endpoints) as server:
        good, flaky, dead = (f"{server.url}/{name}" for name in ("good", "flaky", "dead"))
        # /dead first: were endpoints served one after another, /good would never start.
        settings = settings.model_copy(update={"webhook_urls": [dead, flaky, good]})
        reports = asyncio.run(deliver_webhooks(settings, election, drain=True))

        # /good: every alert once, in order, signed over the exact body.
        received = endpoints.at("/good")
        assert [r.headers["X-Tallyroom-Alert-Id"] for r in received] == ids
        for r, alert in zip(received, alerts):
            assert r.headers["X-Tallyroom-Signature"] == expected_signature(r.body)
            assert r.headers["X-Tallyroom-Election"] == election
            assert Alert.model_validate_json(r.body) == alert

        # /good finished while /dead was still holding its very first request.
        assert endpoints.gate_opened is True

        # /flaky: two refusals of the first alert, then every alert once.
        flaky_seen = endpoints.at("/flaky")
        assert [r.status for r in flaky_seen[:3]] == [500, 500, 200]
        assert len({r.body for r in flaky_seen[:3]}) == 1
        assert [r.headers["X-Tallyroom-Alert-Id"] for r in flaky_seen if r.status == 200] == ids
        assert len(flaky_seen) == ALERTS + 2

        # /dead: every alert tried MAX_ATTEMPTS times, then kept in the failures stream.
        assert len(endpoints.at("/dead")) == ALERTS * MAX_ATTEMPTS
        failures = [fields for _, fields in redis_client(settings).xrange(failures_key(election))]
        assert [f["alert_id"] for f in failures] == ids
        assert {f["url"] for f in failures} == {dead}
        assert {f["attempts"] for f in failures} == {str(MAX_ATTEMPTS)}
        assert all(f["last_error"].startswith("HTTP 500") for f in failures)
        assert [Alert.model_validate_json(f["json"]) for f in failures] == alerts

        by_url = {r.url: r for r in reports}
        assert (by_url[good].delivered, by_url[good].failed) == (ALERTS, 0)
        assert (by_url[flaky].delivered, by_url[flaky].requests) == (ALERTS, ALERTS + 2)
        assert (by_url[dead].failed, by_url[dead].requests) == (ALERTS, ALERTS * MAX_ATTEMPTS)

        # Every group is at the end of the stream with nothing pending: a second run sends nothing.
        client = redis_client(settings)
        for url in (good, flaky, dead):
            info = next(g for g in client.xinfo_groups(ElectionKeys(election).alerts) if g["name"] == group_for(url))
            assert (info["pending"], info["lag"]) == (0, 0)
        before = len(endpoints.requests)
        asyncio.run(deliver_webhooks(settings, election, drain=True))
        assert len(endpoints.requests) == before

    listed = subprocess.run(
        [sys.executable, "-m", "tallyroom", "webhooks", "--failures", "--json", "--election", election],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["alert_id"] for line in listed.stdout.splitlines()] == ids


def test_alerts_a_previous_run_read_but_never_delivered_are_sent_on_the_next(webhook_settings):
    settings, _, election = webhook_settings
    alerts = write_alerts(settings, election, 5)
    endpoints = Endpoints(expected=5)
    with Server(endpoints) as server:
        good = f"{server.url}/good"
        # A delivery process that read three alerts and died before posting them.
        client = redis_client(settings)
        stream = ElectionKeys(election).alerts
        client.xgroup_create(stream, group_for(good), id="0")
        assert len(client.xreadgroup(group_for(good), CONSUMER, {stream: ">"}, count=3)[0][1]) == 3

        settings = settings.model_copy(update={"webhook_urls": [good]})
        asyncio.run(deliver_webhooks(settings, election, drain=True))
    assert [r.headers["X-Tallyroom-Alert-Id"] for r in endpoints.at("/good")] == [a.id for a in alerts]
