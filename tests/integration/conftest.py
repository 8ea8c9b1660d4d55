"""Fixtures for tests that run against the real local stack (Kafka + Redis)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import redis

from tallyroom import processes
from tallyroom import stack as local_stack
from tallyroom.consumers.redis_sink import redis_client
from tallyroom.settings import Settings, get_settings

# The pipeline fixture flushes this DB; a session run alongside another can pick its own.
TEST_REDIS_DB = int(os.environ.get("TALLYROOM_TEST_REDIS_DB", "15"))


@pytest.fixture(scope="session")
def stack() -> Settings:
    """Bring the local stack up (a no-op when it already runs) and leave it up:
    restarting the broker per session would cost more than the tests."""
    settings = get_settings()
    local_stack.up(settings)
    return settings


# What a worker logs when Faust handed it a record past a hole in the offsets (streams.app.Positions).
OFFSET_HOLE = "never reached the worker"


@dataclass
class Pipeline:
    """A real worker and sink, on topics and a Redis database of this test session alone.

    A worker that stops on a hole in the offsets Faust handed it is started again at once, as
    ``tallyroom serve`` does; ``hole_restarts`` counts those, for a test's report.
    """

    settings: Settings
    env: dict[str, str]
    worker: processes.Background
    sink: processes.Background
    redis: redis.Redis
    hole_restarts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def restart_worker(self) -> None:
        """A new worker in place of the current one, which is killed if it still runs: one the
        watcher started after the one a test killed had already stopped on a hole."""
        with self._lock:
            self.worker.kill()  # nothing if it has stopped
            self.worker = start_worker(self.settings, self.env)

    def running_now(self) -> tuple[processes.Background, processes.Background]:
        """The worker and sink as they run now. A worker that stopped on a hole is started again
        here at once, as the watcher would do within its next half second: a check that reads
        ``worker`` before then would see the stopped one (cluster fault test, in CI)."""
        with self._lock:
            self._restart_if_on_a_hole()
            return self.worker, self.sink

    def watch_for_holes(self) -> None:
        threading.Thread(target=self._restart_on_holes, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            processes.stop_together([self.worker, self.sink])

    def _restart_on_holes(self) -> None:
        while not self._stopped.wait(0.5):
            with self._lock:
                self._restart_if_on_a_hole()

    def _restart_if_on_a_hole(self) -> None:
        if not stopped_on_a_hole(self.worker):
            return
        self.hole_restarts += 1
        print(f"\nthe worker stopped on a hole in its offsets; started again ({self.hole_restarts})")
        self.worker = start_worker(self.settings, self.env)


def isolated_settings(base: Settings, tag: str, redis_db: int = TEST_REDIS_DB) -> tuple[Settings, dict[str, str]]:
    """Topics, groups and a Redis DB (``redis_db``) of a test's own: as settings, and as the
    environment of the processes it starts. A test that flushes Redis takes a DB no other uses."""
    run = f"{tag}-{uuid.uuid4().hex[:8]}"
    redis_url = base.redis_url.rsplit("/", 1)[0] + f"/{redis_db}"
    values = {
        "topic_declarations": f"test.{run}.declarations",
        "topic_alerts": f"test.{run}.alerts",
        "topic_results": f"test.{run}.results",
        "topic_dead_letters": f"test.{run}.dead-letters",
        "worker_id": f"tallyroom-test-{run}",
        "sink_group": f"tallyroom-test-{run}-sink",
        "redis_url": redis_url,
    }
    env = {f"TALLYROOM_{k.upper()}": v for k, v in values.items()}
    return base.model_copy(update=values), env


def stopped_on_a_hole(worker: processes.Background) -> bool:
    from tallyroom.streams.app import EXIT_WORKER_FAULT

    return worker.process.poll() == EXIT_WORKER_FAULT and OFFSET_HOLE in worker.this_run_log()


def start_worker(settings: Settings, env: dict[str, str], starts: int = 5) -> processes.Background:
    """A worker, ready; started again if it stops on a hole in its offsets before it is ready
    (its first batch can come before Faust's "Ready"), as ``tallyroom serve`` would."""
    for _ in range(starts - 1):
        worker = processes.start("worker", settings, env=env, log_name=f"{settings.worker_id}-worker")
        try:
            processes.wait_for_log(worker, "Worker]: Ready", 120)
            return worker
        except RuntimeError:
            if not stopped_on_a_hole(worker):
                raise
            print("\nthe worker stopped on a hole in its offsets before it was ready; starting it again")
    worker = processes.start("worker", settings, env=env, log_name=f"{settings.worker_id}-worker")
    processes.wait_for_log(worker, "Worker]: Ready", 120)
    return worker


@contextmanager
def running_pipeline(settings: Settings, env: dict[str, str]) -> Iterator[Pipeline]:
    """A worker and a sink on ``settings``, over a flushed Redis DB, stopped at the end."""
    client = redis_client(settings)
    client.flushdb()
    worker = start_worker(settings, env)
    sink = processes.start("sink", settings, env=env, log_name=f"{settings.worker_id}-sink")
    processes.wait_alive(sink, 2)
    pipe = Pipeline(settings, env, worker, sink, client)
    pipe.watch_for_holes()
    try:
        yield pipe
    finally:
        pipe.stop()


@pytest.fixture(scope="session")
def pipeline(stack: Settings):
    with running_pipeline(*isolated_settings(stack, "e2e")) as pipe:
        yield pipe


def cli_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}
