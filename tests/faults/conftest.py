"""Fixtures for fault tests: a Kafka broker and a Redis of their own, which the tests may stop.

The shared stack (9092/6379) is used by other test sessions at the same time, so
the faults never touch it: this stack lives in ``.stack/faults`` on other ports.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tallyroom import processes
from tallyroom import stack as local_stack
from tallyroom.consumers.redis_sink import redis_client
from tallyroom.settings import Settings, get_settings
from tests.integration.conftest import Pipeline, isolated_settings, start_worker

KAFKA_BOOTSTRAP = "127.0.0.1:29092"
KAFKA_CONTROLLER_PORT = 29093
REDIS_URL = "redis://127.0.0.1:26379/0"  # a Redis server of our own: no other session uses it


def fault_stack_settings(shared: Settings) -> Settings:
    stack_dir = Path(shared.stack_dir) / "faults"
    return shared.model_copy(
        update={
            "stack_dir": stack_dir,
            "kafka_bootstrap": KAFKA_BOOTSTRAP,
            "kafka_controller_port": KAFKA_CONTROLLER_PORT,
            "redis_url": REDIS_URL,
            "worker_data_dir": stack_dir / "worker",
        }
    )


def stack_env(settings: Settings) -> dict[str, str]:
    """What a worker or sink subprocess needs to find this stack and not the shared one."""
    return {
        "TALLYROOM_STACK_DIR": str(settings.stack_dir),
        "TALLYROOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TALLYROOM_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        "TALLYROOM_REDIS_URL": settings.redis_url,
        "TALLYROOM_WORKER_DATA_DIR": str(settings.worker_data_dir),
    }


def share_kafka_jars(shared: Settings, own: Settings) -> None:
    """Point our jar cache at the shared one: fetching the broker again would cost ~30 s."""
    source = local_stack.ensure_kafka_jars(shared)  # fetches only if the shared cache is missing
    target = Path(own.stack_dir) / "kafka-jars"
    if target.is_symlink() or target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source.resolve(), target_is_directory=True)


@contextmanager
def ports_held(settings: Settings) -> Iterator[None]:
    """One fault run at a time on this machine, whatever its checkout: the ports are fixed,
    and a second run would stop and wipe the first one's broker mid-test."""
    lock = Path(tempfile.gettempdir()) / f"tallyroom-faults-{settings.kafka_host_port[1]}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[Settings]:
    """A fresh broker and Redis on ports of their own, stopped at the end of the module."""
    settings = fault_stack_settings(get_settings())
    with ports_held(settings):
        local_stack.down(settings)  # left over from an interrupted run
        for data in ("kafka-data", "redis-data", "worker"):
            # A fresh start: no topics or keys of earlier runs, and a quicker broker start.
            shutil.rmtree(Path(settings.stack_dir) / data, ignore_errors=True)
        share_kafka_jars(get_settings(), settings)
        local_stack.up(settings)
        try:
            yield settings
        finally:
            local_stack.down(settings)


@contextmanager
def pipeline_on(stack: Settings, tag: str) -> Iterator[Pipeline]:
    """A real worker and sink on topics of their own (named after ``tag``), on ``stack``."""
    settings, env = isolated_settings(stack, tag)
    settings = settings.model_copy(update={"redis_url": stack.redis_url})
    env = {**env, **stack_env(stack)}
    # The sink starts while the worker gets ready: it has lived its first 2 s by then.
    sink_started = time.monotonic()
    sink = processes.start("sink", settings, env=env, log_name=f"{settings.worker_id}-sink")
    worker = start_worker(settings, env)
    processes.wait_alive(sink, max(0.2, 2 - (time.monotonic() - sink_started)))
    pipe = Pipeline(settings, env, worker, sink, redis_client(settings))
    pipe.watch_for_holes()
    try:
        yield pipe
    finally:
        pipe.stop()


@pytest.fixture
def fault_pipeline(fault_stack: Settings, request):
    """A real worker and sink on this test's own topics, on the fault stack."""
    with pipeline_on(fault_stack, request.node.name.removeprefix("test_")[:24]) as pipe:
        yield pipe
