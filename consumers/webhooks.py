"""Webhooks: every configured URL gets every alert as a signed HTTP POST.

Each URL reads the alerts stream through a consumer group of its own
(``webhook:<sha1 of the url>``), so a slow or dead endpoint holds up only itself:
the others, and the stream, carry on. Per endpoint, alerts go out one at a time in
stream order; a failed POST is retried with exponential backoff, and an alert that
exhausts its attempts is recorded in ``tallyroom:E:webhook-failures`` and acknowledged,
so the endpoint moves on to the next one.

An alert is acknowledged only after its POST succeeded (or its failure was recorded):
delivery is at-least-once, and receivers drop repeats by ``X-Tallyroom-Alert-Id``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

import httpx
import redis
import redis.asyncio as aioredis

from tallyroom.consumers.keys import PREFIX, ElectionKeys, StreamEntry, read_entries, stream_entries
from tallyroom.lifecycle import Stop, retrying_async
from tallyroom.metrics import WebhookMetrics, webhook_metrics
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.webhooks")

SIGNATURE_HEADER = "X-Tallyroom-Signature"
ALERT_ID_HEADER = "X-Tallyroom-Alert-Id"
ELECTION_HEADER = "X-Tallyroom-Election"
CONSUMER = "webhooks"  # one delivery process per deployment: its pending entries survive a restart
BATCH = 50
FAILURES_MAXLEN = 100_000


# --- pure pieces ---------------------------------------------------------------------------------


def signature(secret: str | bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>``, the X-Tallyroom-Signature value."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute over the raw body, compare in constant time."""
    return header is not None and hmac.compare_digest(signature(secret, body), header)


def backoff_schedule(max_attempts: int, first: float, cap: float) -> list[float]:
    """Seconds to wait before attempt 2, 3, ... max_attempts: first, 2*first, 4*first, ... each at most cap."""
    if max_attempts < 1:
        raise ValueError(f"webhook_max_attempts: must be at least 1, not {max_attempts}")
    return [min(first * 2**n, cap) for n in range(max_attempts - 1)]


def group_for(url: str) -> str:
    """The consumer group of one endpoint: stable for a URL, and safe whatever the URL holds."""
    return f"webhook:{hashlib.sha1(url.encode()).hexdigest()}"


def arrival_seconds(stream_id: str) -> float:
    """When an entry arrived in Redis (Unix seconds): the millisecond part of its stream id."""
    return int(stream_id.split("-", 1)[0]) / 1000


def failures_key(election: str) -> str:
    return f"{PREFIX}:{election}:webhook-failures"


def request_headers(alert_id: str, election: str, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", ALERT_ID_HEADER: alert_id, ELECTION_HEADER: election}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    return headers


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff: float = 0.5
    backoff_max: float = 60.0
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.webhook_max_attempts,
            settings.webhook_backoff_seconds,
            settings.webhook_backoff_max_seconds,
            settings.webhook_timeout_seconds,
        )

    def delays(self) -> list[float]:
        return backoff_schedule(self.max_attempts, self.backoff, self.backoff_max)


@dataclass
class Outcome:
    ok: bool
    attempts: int
    last_error: str = ""


@dataclass
class EndpointReport:
    url: str
    delivered: int = 0
    failed: int = 0
    requests: int = 0


# --- delivery --------------------------------------------------------------------------------------


class Endpoint:
    """One URL: its own consumer group, alerts POSTed one at a time in stream order."""

    def __init__(
        self,
        url: str,
        election: str,
        client: aioredis.Redis,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        secret: str | None,
        stop: Stop,
        block_ms: int = 1000,
        metrics: WebhookMetrics | None = None,
    ):
        self.url, self.election, self.redis, self.http = url, election, client, http
        self.policy, self.secret, self.stop, self.block_ms = policy, secret, stop, block_ms
        self.metrics = metrics or webhook_metrics()
        self.stream = ElectionKeys(election).alerts
        self.group = group_for(url)
        self.report = EndpointReport(url)

    async def run(self, drain: bool = False) -> EndpointReport:
        """Deliver until stopped; with ``drain``, until the stream has nothing new for this endpoint."""
        await retrying_async(self._ensure_group, self.stop)
        after = "0"  # this endpoint's pending entries first: what a previous run read and never finished
        while not self.stop.is_set():
            pending = after != ">"
            block = None if pending or drain else self.block_ms
            entries = await retrying_async(lambda: self._read(after, block), self.stop)
            if not entries:
                if pending:
                    after = ">"
                    continue
                if drain:
                    break
                continue
            for stream_id, fields in entries:
                if self.stop.is_set() or not await self._deliver(stream_id, fields or {}):
                    return self.report  # unacknowledged: handed out again on the next run
            if pending:
                after = entries[-1][0]
        return self.report

    async def _ensure_group(self) -> None:
        # At id 0: an endpoint added mid-night still gets the night from its first alert.
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, after: str, block: int | None) -> list[StreamEntry]:
        reply = await self.redis.xreadgroup(self.group, CONSUMER, {self.stream: after}, count=BATCH, block=block)
        return read_entries(reply)

    async def _deliver(self, stream_id: str, fields: dict[str, str]) -> bool:
        """POST one alert, with retries; acknowledge it once sent or recorded as failed. False if stopped."""
        if not fields.get("json"):
            await retrying_async(lambda: self.redis.xack(self.stream, self.group, stream_id), self.stop)  # trimmed
            return True
        body = fields["json"].encode()
        headers = request_headers(fields.get("id", ""), self.election, body, self.secret)
        outcome = await self._post_with_retries(body, headers)
        if outcome is None:
            return False
        if outcome.ok:
            self.report.delivered += 1
            self.metrics.deliveries.labels("delivered").inc()
            self.metrics.delivery_seconds.observe(max(0.0, time.time() - arrival_seconds(stream_id)))
            await retrying_async(lambda: self.redis.xack(self.stream, self.group, stream_id), self.stop)
        else:
            self.report.failed += 1
            self.metrics.deliveries.labels("failed").inc()
            log.warning(
                "%s: alert %s not delivered after %d attempts (%s); kept in %s",
                self.url,
                fields.get("id"),
                outcome.attempts,
                outcome.last_error,
                failures_key(self.election),
            )
            await retrying_async(lambda: self._record_failure(stream_id, fields, outcome), self.stop)
        return True

    async def _post_with_retries(self, body: bytes, headers: dict[str, str]) -> Outcome | None:
        delays = self.policy.delays()
        last_error = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            last_error = await self._post(body, headers)
            self.report.requests += 1
            self.metrics.attempts.labels("error" if last_error else "ok").inc()
            if not last_error:
                return Outcome(True, attempt)
            if attempt < self.policy.max_attempts:
                log.info(
                    "%s: attempt %d failed (%s); next in %.2fs", self.url, attempt, last_error, delays[attempt - 1]
                )
                if await self.stop.wait_async(delays[attempt - 1]):
                    return None
        return Outcome(False, self.policy.max_attempts, last_error)

    async def _post(self, body: bytes, headers: dict[str, str]) -> str:
        """'' on a 2xx; otherwise what went wrong, for the failures stream."""
        try:
            response = await self.http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return ""
        return f"HTTP {response.status_code}: {response.text[:200]}"

    async def _record_failure(self, stream_id: str, fields: dict[str, str], outcome: Outcome) -> None:
        # Recorded and acknowledged together: an alert is never both lost and acknowledged.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                failures_key(self.election),
                {
                    "url": self.url,
                    "alert_id": fields.get("id", ""),
                    "stream_id": stream_id,
                    "attempts": outcome.attempts,
                    "last_error": outcome.last_error,
                    "json": fields["json"],
                },
                maxlen=FAILURES_MAXLEN,
                approximate=True,
            )
            pipe.xack(self.stream, self.group, stream_id)
            await pipe.execute()


async def deliver_webhooks(
    settings: Settings,
    election: str,
    stop: Stop | None = None,
    drain: bool = False,
    block_ms: int = 1000,
    metrics: WebhookMetrics | None = None,
) -> list[EndpointReport]:
    """Run one Endpoint per configured URL, side by side, until ``stop`` (or drained); all count on ``metrics``."""
    if not settings.webhook_urls:
        raise ValueError("webhook_urls: no webhook URLs configured (set TALLYROOM_WEBHOOK_URLS)")
    stop = stop or Stop()
    metrics = metrics or webhook_metrics()
    policy = RetryPolicy.from_settings(settings)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    client = aioredis.Redis.from_url(settings.redis_url, **settings.redis_kwargs())
    try:
        async with httpx.AsyncClient(timeout=policy.timeout) as http:
            endpoints = [
                Endpoint(url, election, client, http, policy, secret, stop, block_ms, metrics)
                for url in dict.fromkeys(settings.webhook_urls)
            ]
            return list(await asyncio.gather(*(e.run(drain) for e in endpoints)))
    finally:
        await client.aclose()


def read_failures(client: redis.Redis, election: str) -> list[dict[str, str]]:
    """The failures stream, oldest first, each entry with its ``entry_id``."""
    entries = stream_entries(client.xrange(failures_key(election)))
    return [{"entry_id": entry_id, **fields} for entry_id, fields in entries]
