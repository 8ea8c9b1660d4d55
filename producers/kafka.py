"""kafka-python producer and topic set-up shared by every producer."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import LeaderNotAvailableError, TopicAlreadyExistsError

from tallyroom.lifecycle import check_kafka_login, kafka_transient, retrying
from tallyroom.schemas import NightOpened, SeatEvent
from tallyroom.schemas.common import json_bytes
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.kafka")


def make_producer(settings: Settings, **overrides) -> KafkaProducer:
    config = settings.kafka_python_config() | {
        "acks": "all",
        "enable_idempotence": True,  # broker de-duplicates the client's own retries
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "request_timeout_ms": 30_000,
        # Re-learn partition leaders every 5 s whatever happens. On a cluster whose leader was
        # SIGKILLed, kafka-python 3.0 kept the dead broker as the leader it had last been told
        # of and asked for no new metadata (the default is every 5 minutes), so every record for
        # that partition waited there until its 120 s delivery timeout (tests/cluster).
        "metadata_max_age_ms": 5_000,
        "max_request_size": 4 * 1024 * 1024,
        # A broker that does not answer: bootstrap, and a send's wait for the topic's metadata,
        # fail after connect_timeout (kafka-python's own waits are 30 s and 60 s).
        **settings.kafka_timeouts(),
        "max_block_ms": int(settings.connect_timeout * 1000),
    }
    return KafkaProducer(**(config | overrides))


MAX_REPLICATION = 3
KEEP_FOREVER = -1  # retention.ms: no time-based deletion


def min_insync_replicas(replicas: int) -> int:
    """2 where there are 3 replicas or more (an ``acks=all`` write is then on two brokers), else 1."""
    return 2 if replicas >= MAX_REPLICATION else 1


def default_replication(brokers: int) -> int:
    """Replicas of a topic on a cluster of ``brokers``: min(3, brokers). The local cluster's
    internal topics (consumer offsets, transactions) use the same, with ``min_insync_replicas``."""
    return min(MAX_REPLICATION, brokers)


@dataclass(frozen=True)
class TopicSpec:
    """How one topic is created: partitions, replicas and its topic-level configs."""

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]

    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, self.partitions, self.replication_factor, topic_configs=dict(self.configs))


def topic_spec(
    name: str,
    partitions: int,
    brokers: int,
    replication_factor: int | None = None,
    retention_ms: int | None = None,
    compacted: bool = False,
) -> TopicSpec:
    """A topic replicated for the cluster it is on. Pure: the worker's changelog topics use it too.

    Replicas default to min(3, brokers). With 3 or more, ``min.insync.replicas`` is 2, so an
    ``acks=all`` write is on two brokers before it is acknowledged and one broker may be lost.
    ``retention_ms`` (-1: kept for ever) overrides the broker's time-based deletion; a
    compacted topic (a table's changelog) keeps each key's latest record instead.
    """
    if brokers < 1:
        raise ValueError(f"brokers: {brokers} (a cluster has at least one)")
    replicas = replication_factor if replication_factor is not None else default_replication(brokers)
    if not 1 <= replicas <= brokers:
        raise ValueError(f"topic_replication_factor: {replicas} for {name}, but the cluster has {brokers} broker(s)")
    configs: dict[str, str] = {}
    if min_insync_replicas(replicas) > 1:
        configs["min.insync.replicas"] = str(min_insync_replicas(replicas))
    if compacted:
        configs["cleanup.policy"] = "compact"
    if retention_ms is not None:
        configs["retention.ms"] = str(retention_ms)
    return TopicSpec(name, partitions, replicas, configs)


def tallyroom_topics(settings: Settings, brokers: int) -> list[TopicSpec]:
    """Tallyroom's own four topics. Declarations and results are the record the sink refills a
    wiped Redis from, so they are kept (``TALLYROOM_TOPIC_RETENTION_MS``, -1 by default)."""
    kept = settings.topic_retention_ms

    def spec(name: str, retention_ms: int | None = None) -> TopicSpec:
        return topic_spec(name, settings.topic_partitions, brokers, settings.topic_replication_factor, retention_ms)

    return [
        spec(settings.topic_declarations, kept),
        spec(settings.topic_alerts),
        spec(settings.topic_results, kept),
        spec(settings.topic_dead_letters),
    ]


def replication_warning(replication_factor: int, brokers: int, bootstrap: str) -> str | None:
    """Why a replication factor of 1 is dangerous here, or None when it is only a local stack."""
    if replication_factor > 1:
        return None
    remote = [host for host in bootstrap_hosts(bootstrap) if not is_loopback(host)]
    if brokers > 1:
        why = f"the cluster has {brokers} brokers, but each topic would live on one of them"
    elif remote:
        why = f"the broker ({', '.join(remote)}) is not on this machine's loopback, so this is not a dev stack"
    else:
        return None
    return (
        f"REPLICATION FACTOR 1: {why}. Losing that broker loses the night's declarations and results "
        "(Kafka is the record). Set TALLYROOM_TOPIC_REPLICATION_FACTOR (or leave it unset for min(3, brokers))."
    )


def bootstrap_hosts(bootstrap: str) -> list[str]:
    return [server.strip().rpartition(":")[0].strip("[]") or server.strip() for server in bootstrap.split(",")]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_topics(settings: Settings, changelogs: Sequence[str] = (), deadline: float | None = None) -> list[TopicSpec]:
    """Create Tallyroom's topics as ``tallyroom_topics`` says (a no-op for those that exist),
    and ``changelogs`` (the worker's tables) compacted and replicated the same way; a transient
    Kafka error is retried until ``deadline`` (a ``time.monotonic()``; default: kafka_start_timeout on).

    Warns loudly when a topic (new or existing) has one replica on a multi-broker cluster or
    on a broker that is not on loopback.
    """
    check_kafka_login(settings)  # every Kafka command starts here: a refused login ends it at once
    # A cluster with one broker down still answers, but kafka-python's admin client may pick that
    # broker for a request and be refused (a worker restarted during a leader election exited on
    # it in the cluster fault tests): a transient error is tried again, on a new client.
    brokers, specs, replicas = retrying(
        lambda: _create_topics(settings, changelogs),
        what="Kafka (making topics)",
        transient=kafka_transient,
        deadline=deadline if deadline is not None else time.monotonic() + settings.kafka_start_timeout,
        # Expected while a cluster elects; a start-up that gives up says so in one line (and 69).
        level=logging.INFO,
    )
    for name, count in replicas.items():
        warning = replication_warning(count, brokers, settings.kafka_bootstrap)
        if warning:
            log.warning("\n%s\n%s: %s\n%s", "!" * 100, name, warning, "!" * 100)
    return specs


def _create_topics(settings: Settings, changelogs: Sequence[str]) -> tuple[int, list[TopicSpec], dict[str, int]]:
    """(brokers, the topics' specs, each topic's replicas) after creating those missing: one admin client."""
    admin = KafkaAdminClient(**settings.kafka_python_config(), **settings.kafka_timeouts())
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        specs = tallyroom_topics(settings, brokers) + [
            topic_spec(name, settings.topic_partitions, brokers, settings.topic_replication_factor, compacted=True)
            for name in changelogs
        ]
        existing = set(admin.list_topics())
        wanted = [spec for spec in specs if spec.name not in existing]
        replicas = {spec.name: spec.replication_factor for spec in wanted}
        held = [spec.name for spec in specs if spec.name in existing]
        if held:
            for topic in admin.describe_topics(held):
                replicas[topic["name"]] = min((len(p["replica_nodes"]) for p in topic["partitions"]), default=1)
        if wanted:
            try:
                admin.create_topics([spec.new_topic() for spec in wanted])
            except TopicAlreadyExistsError:
                pass
        wait_until_led(admin, [spec.name for spec in specs])
    finally:
        admin.close()
    return brokers, specs, replicas


TOPICS_LED_SECONDS = 10.0


def wait_until_led(admin: KafkaAdminClient, names: Sequence[str], seconds: float = TOPICS_LED_SECONDS) -> None:
    """Return once the broker's metadata has each of ``names`` with a leader for every partition.

    A topic the controller has just made (here, or by a process starting beside this one) can be
    missing from a broker's metadata for a moment. A Faust worker that subscribes in that moment is
    assigned nothing of it (its assignor ignores a topic the metadata lacks: "Ignoring missing
    topic", seen in the fault tests for Faust's own leader topic), and aiokafka looks again only
    when its metadata ages out, five minutes later. Still not led after ``seconds``: a transient
    error, which ``ensure_topics`` tries again until its deadline.
    """
    deadline = time.monotonic() + seconds
    while True:
        unled = [
            topic["name"]
            for topic in admin.describe_topics(list(names))
            if topic["error_code"] or not topic["partitions"] or any(p["leader_id"] < 0 for p in topic["partitions"])
        ]
        if not unled:
            return
        if time.monotonic() > deadline:
            raise LeaderNotAvailableError(f"no leader in the broker's metadata after {seconds:.0f}s for {unled}")
        time.sleep(0.1)


class DeclarationSender:
    """Sends election events keyed by election.

    One partition then holds a whole election in order, and the one worker that
    owns it keeps that election's tally exact; more elections spread over more
    partitions and workers (``tallyroom.streams.app`` refuses a declaration that arrives on
    another partition).
    """

    def __init__(self, settings: Settings, producer: KafkaProducer | None = None):
        self.settings = settings
        self.topic = settings.topic_declarations
        self.producer = producer or make_producer(settings)
        self.futures: list = []

    def open_night(self, night: NightOpened):
        return self._send(night.election, json_bytes(night))

    def send(self, event: SeatEvent):
        return self._send(event.election, json_bytes(event))

    def _send(self, election: str, payload: bytes):
        future = self.producer.send(self.topic, key=election.encode(), value=payload)
        self.futures.append(future)
        return future

    def send_raw(self, key: bytes | None, value: bytes):
        future = self.producer.send(self.topic, key=key, value=value)
        self.futures.append(future)
        return future

    def flush(self, timeout: float = 120) -> tuple[int, list[Exception]]:
        """Wait for the broker; returns how many it acknowledged and the failures."""
        self.producer.flush(timeout=timeout)
        acked, failures = 0, []
        for future in self.futures:
            try:
                future.get(timeout=timeout)
                acked += 1
            except Exception as exc:  # noqa: BLE001 - reported to the operator, not swallowed
                failures.append(exc)
        self.futures.clear()
        return acked, failures

    def close(self) -> None:
        self.producer.close(timeout=30)
