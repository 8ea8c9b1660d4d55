"""Prometheus metrics without a server: one registry per app, requests counted by route and status."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from tallyroom.metrics import FeedFigures, entry_metrics, serve_metrics, web_metrics


def sample(registry, name: str, **labels) -> float | None:
    return registry.get_sample_value(name, labels or None)


def test_each_app_has_its_own_registry():
    first, second = entry_metrics(), entry_metrics()  # would raise "Duplicated timeseries" on one global registry
    first.count_answer({"accepted": 3, "errors": [{"record": 2}]})
    assert sample(first.registry, "tallyroom_entry_records_total", outcome="accepted") == 3
    assert sample(first.registry, "tallyroom_entry_records_total", outcome="refused") == 1
    assert sample(second.registry, "tallyroom_entry_records_total", outcome="accepted") == 0


def test_the_web_figures_are_read_at_each_scrape():
    now = {"figures": FeedFigures(viewers=7, elections=1, alerts_fanned_out=4200, viewers_dropped=2)}
    metrics = web_metrics(lambda: now["figures"])
    assert sample(metrics.registry, "tallyroom_web_sse_clients") == 7
    assert sample(metrics.registry, "tallyroom_web_alerts_fanned_out_total") == 4200
    assert sample(metrics.registry, "tallyroom_web_viewers_dropped_total") == 2
    now["figures"] = FeedFigures(viewers=0, elections=0, alerts_fanned_out=4200, viewers_dropped=2)
    assert sample(metrics.registry, "tallyroom_web_sse_clients") == 0
    assert b"# TYPE tallyroom_web_alerts_fanned_out_total counter" in generate_latest(metrics.registry)


def test_requests_are_counted_by_route_template_and_status():
    app = FastAPI()
    metrics = web_metrics(FeedFigures)

    @app.get("/e/{election}")
    async def page(election: str) -> dict:
        if election == "missing":
            raise HTTPException(404)
        if election == "broken":
            raise RuntimeError("a bug")
        return {}

    serve_metrics(app, metrics)
    with TestClient(app, raise_server_exceptions=False) as client:
        for election in ("a", "b", "missing", "broken"):
            client.get(f"/e/{election}")
        client.get("/nowhere")
        text = client.get("/metrics").text
    requests = "tallyroom_http_requests_total"
    assert sample(metrics.registry, requests, route="/e/{election}", status="200") == 2
    assert sample(metrics.registry, requests, route="/e/{election}", status="404") == 1
    assert sample(metrics.registry, requests, route="/e/{election}", status="500") == 1
    assert sample(metrics.registry, requests, route="unmatched", status="404") == 1
    assert 'tallyroom_http_requests_total{route="/e/{election}",status="200"} 2.0' in text


def test_the_sink_reports_its_own_write_counts_at_each_scrape():
    from tallyroom.consumers.redis_sink import RedisSink
    from tallyroom.settings import Settings

    sink = RedisSink(Settings())  # no connection is made until it writes
    sink.counts.alerts_added, sink.counts.tallies = 3, 2
    get = sink.metrics.registry.get_sample_value
    assert get("tallyroom_sink_writes_total", {"what": "alert_added"}) == 3
    assert get("tallyroom_sink_writes_total", {"what": "tally"}) == 2
    assert get("tallyroom_sink_writes_total", {"what": "dead_letter"}) == 0
    assert get("tallyroom_sink_flush_seconds_count") == 0


def test_webhook_metrics_start_at_zero_for_every_outcome():
    from tallyroom.consumers.webhooks import arrival_seconds
    from tallyroom.metrics import webhook_metrics

    metrics = webhook_metrics()
    get = metrics.registry.get_sample_value
    for outcome in ("delivered", "failed"):
        assert get("tallyroom_webhook_deliveries_total", {"outcome": outcome}) == 0
    for result in ("ok", "error"):
        assert get("tallyroom_webhook_attempts_total", {"result": result}) == 0
    assert get("tallyroom_webhook_delivery_seconds_count") == 0
    assert arrival_seconds("1700000000123-4") == 1700000000.123
