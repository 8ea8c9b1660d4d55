"""kafka-python producer and topic set-up shared by every producer."""

from __future__ import annotations

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from tallyroom.schemas import Declaration, NightOpened, RecountNotice
from tallyroom.settings import Settings


def make_producer(settings: Settings, **overrides) -> KafkaProducer:
    config = settings.kafka_python_config() | {
        "acks": "all",
        "enable_idempotence": True,  # broker de-duplicates the client's own retries
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "request_timeout_ms": 30_000,
        "max_request_size": 4 * 1024 * 1024,
    }
    return KafkaProducer(**(config | overrides))


def ensure_topics(settings: Settings) -> None:
    """Create Tallyroom's topics with the configured partitions (a no-op when they exist)."""
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
            for name in (
                settings.topic_declarations,
                settings.topic_alerts,
                settings.topic_results,
                settings.topic_dead_letters,
            )
            if name not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


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
        return self._send(night.election, night.model_dump_json().encode())

    def send(self, event: Declaration | RecountNotice):
        return self._send(event.election, event.model_dump_json().encode())

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
