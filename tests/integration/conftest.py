"""Fixtures for tests that run against the real local stack (Kafka + Redis)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


@dataclass
class Pipeline:
    """A real worker and sink, on topics and a Redis database of this test session alone."""

    settings: Settings
    env: dict[str, str]
    worker: processes.Background
    sink: processes.Background
    redis: redis.Redis

    def restart_worker(self) -> None:
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


def start_worker(settings: Settings, env: dict[str, str]) -> processes.Background:
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
    try:
        yield pipe
    finally:
        processes.stop_together([pipe.worker, pipe.sink])


@pytest.fixture(scope="session")
def pipeline(stack: Settings):
    with running_pipeline(*isolated_settings(stack, "e2e")) as pipe:
        yield pipe


def cli_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}
