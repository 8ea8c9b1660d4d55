"""Offer one night's declarations to the running pipeline and time them into Redis.

One load = one election id on the bench's own topics: the night is opened and
counted first (not timed), then the declarations are offered at a fixed rate or
as fast as the producer takes them, while the probe watches the tally version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kafka import KafkaProducer

from tallyroom.bench import stages, stats
from tallyroom.bench.probe import LandingProbe
from tallyroom.consumers.keys import ElectionKeys
from tallyroom.lag import LagProbe
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.schemas import Declaration, NightOpened
from tallyroom.settings import Settings

Payload = tuple[bytes, bytes]  # (key, value): serialised before the clock starts


def payloads(declarations: Iterable[Declaration]) -> list[Payload]:
    # Keyed by election, as DeclarationSender does.
    return [(d.election.encode(), d.model_dump_json().encode()) for d in declarations]


def expected_version(declarations: Iterable[Declaration]) -> int:
    """The tally version once every declaration has landed: the sum of each seat's last revision."""
    last: dict[str, int] = {}
    for d in declarations:
        last[d.ons_id] = max(last.get(d.ons_id, 0), d.revision)
    return sum(last.values())


def offer(
    producer: KafkaProducer,
    topic: str,
    items: list[Payload],
    rate: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    receipts: list | None = None,
) -> list[float]:
    """Send ``items`` at ``rate`` per second (None: as fast as possible); returns each send time.
    ``receipts``, if given, gets each send's future (its record's partition and offset once sent).

    Sends are scheduled against the start, not the previous send, so a slow
    moment is caught up rather than stretching the run (open-loop load).
    """
    sent_at: list[float] = []
    start = clock()
    for index, (key, value) in enumerate(items):
        if rate:
            wait = start + index / rate - clock()
            if wait > 0:
                sleep(wait)
        sent_at.append(clock())
        future = producer.send(topic, key=key, value=value)
        if receipts is not None:
            receipts.append(future)
    return sent_at


@dataclass
class LoadResult:
    label: str
    election: str
    offered_rate: float | None  # None: max
    declarations: int
    landed: int
    complete: bool
    offer_seconds: float
    seconds_to_last_landing: float
    throughput_per_s: float
    sustained_per_s: float
    latency: dict
    payload_bytes_mean: float
    stages: dict = field(default_factory=dict)  # tallyroom.bench.stages.split: where the latency goes
    cpu_ms_per_declaration: dict[str, float] = field(default_factory=dict)
    sent_at: list[float] = field(repr=False, default_factory=list)
    trace: list[tuple[float, int]] = field(repr=False, default_factory=list)

    def summary(self) -> dict:
        return {
            "label": self.label,
            "election": self.election,
            "offered_rate_per_s": self.offered_rate if self.offered_rate else "max",
            "declarations": self.declarations,
            "landed": self.landed,
            "complete": self.complete,
            "offer_seconds": round(self.offer_seconds, 3),
            "achieved_offer_rate_per_s": round(self.declarations / self.offer_seconds, 1)
            if self.offer_seconds
            else None,
            "seconds_to_last_landing": round(self.seconds_to_last_landing, 3),
            "throughput_per_s": round(self.throughput_per_s, 1),
            "sustained_per_s": None if self.sustained_per_s != self.sustained_per_s else round(self.sustained_per_s, 1),
            "latency": self.latency,
            "latency_stages": self.stages,
            "payload_bytes_mean": round(self.payload_bytes_mean, 1),
            "cpu_ms_per_declaration": self.cpu_ms_per_declaration,
        }

    def landed_curve(self) -> list[tuple[float, int]]:
        start = self.sent_at[0] if self.sent_at else 0.0
        return [(round(t - start, 4), v) for t, v in self.trace]


def open_night(settings: Settings, producer: KafkaProducer, night: NightOpened, timeout: float = 120) -> None:
    """Send the night and wait until the worker has committed it, so its cost is not timed."""
    sender = DeclarationSender(settings, producer)
    sender.open_night(night)
    acked, failures = sender.flush()
    if failures:
        raise RuntimeError(f"{night.election}: the broker refused the night: {failures[0]!r}")
    deadline = time.monotonic() + timeout
    lag = LagProbe(settings)  # one admin client and consumer for the whole wait, not one per look
    try:
        while lag.lag(settings.worker_id, settings.topic_declarations):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{night.election}: the worker had not counted the night after {timeout:.0f}s")
            time.sleep(0.2)
    finally:
        lag.close()


def run_load(
    settings: Settings,
    producer: KafkaProducer,
    label: str,
    night: NightOpened,
    items: list[Payload],
    target_version: int,
    rate: float | None,
    timeout: float,
    cpu: Callable[[], dict[str, float]] = dict,
) -> LoadResult:
    """``cpu()`` gives CPU seconds used so far by name (worker, sink): read before and after
    the timed part, it gives CPU per declaration, which neighbours on the machine barely move."""
    open_night(settings, producer, night)
    cpu_before = cpu()
    key = ElectionKeys(night.election).version
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    probe = LandingProbe.start(settings.redis_url, password, key, target_version, timeout)
    clocks = stages.ClockPair.now()
    receipts: list = []
    started = time.monotonic()
    sent_at = offer(producer, settings.topic_declarations, items, rate, receipts=receipts)
    producer.flush()
    offer_seconds = time.monotonic() - started
    trace = probe.finish(max(timeout - offer_seconds, 1))
    cpu_after = cpu()
    landed_at = stats.landing_times(len(items), trace)
    positions = [(sent.value.partition, sent.value.offset) for sent in receipts]  # all sent: flushed above
    worker_sent = stages.worker_send_times(settings, night.election, since_wall=clocks.wall - 1)
    landed = sum(t is not None for t in landed_at)
    last = max((t for t in landed_at if t is not None), default=started)
    return LoadResult(
        label=label,
        election=night.election,
        offered_rate=rate,
        declarations=len(items),
        landed=landed,
        complete=bool(trace) and trace[-1][1] >= target_version,
        offer_seconds=offer_seconds,
        seconds_to_last_landing=last - sent_at[0] if sent_at else 0.0,
        throughput_per_s=stats.end_to_end_rate(sent_at, landed_at),
        sustained_per_s=stats.sustained_rate(landed_at),
        latency=stats.latency_summary(stats.latencies_ms(sent_at, landed_at)),
        payload_bytes_mean=sum(len(v) for _, v in items) / len(items) if items else 0.0,
        stages=stages.split(clocks, sent_at, positions, landed_at, worker_sent),
        cpu_ms_per_declaration={
            name: round((cpu_after[name] - cpu_before[name]) * 1000 / landed, 3) for name in cpu_after
        }
        if landed
        else {},
        sent_at=sent_at,
        trace=trace,
    )
