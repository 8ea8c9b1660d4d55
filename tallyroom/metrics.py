"""Prometheus metrics of the web page and the entry server, served at their ``/metrics``.

Every metric lives in a registry of the app's own, built on call (``web_metrics``,
``entry_metrics``): two apps in one process (as in the tests) never share a counter.
Names (README, "Metrics"):

- ``tallyroom_http_requests_total{route, status}``   both servers: requests answered, by route template
- ``tallyroom_web_sse_clients``                      viewers holding an event stream now
- ``tallyroom_web_elections_followed``               elections with a feed reading Redis now
- ``tallyroom_web_alerts_fanned_out_total``          alert events handed to viewers (one per viewer per alert)
- ``tallyroom_web_viewers_dropped_total``            viewers cut off for falling behind
- ``tallyroom_entry_records_total{outcome}``         records posted to live entry: ``accepted`` or ``refused``
- ``tallyroom_worker_events_total{outcome}``         events the worker took: ``counted``, ``ignored`` (a revision
                                                     already held) or ``dead_lettered``
- ``tallyroom_worker_dead_letters_total{reason}``    dead letters by kind of reason (``invalid``, ``rejected``,
                                                     ``could_not_count``, ``quarantined``, ``wrong_partition``)
- ``tallyroom_worker_batch_seconds``                 histogram: one batch, from its events to the store
- ``tallyroom_sink_writes_total{what}``              the sink's Redis writes: ``alert_added``, ``alert_duplicate``,
                                                     ``seat``, ``tally``, ``dead_letter``, ``dead_letter_duplicate``
- ``tallyroom_sink_flush_seconds``                   histogram: one poll's records written to Redis
- ``tallyroom_consumer_lag{group, topic, partition}``  worker and sink: records on the partition their
                                                     group has not committed (sampled by ``tallyroom.lag.LagSampler``)
- ``tallyroom_consumer_lag_sampled_seconds``         age of that sample (it stops being refreshed while Kafka is away)
- ``tallyroom_webhook_deliveries_total{outcome}``    alerts the webhooks process finished with: ``delivered`` or
                                                     ``failed`` (every attempt used, kept in webhook-failures)
- ``tallyroom_webhook_attempts_total{result}``       POSTs made: ``ok`` or ``error`` (a refused or failed request)
- ``tallyroom_webhook_delivery_seconds``             histogram: from the alert's arrival in Redis (its stream id)
                                                     to the endpoint's 2xx
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class FeedFigures:
    """What the web page's feeds report at a scrape (read from ``consumers.web.events.Feeds``)."""

    viewers: int = 0
    elections: int = 0
    alerts_fanned_out: int = 0
    viewers_dropped: int = 0


class FeedCollector(Collector):
    """Reads the feeds' own counts at each scrape, so the fan-out's hot path touches no metric objects."""

    def __init__(self, figures: Callable[[], FeedFigures]):
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        now = self.figures()
        yield GaugeMetricFamily("tallyroom_web_sse_clients", "Viewers holding an event stream", value=now.viewers)
        yield GaugeMetricFamily(
            "tallyroom_web_elections_followed", "Elections with a feed reading Redis", value=now.elections
        )
        yield CounterMetricFamily(
            "tallyroom_web_alerts_fanned_out",
            "Alert events handed to viewers (one per viewer per alert)",
            value=now.alerts_fanned_out,
        )
        yield CounterMetricFamily(
            "tallyroom_web_viewers_dropped",
            "Viewers cut off for falling behind (queue full, or a send blocked too long)",
            value=now.viewers_dropped,
        )


@dataclass
class AppMetrics:
    registry: CollectorRegistry
    requests: Counter


@dataclass
class EntryMetrics(AppMetrics):
    records: Counter

    def count_answer(self, answer: dict) -> None:
        """Count an entry answer's records: ``accepted`` of them, and one ``refused`` per error."""
        self.records.labels("accepted").inc(answer.get("accepted", 0))
        self.records.labels("refused").inc(len(answer.get("errors", ())))


def _counter(registry: CollectorRegistry, name: str, doc: str, label: str, values: tuple[str, ...]) -> Counter:
    """A counter by ``label`` whose every series exists from the start, at 0 (a rate() over it starts at once)."""
    counter = Counter(name, doc, [label], registry=registry)
    for value in values:
        counter.labels(value)
    return counter


def _requests(registry: CollectorRegistry) -> Counter:
    return Counter(
        "tallyroom_http_requests", "Requests answered, by route and status", ["route", "status"], registry=registry
    )


def web_metrics(figures: Callable[[], FeedFigures]) -> AppMetrics:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(FeedCollector(figures))
    return AppMetrics(registry, _requests(registry))


ENTRY_OUTCOMES = ("accepted", "refused")


def entry_metrics() -> EntryMetrics:
    registry = CollectorRegistry(auto_describe=True)
    records = _counter(
        registry, "tallyroom_entry_records", "Records posted to live entry, by outcome", "outcome", ENTRY_OUTCOMES
    )
    return EntryMetrics(registry, _requests(registry), records)


EVENT_OUTCOMES = ("counted", "ignored", "dead_lettered")
DEAD_LETTER_REASONS = ("invalid", "rejected", "could_not_count", "quarantined", "wrong_partition")


@dataclass(frozen=True)
class WorkerMetrics:
    """The worker's metrics, served on ``TALLYROOM_WORKER_METRICS_PORT`` (``serve_process_metrics``)."""

    registry: CollectorRegistry
    events: Counter
    dead_letters: Counter
    batch_seconds: Histogram


def worker_metrics() -> WorkerMetrics:
    registry = CollectorRegistry(auto_describe=True)
    events = _counter(
        registry, "tallyroom_worker_events", "Events the worker took, by outcome", "outcome", EVENT_OUTCOMES
    )
    letters = _counter(
        registry,
        "tallyroom_worker_dead_letters",
        "Dead letters the worker wrote, by kind of reason",
        "reason",
        DEAD_LETTER_REASONS,
    )
    # Buckets around the measured batch times, which start once the events are taken (after the window):
    # at 500/s 883 of 1,069 batches took 10-25 ms and none over 100 ms (bench/README.md, session 13).
    batch = Histogram(
        "tallyroom_worker_batch_seconds",
        "One batch of events, from taking them to storing what they counted",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        registry=registry,
    )
    return WorkerMetrics(registry, events, letters, batch)


class HasRegistry(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


def serve_process_metrics(metrics: HasRegistry, port: int | None, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` for a process with no web server of its own (a thread of prometheus_client's)."""
    if port:
        start_http_server(port, addr=host, registry=metrics.registry)


@dataclass(frozen=True)
class LagReading:
    """One sample of consumer lag: (group, topic, partition) -> records not committed, and when it was taken."""

    lags: dict[tuple[str, str, int], int]
    taken_at: float  # time.monotonic()


class LagCollector(Collector):
    """Reports the latest lag sample at each scrape; a scrape never waits on Kafka (``tallyroom.lag.LagSampler``)."""

    def __init__(self, latest: Callable[[], LagReading | None], clock: Callable[[], float]):
        self.latest, self.clock = latest, clock

    def collect(self) -> Iterator[Metric]:
        reading = self.latest()
        lag = GaugeMetricFamily(
            "tallyroom_consumer_lag",
            "Records on the partition the consumer group has not committed",
            labels=["group", "topic", "partition"],
        )
        for (group, topic, partition), value in sorted((reading.lags if reading else {}).items()):
            lag.add_metric([group, topic, str(partition)], value)
        yield lag
        if reading is not None:
            yield GaugeMetricFamily(
                "tallyroom_consumer_lag_sampled_seconds",
                "Age of the lag sample (it grows while Kafka cannot be asked)",
                value=self.clock() - reading.taken_at,
            )


def add_lag(metrics: HasRegistry, latest: Callable[[], LagReading | None], clock: Callable[[], float]) -> None:
    metrics.registry.register(LagCollector(latest, clock))


WEBHOOK_OUTCOMES = ("delivered", "failed")
WEBHOOK_RESULTS = ("ok", "error")


@dataclass(frozen=True)
class WebhookMetrics:
    """The webhooks process's metrics, served on ``TALLYROOM_WEBHOOKS_METRICS_PORT``."""

    registry: CollectorRegistry
    deliveries: Counter
    attempts: Counter
    delivery_seconds: Histogram


def webhook_metrics() -> WebhookMetrics:
    registry = CollectorRegistry(auto_describe=True)
    deliveries = _counter(
        registry, "tallyroom_webhook_deliveries", "Alerts finished with, by outcome", "outcome", WEBHOOK_OUTCOMES
    )
    attempts = _counter(registry, "tallyroom_webhook_attempts", "POSTs made, by result", "result", WEBHOOK_RESULTS)
    # From the alert's arrival in Redis to the 2xx: a healthy endpoint is a few ms after the
    # sink wrote it; retries add the backoff (0.5 s, 1 s, 2 s, ... by default).
    latency = Histogram(
        "tallyroom_webhook_delivery_seconds",
        "From the alert's arrival in Redis to the endpoint's 2xx",
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
        registry=registry,
    )
    return WebhookMetrics(registry, deliveries, attempts, latency)


class SinkCollector(Collector):
    """Reads the sink's own counts (``RedisSink.counts``) at each scrape: its hot path touches no metric."""

    def __init__(self, counts: Callable[[], dict[str, int]]):
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("tallyroom_sink_writes", "The sink's Redis writes, by what", labels=["what"])
        for what, value in self.counts().items():
            family.add_metric([what], value)
        yield family


@dataclass(frozen=True)
class SinkMetrics:
    registry: CollectorRegistry
    flush_seconds: Histogram


def sink_metrics(counts: Callable[[], dict[str, int]]) -> SinkMetrics:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SinkCollector(counts))
    flush = Histogram(
        "tallyroom_sink_flush_seconds",
        "One poll's records written to Redis (one pipelined round trip)",
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        registry=registry,
    )
    return SinkMetrics(registry, flush)


class CountRequests:
    """ASGI wrapper: one count per answered request, by its route template (bounded) and status."""

    def __init__(self, app: ASGIApp, requests: Counter):
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                self.requests.labels(_route(scope), str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        except Exception:
            if not status:
                self.requests.labels(_route(scope), "500").inc()  # what the server's error handler answers
            raise


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def serve_metrics(app: FastAPI, metrics: AppMetrics) -> None:
    """Count the app's requests and serve ``/metrics`` from its own registry."""
    app.add_middleware(CountRequests, requests=metrics.requests)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
