"""What a replay really writes, in Kafka and in Redis, validated against the exported JSON Schemas
(schemas/json/, as a client in another language would: with ``jsonschema``, not pydantic).

One replay of the 2024 night at full speed on a pipeline of this module's own (its own topics and
Redis DB, so every record read is one this night wrote), then a correction (revision 2), a recount
notice and one unreadable event (a dead letter).
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys, stream_entries
from tallyroom.consumers.reader import wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tallyroom.schemas import AlertKind, RecountNotice
from tallyroom.settings import Settings
from tests.e2e.test_night import NIGHT, replay, tallyroom
from tests.integration.conftest import Pipeline, isolated_settings, running_pipeline

jsonschema = pytest.importorskip("jsonschema")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ELECTION = "ge2024"
CONTRACTS_REDIS_DB = 4  # its own (see test_viewers_load.py for the others)
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
UNREADABLE = b'{"kind": "declaration", "election": "ge2024"}'
# What the 2024 night raises, with the correction and the recount sent after it.
NIGHT_KINDS = {
    AlertKind.GAIN,
    AlertKind.INDEPENDENT_GAIN,
    AlertKind.INCUMBENT_DEFEATED,
    AlertKind.MARGINAL,
    AlertKind.NEAR_UPSET,
    AlertKind.MAJORITY_REACHED,
    AlertKind.BIG_SWING,
    AlertKind.CORRECTION,
    AlertKind.RECOUNT,
}


@functools.cache
def validator(name: str) -> Any:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def problems(name: str, value: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(value)]


def read_topic(settings: Settings, topic: str) -> list[bytes]:
    """Every value on every partition of ``topic``, from its start to its end now."""
    consumer = KafkaConsumer(enable_auto_commit=False, **settings.kafka_python_config())
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        values: list[bytes] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                values += [r.value for r in batch if r.offset < ends[tp]]
        return values
    finally:
        consumer.close()


class LiveChannel:
    """Every message published on the election's live channel while it is open."""

    def __init__(self, pipe: Pipeline, election: str):
        self.pubsub = pipe.redis.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(ElectionKeys(election).live)
        self.messages: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            message = self.pubsub.get_message(timeout=0.5)
            if message is not None:
                self.messages.append(message["data"])

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.pubsub.close()


@pytest.fixture(scope="module")
def night(stack):
    # Its own Redis DB: running_pipeline flushes it, and DB 15 holds the session's e2e pipeline.
    with running_pipeline(*isolated_settings(stack, "contracts", CONTRACTS_REDIS_DB)) as pipe:
        live = LiveChannel(pipe, ELECTION)
        try:
            replay(pipe, ELECTION)
            original = next(d for d in load_night(NIGHT, ELECTION).declarations if d.constituency == "Ilford North")
            candidates = [
                c.model_copy(update={"votes": c.votes + 1000}) if c.name == "Leanne Mohamad" else c
                for c in original.candidates
            ]
            corrected = original.model_copy(update={"revision": 2, "candidates": candidates, "valid_votes": None})
            recount = RecountNotice(
                election=ELECTION, ons_id=original.ons_id, announced_at=original.declared_at, reason="a bundle missed"
            )
            version = json.loads(pipe.redis.get(ElectionKeys(ELECTION).tally))["version"]
            done = tallyroom(pipe, "declare", stdin=f"{corrected.model_dump_json()}\n{recount.model_dump_json()}\n")
            assert done.returncode == 0, done.stdout + done.stderr
            sender = DeclarationSender(pipe.settings)
            sender.send_raw(ELECTION.encode(), UNREADABLE)
            assert sender.flush()[0] == 1
            sender.close()
            wait_for_declared(pipe.redis, ELECTION, 650, 60, version=version + 1)
            wait_until_caught_up(pipe.settings)
        finally:
            live.close()
        yield pipe, live.messages


def test_every_record_on_every_topic_is_valid_against_its_schema(night):
    pipe, _ = night
    settings = pipe.settings
    events = [json.loads(v) for v in read_topic(settings, settings.topic_declarations) if v != UNREADABLE]
    kinds = Counter(e["kind"] for e in events)
    assert kinds == {"night": 1, "declaration": 651, "recount": 1}
    for event in events:
        assert not problems(event["kind"], event), event
    results = read_topic(settings, settings.topic_results)
    assert len(results) >= 652
    for raw in results:
        assert not problems("result-update", json.loads(raw)), raw[:300]
    alerts = [json.loads(v) for v in read_topic(settings, settings.topic_alerts)]
    for alert in alerts:
        assert not problems("alert", alert), alert
    # Every kind the night raised was validated, facts and all, against its own variant of the schema.
    raised = Counter(a["kind"] for a in alerts)
    assert set(raised) >= {k.value for k in NIGHT_KINDS}, raised
    correction = next(a for a in alerts if a["kind"] == "correction")
    assert (correction["facts"]["revision"], correction["facts"]["previous_revision"]) == (2, 1)
    letters = [json.loads(v) for v in read_topic(settings, settings.topic_dead_letters)]
    assert [letter["raw"] for letter in letters] == [UNREADABLE.decode()]
    for letter in letters:
        assert not problems("dead-letter", letter), letter
    # The worker's own tables (README: the seats and nights changelogs) hold SeatResult and NightOpened JSON.
    seats = read_topic(settings, f"{settings.worker_id}-seats-changelog")
    assert len(seats) >= 651
    for raw in seats:
        assert not problems("seat-result", json.loads(raw)), raw[:300]


def test_a_record_the_schema_refuses_is_refused(night):
    """The checks here can fail: a share out of bounds, facts of another kind, a bad time, a missing field."""
    pipe, _ = night
    alert = json.loads(read_topic(pipe.settings, pipe.settings.topic_alerts)[0])
    seat = json.loads(pipe.redis.get(ElectionKeys(ELECTION).seat(alert["ons_id"])))
    assert problems("seat-result", seat | {"majority_share": 7})
    assert problems("alert", alert | {"facts": alert["facts"] | {"winner_share": -0.1}})
    assert problems("alert", alert | {"kind": "recount"})
    assert problems("alert", alert | {"occurred_at": "yesterday"})  # formats are checked (rfc3339-validator)
    assert problems("alert", {k: v for k, v in alert.items() if k != "headline"})


def test_every_json_value_in_redis_is_valid_against_its_schema(night):
    pipe, live = night
    keys = ElectionKeys(ELECTION)
    redis = pipe.redis
    seat_keys = list(redis.scan_iter(match=f"{keys.seat_prefix}*", count=1000))
    assert len(seat_keys) == 650
    for key in seat_keys:
        assert not problems("seat-result", json.loads(redis.get(key))), key
    tally = json.loads(redis.get(keys.tally))
    assert tally["declared"] == 650 and not problems("tally", tally)
    entries = stream_entries(redis.xrange(keys.alerts))
    assert entries and all(set(fields) >= {"id", "kind", "json"} for _, fields in entries)
    kinds = set()
    for _, fields in entries:
        alert = json.loads(fields["json"])
        assert not problems("alert", alert), alert
        assert (alert["id"], alert["kind"]) == (fields["id"], fields["kind"])
        kinds.add(alert["kind"])
    assert kinds >= {k.value for k in NIGHT_KINDS}
    assert len(live) == len(entries), "each alert published once on the live channel"
    for message in live:
        assert not problems("alert", json.loads(message)), message
    letters = stream_entries(redis.xrange(DEAD_LETTERS))
    assert len(letters) == 1
    for _, fields in letters:
        assert not problems("dead-letter", json.loads(fields["json"])), fields
