"""The worker's, the sink's and the webhooks' Prometheus metrics, scraped over HTTP from the real processes.

The 2024 night is put on the declarations topic before any worker runs, so the worker's
first lag sample is the whole night; then it counts and the sink writes, until both lags are 0.
The webhooks process delivers a few alerts to one endpoint that answers 200 and fails them at one
that answers 500.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tallyroom import processes
from tallyroom.consumers.reader import wait_for_declared
from tallyroom.consumers.redis_sink import redis_client
from tallyroom.lag import LagProbe, wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender, ensure_topics
from tallyroom.producers.nights import load_night
from tallyroom.producers.replay import replay_night
from tests.e2e.test_night import NIGHT
from tests.integration.conftest import isolated_settings
from tests.integration.test_webhooks import write_alerts

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WEBHOOK_ALERTS = 12
METRICS_REDIS_DB = 6  # its own: it flushes it (7-15 are other suites', see test_viewers_load.py)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> Samples | None:
    """Every sample at ``http://127.0.0.1:port/metrics``, by (name, sorted labels); None if not answering."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def until(what: str, check: Callable[[], object], seconds: float = 120) -> object:
    deadline = time.monotonic() + seconds
    while True:
        if result := check():
            return result
        assert time.monotonic() < deadline, f"not within {seconds:.0f}s: {what}"
        time.sleep(0.1)


def lag(samples: Samples, group: str, topic: str, partition: int = 0) -> float | None:
    key = ("tallyroom_consumer_lag", (("group", group), ("partition", str(partition)), ("topic", topic)))
    return samples.get(key)


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200 if self.path == "/good" else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_worker_sink_and_webhooks_metrics_over_http(stack, receiver):
    settings, env = isolated_settings(stack, "metrics", METRICS_REDIS_DB)
    ports = {name: free_port() for name in ("worker", "sink", "webhooks")}
    env |= {
        "TALLYROOM_WORKER_METRICS_PORT": str(ports["worker"]),
        "TALLYROOM_SINK_METRICS_PORT": str(ports["sink"]),
        "TALLYROOM_WEBHOOKS_METRICS_PORT": str(ports["webhooks"]),
        "TALLYROOM_LAG_SAMPLE_SECONDS": "0.5",
        "TALLYROOM_WEBHOOK_URLS": f"http://127.0.0.1:{receiver}/good,http://127.0.0.1:{receiver}/dead",
        "TALLYROOM_WEBHOOK_MAX_ATTEMPTS": "2",
        "TALLYROOM_WEBHOOK_BACKOFF_SECONDS": "0.01",
    }
    client = redis_client(settings)
    client.flushdb()
    ensure_topics(settings)
    night = load_night(NIGHT)
    sender = DeclarationSender(settings)
    try:
        report = replay_night(night, sender, None)
    finally:
        sender.close()
    events = report.acknowledged
    assert events == len(night.declarations) + 1  # the opening too

    running: list[processes.Background] = []
    try:
        worker = processes.start("worker", settings, env=env, log_name=f"{settings.worker_id}-worker")
        running.append(worker)
        # The first sample is taken as the worker starts, before it can have committed anything.
        first = until(
            "the worker's lag series",
            lambda: (
                (s := scrape(ports["worker"]))
                and lag(s, settings.worker_id, settings.topic_declarations) is not None
                and s
            ),
        )
        assert lag(first, settings.worker_id, settings.topic_declarations) == events
        processes.wait_for_log(worker, "Worker]: Ready", 120)
        sink = processes.start("sink", settings, env=env, log_name=f"{settings.worker_id}-sink")
        running.append(sink)
        wait_for_declared(client, night.election, 650, 240)
        wait_until_caught_up(settings)

        probe = LagProbe(settings)
        try:
            results = probe.end(settings.topic_results)
        finally:
            probe.close()
        worker_done = until(
            "the worker's lag at 0",
            lambda: (
                (s := scrape(ports["worker"])) and lag(s, settings.worker_id, settings.topic_declarations) == 0 and s
            ),
        )
        assert worker_done[("tallyroom_worker_events_total", (("outcome", "counted"),))] == events
        sink_done = until(
            "the sink's lag at 0 on both its topics",
            lambda: (
                (s := scrape(ports["sink"]))
                and lag(s, settings.sink_group, settings.topic_results) == 0
                and lag(s, settings.sink_group, settings.topic_dead_letters) == 0
                and s
            ),
        )
        assert sink_done[("tallyroom_consumer_lag_sampled_seconds", ())] < 5
        assert sink_done[("tallyroom_sink_writes_total", (("what", "seat"),))] >= 650
        assert results > 0

        # The webhooks on an election of a few alerts of its own: delivery itself is tested in test_webhooks.py.
        hooked_election = f"metrics-{settings.worker_id[-8:]}"
        alerts = len(write_alerts(settings, hooked_election, WEBHOOK_ALERTS))
        hooks = processes.start(
            "webhooks", settings, "--election", hooked_election, env=env, log_name=f"{settings.worker_id}-webhooks"
        )
        running.append(hooks)

        def finished() -> Samples | None:
            s = scrape(ports["webhooks"])
            done = s and sum(
                s[("tallyroom_webhook_deliveries_total", (("outcome", o),))] for o in ("delivered", "failed")
            )
            return s if done == 2 * alerts else None

        hooked = until("every alert delivered or failed", finished, 60)
        assert isinstance(hooked, dict)
        get = lambda name, **labels: hooked[(name, tuple(sorted(labels.items())))]  # noqa: E731
        assert get("tallyroom_webhook_deliveries_total", outcome="delivered") == alerts  # /good
        assert get("tallyroom_webhook_deliveries_total", outcome="failed") == alerts  # /dead, both attempts used
        assert get("tallyroom_webhook_attempts_total", result="ok") == alerts
        assert get("tallyroom_webhook_attempts_total", result="error") == 2 * alerts
        assert get("tallyroom_webhook_delivery_seconds_count") == alerts
        assert get("tallyroom_webhook_delivery_seconds_bucket", le="+Inf") == alerts
    finally:
        for proc in running:
            proc.stop()
