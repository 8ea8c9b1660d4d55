"""How far the pipeline is behind: to know when it has gone quiet, or has stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from tallyroom.metrics import HasRegistry, LagReading, add_lag
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.lag")


class LagProbe:
    """Committed offsets and log ends, over one admin client and one consumer kept open."""

    def __init__(self, settings: Settings):
        self.admin = KafkaAdminClient(**settings.kafka_python_config(), **settings.kafka_timeouts())
        self.consumer = KafkaConsumer(**settings.kafka_python_config(), **settings.kafka_timeouts())

    def lag(self, group: str, topic: str) -> int:
        """Messages on ``topic`` that ``group`` has not committed yet."""
        return sum(self.lag_by_partition(group, topic).values())

    def lag_by_partition(self, group: str, topic: str) -> dict[int, int]:
        """Per partition of ``topic``: messages ``group`` has not committed yet (all of them if it never did)."""
        partitions = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = self.consumer.end_offsets(tps)
        committed = self.admin.list_group_offsets({group: tps}).get(group, {})
        return {
            tp.partition: ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp in tps
        }

    def end(self, topic: str) -> int:
        """Records ever written to ``topic`` (the sum of its partitions' log ends)."""
        partitions = self.consumer.partitions_for_topic(topic) or set()
        return sum(self.consumer.end_offsets([TopicPartition(topic, p) for p in partitions]).values())

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


class LagSampler:
    """Samples a process's own consumer lag every ``interval`` seconds, in a thread, over one ``LagProbe``.

    The metrics scrape reads the last sample (``latest``), so it never waits on Kafka and
    opens no client. While Kafka cannot be asked, the last sample stays and ages (the
    ``tallyroom_consumer_lag_sampled_seconds`` gauge says how old it is); the probe is then
    made again.
    """

    def __init__(
        self,
        settings: Settings,
        checks: Sequence[tuple[str, str]],
        interval: float = 5.0,
        probe_factory: Callable[[Settings], LagProbe] = LagProbe,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings, self.checks, self.interval = settings, list(checks), interval
        self.probe_factory, self.clock = probe_factory, clock
        self.probe: LagProbe | None = None
        self.reading: LagReading | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def latest(self) -> LagReading | None:
        return self.reading

    def sample(self) -> LagReading | None:
        """Take one sample (and keep it); None, keeping the last one, if Kafka could not be asked."""
        try:
            if self.probe is None:
                self.probe = self.probe_factory(self.settings)
            lags = {
                (group, topic, partition): lag
                for group, topic in self.checks
                for partition, lag in self.probe.lag_by_partition(group, topic).items()
            }
        except Exception as exc:  # noqa: BLE001  (the process goes on; the sample just ages)
            log.warning("consumer lag not sampled (%s)", exc)
            self.close_probe()
            return None
        self.reading = LagReading(lags, self.clock())
        return self.reading

    def start(self) -> LagSampler:
        self.thread = threading.Thread(target=self._run, name="tallyroom-lag", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)
        self.close_probe()

    def close_probe(self) -> None:
        probe, self.probe = self.probe, None
        if probe is not None:
            try:
                probe.close()
            except Exception:  # noqa: BLE001  (closing a broken client)
                pass

    def stop(self) -> None:
        self.stopped.set()


def serve_lag(metrics: HasRegistry, settings: Settings, checks: Sequence[tuple[str, str]]) -> LagSampler:
    """Export ``checks``' lag per partition on ``metrics``' registry, sampled in the background."""
    sampler = LagSampler(settings, checks, settings.lag_sample_seconds)
    add_lag(metrics, sampler.latest, sampler.clock)
    return sampler.start()


def worker_lag_checks(settings: Settings) -> list[tuple[str, str]]:
    return [(settings.worker_id, settings.topic_declarations)]


def sink_lag_checks(settings: Settings) -> list[tuple[str, str]]:
    return [(settings.sink_group, settings.topic_results), (settings.sink_group, settings.topic_dead_letters)]


def wait_until_caught_up(settings: Settings, timeout: float = 120) -> None:
    """Block until the worker has committed every declaration and the sink every result."""
    checks = worker_lag_checks(settings) + sink_lag_checks(settings)
    deadline = time.monotonic() + timeout
    probe = LagProbe(settings)
    try:
        while True:
            lags = {f"{group} on {topic}": probe.lag(group, topic) for group, topic in checks}
            if not any(lags.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still behind after {timeout:.0f}s: {lags}")
            time.sleep(0.5)
    finally:
        probe.close()


@dataclass(frozen=True)
class PipelineReading:
    """One look at the pipeline while waiting for a night to land."""

    landed: tuple[int, int]  # (seats declared in Redis, tally version there)
    results_written: int  # records on the results and dead-letter topics
    worker_lag: int  # declarations the worker has not committed
    sink_lag: int  # results the sink has not committed


class PipelineStalled(RuntimeError):
    """Nothing has moved for too long while something is still to do."""


def stall_reason(reading: PipelineReading, quiet_seconds: float, expected: int) -> str:
    """Why a pipeline that has not moved for ``quiet_seconds`` will not finish by itself."""
    declared = reading.landed[0]
    waited = f"for {quiet_seconds:.0f}s"
    if reading.worker_lag:
        return (
            f"the worker has stopped counting: {reading.worker_lag} declaration(s) wait and none was counted "
            f"{waited} (is `tallyroom worker` running? its log says why it stopped)"
        )
    if reading.sink_lag:
        return (
            f"the sink has stopped: {reading.sink_lag} result(s) wait and none reached Redis {waited} "
            "(is `tallyroom sink` running, and Redis?)"
        )
    return (
        f"nothing is left to count, but {declared} of {expected} seats landed in Redis and nothing has moved "
        f"{waited}: the rest were refused or lost (see the `tallyroom:dead-letters` stream and the worker's log)"
    )


def wait_for_night(
    read: Callable[[], PipelineReading],
    expected: int,
    timeout: float,
    stall_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> PipelineReading:
    """Wait until ``expected`` seats have landed; fail early if the pipeline stops moving.

    Moving means a seat or tally landing in Redis, or a result or dead letter being
    written. A worker restarted by ``tallyroom serve`` takes its session timeout plus
    its start-up to move again, so ``stall_seconds`` should be well above both.
    """
    started = clock()
    last = read()
    moved_at = started
    while last.landed[0] < expected:
        now = clock()
        if now - started > timeout:
            raise TimeoutError(f"{last.landed[0]} of {expected} seats landed in Redis after {timeout:.0f}s")
        if now - moved_at > stall_seconds:
            raise PipelineStalled(stall_reason(last, now - moved_at, expected))
        sleep(0.5)
        reading = read()
        if (reading.landed, reading.results_written) != (last.landed, last.results_written):
            moved_at = clock()
        last = reading
    return last
