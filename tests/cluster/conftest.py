"""Fixtures for the cluster fault tests: three KRaft brokers (each also a controller, a
three-voter quorum) and a Redis of their own, which the tests kill and restart.

Fixed ports of their own, beside the single-broker fault stack's (29092/29093, 26379) and
everyone's own stacks: brokers 29192, 29194, 29196, their controllers 29193, 29195, 29197
(``TALLYROOM_STACK_PORT_STEP`` 2), Redis 26479; one run at a time on this machine (a lock).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from rich.console import Console

from tallyroom import stack as local_stack
from tallyroom.lifecycle import kafka_transient, retrying
from tallyroom.settings import Settings, get_settings
from tests.faults.conftest import pipeline_on, share_kafka_jars

BROKERS = 3
KAFKA_PORT = 29192
CONTROLLER_PORT = 29193
PORT_STEP = 2
REDIS_URL = "redis://127.0.0.1:26479/0"
IN_SYNC_TIMEOUT = 120.0


def cluster_stack_settings(shared: Settings) -> Settings:
    stack_dir = Path(shared.stack_dir) / "cluster-faults"
    settings = shared.model_copy(
        update={
            "stack_dir": stack_dir,
            "kafka_bootstrap": f"127.0.0.1:{KAFKA_PORT}",
            "kafka_controller_port": CONTROLLER_PORT,
            "stack_brokers": BROKERS,
            "stack_port_step": PORT_STEP,
            "redis_url": REDIS_URL,
            "worker_data_dir": stack_dir / "worker",
            # Three JVMs on a small shared machine: a smaller heap each is plenty for a test night.
            "kafka_heap": "384m",
        }
    )
    # Clients name every broker, so that one starting while any broker is down still connects.
    return settings.model_copy(update={"kafka_bootstrap": local_stack.cluster_bootstrap(settings, BROKERS)})


@contextmanager
def ports_held(settings: Settings) -> Iterator[None]:
    """One cluster run at a time on this machine, whatever its checkout: the ports are fixed."""
    lock = Path(tempfile.gettempdir()) / f"tallyroom-cluster-faults-{settings.kafka_host_port[1]}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@dataclass
class Cluster:
    """The test's cluster: find a partition's leader, kill, stop and start brokers by node id."""

    settings: Settings
    console: Console

    def service(self, node: int) -> local_stack.Service:
        (service,) = [s for s in local_stack.kafka_services(self.settings, BROKERS) if s.name == f"kafka-{node}"]
        return service

    @property
    def nodes(self) -> list[int]:
        return [b.node for b in local_stack.cluster_brokers(self.settings, BROKERS)]

    def _admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**self.settings.kafka_python_config(), request_timeout_ms=10_000)

    def partitions(self, topics: list[str], timeout: float = 30) -> list[dict]:
        # With a broker just killed, the admin client can pick it, for its bootstrap or its metadata
        # request, and be refused: ask again, on a new client, as a client would.
        def described() -> list[dict]:
            admin = self._admin()
            try:
                return [{"topic": t["name"], **p} for t in admin.describe_topics(topics) for p in t["partitions"]]
            finally:
                admin.close()

        return retrying(
            described, what="Kafka (describing topics)", transient=kafka_transient, deadline=time.monotonic() + timeout
        )

    def topic_configs(self, topics: list[str]) -> dict[str, dict[str, str]]:
        """Each topic's own (non-default) configs, as the brokers hold them."""
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = self._admin()
        try:
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        finally:
            admin.close()
        return {t: {k: v["value"] for k, v in configs.items()} for t, configs in described["topic"].items()}

    def leader(self, topic: str, partition: int = 0) -> int:
        (found,) = [p for p in self.partitions([topic]) if p["partition_index"] == partition]
        return found["leader_id"]

    def wait_for_new_leader(self, topic: str, dead: int, timeout: float = 60) -> tuple[int, float]:
        """Until another broker leads ``topic``'s partition 0 (the controller moves it once the dead
        broker's session lapses); the new leader and the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                leader = self.leader(topic)
            except Exception:  # noqa: BLE001 - metadata from a broker that has just died; asked again
                leader = dead
            if leader not in (dead, -1):
                return leader, time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"{topic}: still no leader but kafka-{dead} after {timeout:.0f}s")

    def kill(self, node: int) -> None:
        """SIGKILL, as a crashed machine: no controlled shutdown, no leadership handed over."""
        pid = self.service(node).pid()
        assert pid is not None, f"kafka-{node} is not running"
        os.kill(pid, signal.SIGKILL)
        while self.service(node).pid() is not None:
            time.sleep(0.1)

    def stop(self, node: int) -> None:
        """SIGTERM: a controlled shutdown, which moves its leaderships first (a rolling restart's)."""
        local_stack.stop(self.service(node), self.console)

    def start(self, node: int) -> None:
        local_stack.start(self.service(node), self.settings, self.console)

    def wait_in_sync(self, topics: list[str], timeout: float = IN_SYNC_TIMEOUT) -> float:
        """Until every partition of ``topics`` has all its replicas in sync again; the seconds taken."""
        started = time.monotonic()
        lagging: list = []
        while time.monotonic() - started < timeout:
            try:
                lagging = [p for p in self.partitions(topics) if set(p["isr_nodes"]) != set(p["replica_nodes"])]
            except Exception as exc:  # noqa: BLE001 - metadata while a broker comes back; asked again
                lagging = [exc]
            if not lagging:
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"replicas not back in sync after {timeout:.0f}s: {lagging[:3]}")


@pytest.fixture(scope="module")
def cluster_stack() -> Iterator[Settings]:
    """Three fresh brokers and a Redis on ports of their own, stopped at the end of the module."""
    settings = cluster_stack_settings(get_settings())
    with ports_held(settings):
        local_stack.down(settings)  # left over from an interrupted run
        for data in [f"kafka-{n}-data" for n in range(1, BROKERS + 1)] + ["redis-data", "worker", "conf"]:
            shutil.rmtree(Path(settings.stack_dir) / data, ignore_errors=True)
        share_kafka_jars(get_settings(), settings)
        local_stack.up(settings, brokers=BROKERS)
        try:
            yield settings
        finally:
            # Nothing of this cluster is kept (the next run starts afresh): SIGKILL, rather than wait
            # ~10 s for three controlled shutdowns.
            for service in local_stack.kafka_services(settings, BROKERS):
                if (pid := service.pid()) is not None:
                    os.kill(pid, signal.SIGKILL)
            local_stack.down(settings)


@pytest.fixture(scope="module")
def cluster(cluster_stack: Settings) -> Cluster:
    return Cluster(cluster_stack, Console())


@pytest.fixture
def cluster_pipeline(cluster_stack: Settings, cluster: Cluster, request):
    """A real worker and sink on this test's own topics, on the cluster; every broker up at the start."""
    for node in cluster.nodes:
        cluster.start(node)  # a no-op for those that run
    tag = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name.removeprefix("test_"))
    with pipeline_on(cluster_stack, tag[:16] + tag[-10:]) as pipe:
        yield pipe
