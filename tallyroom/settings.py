"""Configuration, read from ``TALLYROOM_*`` environment variables.

Every endpoint and credential can be set for a real deployment; the defaults
are the local stack that ``tallyroom stack up`` starts.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tallyroom import CHECKOUT

# The source checkout's root; installed from a wheel, this is site-packages (see CHECKOUT).
REPO_ROOT = Path(__file__).resolve().parent.parent


def default_stack_dir() -> Path:
    """``.stack/`` in a checkout; installed, the user's data folder (``$XDG_DATA_HOME/tallyroom``,
    else ``~/.local/share/tallyroom``), so `stack up` and `stack down` agree from any directory."""
    if CHECKOUT is not None:
        return CHECKOUT / ".stack"
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "tallyroom"


DEFAULT_STACK_DIR = default_stack_dir()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALLYROOM_", env_file=".env", extra="ignore")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    # Topics
    topic_declarations: str = "tallyroom.declarations"
    topic_alerts: str = "tallyroom.alerts"
    topic_results: str = "tallyroom.results"
    topic_dead_letters: str = "tallyroom.dead-letters"
    topic_partitions: int = 1
    topic_replication_factor: int | None = Field(
        None, ge=1, description="replicas of each topic; unset: min(3, brokers in the cluster)"
    )
    topic_retention_ms: int = Field(
        -1, ge=-1, description="retention.ms of declarations and results; -1 keeps them (the sink's refill reads them)"
    )

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_username: str | None = Field(None, description="Redis ACL user (a user in TALLYROOM_REDIS_URL also works)")
    redis_password: SecretStr | None = None

    # How long a client waits for Kafka or Redis to answer before saying so: the producers'
    # bootstrap and metadata waits (kafka-python's own are 60 s and 30 s), the admin client's,
    # and every Redis connection's connect. A command that starts without its service exits
    # in one line after this long (`Redis at ... is not answering (TALLYROOM_REDIS_URL)`).
    connect_timeout: float = Field(
        5.0, gt=0, le=300, description="seconds to wait for Kafka or Redis to answer before giving up"
    )
    # A cluster with a broker down, or electing a partition's or the controller's new leader, answers
    # some requests and refuses others until the dead broker's session lapses (9 s by default): a
    # command starting then (making its topics; the worker's Faust start-up) tries again this long.
    kafka_start_timeout: float = Field(
        20.0, gt=0, le=600, description="seconds a command's start-up retries Kafka errors that pass, then exits 69"
    )
    debug: bool = Field(False, description="tracebacks instead of one-line errors (the --debug option sets it)")

    # Elections
    election: str | None = Field(None, description="election id; defaults from the night directory name")

    # Rule thresholds
    marginal_votes: int = 1000
    marginal_share: float = 0.02
    big_swing: float = Field(0.10, gt=0, le=1, description="a seat's swing (fraction points) that raises big_swing")

    # Local stack (tallyroom stack up)
    stack_dir: Path = DEFAULT_STACK_DIR
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    # A local cluster (`stack up --brokers N`): broker i (0, 1, ...) is node i+1, listening on the
    # bootstrap's first port + i*step and its controller on the controller port + i*step.
    stack_brokers: int = Field(
        1, ge=1, le=9, description="brokers `stack up` starts (each also a KRaft controller); 1: a single broker"
    )
    stack_port_step: int = Field(
        10, ge=1, description="a cluster's broker i listens on the bootstrap port + i*step, its controller likewise"
    )
    stack_secure: bool = Field(
        False, description="stack up with Kafka SASL/SCRAM and Redis ACL users (tallyroom/stack_secure.py)"
    )

    # Live entry (tallyroom entry, the console): operators' token hashes, and the audit trail
    operators_file: Path | None = Field(
        None, description="operators and their token hashes; default STACK_DIR/operators.json"
    )

    # Worker
    worker_id: str = "tallyroom"
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the worker's Prometheus /metrics (on 127.0.0.1); unset: not served"
    )
    sink_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the sink's Prometheus /metrics (on 127.0.0.1); unset: not served"
    )
    webhooks_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="port of the webhooks' Prometheus /metrics (on 127.0.0.1); unset: not served"
    )
    lag_sample_seconds: float = Field(
        5.0, gt=0, description="how often the worker and the sink sample their consumer lag for /metrics"
    )
    worker_web_port: int = 6066
    worker_data_dir: Path = DEFAULT_STACK_DIR / "worker"
    sink_group: str = "tallyroom-redis-sink"
    worker_batch_size: int = 500
    worker_session_timeout: float = 10.0
    # How long the worker waits to fill a batch: the floor of its latency. Faust's take_events waits
    # this long from the end of the last batch, not from the first event, then takes what came.
    # 0.003 against 0.01, three interleaved rounds (bench/README.md, session 15): p99 at 200/s 77.1,
    # 48.7, 43.0 -> 46.8, 38.8, 40.9 ms, at 500/s 141.6, 103.8, 61.0 -> 75.7, 58.9, 55.3 ms, for about
    # 25% more worker CPU per declaration at 200/s and 5% at 500/s; an idle worker 6.6% -> 12.2% of a
    # core (the extra waits cost Faust about 0.24 ms each). 0.001 was worse at 500/s (128.6-149.2 ms
    # against 0.003's 86.5-98.6 in three more rounds: more, smaller batches).
    worker_batch_seconds: float = 0.003
    # How often the worker looks for a partition whose records are in Kafka but never reach its
    # agent (streams.app.StallWatch); a stall is declared at the second look in a row, so within
    # twice this. 0 turns the check off.
    worker_stall_check_seconds: float = Field(5.0, ge=0)
    # How long a worker's or sink's fetch may wait at the broker for new records. Each
    # client keeps one fetch in flight per broker, so a fetch parked on a quiet partition
    # holds up a busy one for this long (faust-streaming's own is 1,500, kafka-python's 500).
    fetch_max_wait_ms: int = Field(20, ge=1, le=1500)
    # How often a sink commits what it has flushed: a commit is a broker round trip in the sink's
    # loop. Its writes are idempotent, so a crash re-delivers at most this much again.
    sink_commit_seconds: float = Field(1.0, ge=0, description="a sink commits at most this often; 0: every poll")
    # The long-running processes' garbage collector (tallyroom.lifecycle.tune_gc): what they hold at
    # start (libraries, the app, its models) is frozen out of the collector's full scans.
    gc_freeze: bool = Field(True, description="freeze what a worker, sink or web holds at start out of GC scans")

    # Test only (tallyroom/streams/faults.py): switch a fault on in a real worker
    fault_rule_seat: str | None = Field(None, description="test only: the rules raise for this seat's declarations")
    fault_flush_trigger: Path | None = Field(
        None, description="test only: a batch's sends fail once each time this file appears"
    )
    fault_lose_trigger: Path | None = Field(
        None,
        description="test only: the next declarations record is lost, once each time this file appears",
    )

    # Bad input (schemas/limits.py): live entry refuses, the worker dead-letters, an event over these
    max_payload_bytes: int = Field(
        1_000_000, ge=1, description="largest event, in bytes (a night of 650 seats opens with 48 kB)"
    )
    max_candidates: int = Field(100, ge=1, le=100, description="candidates per seat; the schema's own cap is 100")

    # Webhooks (tallyroom webhooks): each URL gets each alert as a signed POST
    webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated, or a JSON list"
    )
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for X-Tallyroom-Signature")
    webhook_max_attempts: int = Field(8, ge=1)
    webhook_backoff_seconds: float = Field(0.5, gt=0, description="first retry delay; doubles each attempt")
    webhook_backoff_max_seconds: float = Field(60.0, gt=0, description="cap on one retry delay")
    webhook_timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_webhook_urls(cls, value):
        # NoDecode: the env var arrives raw, so both "a,b" and '["a","b"]' work.
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        urls = [str(u).strip() for u in value if str(u).strip()]
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"webhook_urls: {url!r} is not an http:// or https:// URL")
        return urls

    @property
    def operators_path(self) -> Path:
        return self.operators_file or self.stack_dir / "operators.json"

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0]
        host, _, port = first.rpartition(":")
        return host or "127.0.0.1", int(port)

    def kafka_python_config(self) -> dict:
        """Connection settings in kafka-python's (and aiokafka's) spelling."""
        cfg: dict = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            cfg["sasl_mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl_plain_username"] = self.kafka_sasl_username
            cfg["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, f"kafka_{key}")
            if value:
                cfg[key] = value
        return cfg

    def librdkafka_config(self) -> dict[str, str | int]:
        """The same connection settings in librdkafka's spelling (confluent-kafka: the sinks' consumer).

        ``connect_timeout`` bounds each connection's set-up, as kafka-python's bootstrap wait does."""
        cfg: dict[str, str | int] = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol.lower(),
            "socket.connection.setup.timeout.ms": int(self.connect_timeout * 1000),
        }
        if self.kafka_sasl_mechanism:
            cfg["sasl.mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl.username"] = self.kafka_sasl_username or ""
            cfg["sasl.password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        for setting, key in (
            ("ssl.ca.location", self.kafka_ssl_cafile),
            ("ssl.certificate.location", self.kafka_ssl_certfile),
            ("ssl.key.location", self.kafka_ssl_keyfile),
        ):
            if key:
                cfg[setting] = key
        return cfg

    @property
    def redis_address(self) -> str:
        """host:port of TALLYROOM_REDIS_URL (never its password), for messages."""
        url = urlsplit(self.redis_url)
        return f"{url.hostname or '127.0.0.1'}:{url.port or 6379}"

    def kafka_timeouts(self) -> dict:
        """kafka-python's wait for a first broker to answer (its own is 30 s), as ``connect_timeout``.

        For KafkaProducer, KafkaConsumer and KafkaAdminClient alike; a producer adds its
        ``max_block_ms`` (``make_producer``)."""
        return {"bootstrap_timeout_ms": int(self.connect_timeout * 1000)}

    def redis_kwargs(self) -> dict:
        # A connect that hangs (a host that drops packets) fails after connect_timeout. Reads keep
        # redis-py's own bound (5 s in redis-py 8), longer than any XREAD BLOCK here (at most 1 s).
        kwargs: dict = {"decode_responses": True, "socket_connect_timeout": self.connect_timeout}
        if self.redis_username:
            kwargs["username"] = self.redis_username
        if self.redis_password:
            kwargs["password"] = self.redis_password.get_secret_value()
        return kwargs


@lru_cache
def get_settings() -> Settings:
    return Settings()
