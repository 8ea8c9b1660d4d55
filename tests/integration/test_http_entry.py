"""HTTP live entry: records posted to /declarations land on the real topic; bad ones are named."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from tallyroom.producers.http import MAX_BODY_BYTES, create_entry_app
from tallyroom.producers.kafka import ensure_topics
from tallyroom.schemas import parse_event
from tests.factories import cand, decl, night
from tests.integration.conftest import isolated_settings

pytestmark = pytest.mark.integration


class Topic:
    """Reads what one request added to the (single-partition) declarations topic."""

    def __init__(self, settings):
        self.settings = settings
        self.tp = TopicPartition(settings.topic_declarations, 0)

    def _consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer(**self.settings.kafka_python_config(), enable_auto_commit=False)
        consumer.assign([self.tp])
        return consumer

    def end(self) -> int:
        consumer = self._consumer()
        try:
            return consumer.end_offsets([self.tp])[self.tp]
        finally:
            consumer.close()

    def read_from(self, offset: int, expected: int, settle: float = 1.0) -> list:
        """Everything from `offset`: at least `expected` records, then a short wait for any extra."""
        consumer = self._consumer()
        consumer.seek(self.tp, offset)
        records, deadline = [], time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                records += consumer.poll(timeout_ms=250).get(self.tp, [])
                if len(records) >= expected:
                    deadline = min(deadline, time.monotonic() + settle)
        finally:
            consumer.close()
        return records


@pytest.fixture(scope="module")
def entry(stack):
    settings, _env = isolated_settings(stack, "http")
    ensure_topics(settings)
    with TestClient(create_entry_app(settings)) as client:
        yield client, Topic(settings)


def declaration(ons_id: str, *, revision: int = 1, votes: tuple[int, int] = (10, 5)) -> dict:
    return json.loads(
        decl(ons_id, cand("A", "Lab", votes[0]), cand("B", "Con", votes[1]), revision=revision).model_dump_json()
    )


def test_health(entry):
    client, _ = entry
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_valid_declaration_is_sent_keyed_by_election(entry):
    client, topic = entry
    start = topic.end()
    response = client.post("/declarations", json=declaration("E14000101"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "acknowledged": 1, "errors": []}
    records = topic.read_from(start, 1)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [(b"test", "E14000101")]
    sent = parse_event(records[0].value)
    assert sent.ons_id == "E14000101" and sent.candidate_votes == 15


def test_batch_with_a_bad_record_names_it_and_sends_the_rest(entry):
    client, topic = entry
    bad = declaration("E14000202")
    bad["candidates"][0]["votes"] = -3
    start = topic.end()
    response = client.post("/declarations", json=[declaration("E14000201"), bad, declaration("E14000203")])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["accepted"] == 2 and body["acknowledged"] == 2
    assert [(e["record"], e["field"]) for e in body["errors"]] == [(2, "declaration.candidates.0.votes")]
    assert body["errors"][0]["message"]
    records = topic.read_from(start, 2)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [
        (b"test", "E14000201"),
        (b"test", "E14000203"),
    ]


def test_correction_with_higher_revision_is_sent(entry):
    client, topic = entry
    start = topic.end()
    first = client.post("/declarations", json=declaration("E14000301"))
    corrected = client.post("/declarations", json=declaration("E14000301", revision=2, votes=(10, 12)))
    assert (first.status_code, corrected.status_code) == (202, 202), corrected.text
    records = topic.read_from(start, 2)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [
        (b"test", "E14000301"),
        (b"test", "E14000301"),
    ]
    assert [parse_event(r.value).revision for r in records] == [1, 2]


def test_recount_notice_is_accepted(entry):
    client, topic = entry
    start = topic.end()
    recount = {
        "kind": "recount",
        "election": "test",
        "ons_id": "E14000401",
        "announced_at": "2024-07-05T02:00:00+01:00",
        "reason": "margin under 50",
    }
    response = client.post("/declarations", json=recount)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    records = topic.read_from(start, 1)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [(b"test", "E14000401")]
    assert parse_event(records[0].value).kind == "recount"


def test_ndjson_lines_are_numbered_like_declare(entry):
    client, topic = entry
    opening = night({"E14000501": "Con"}).model_dump_json()
    lines = "\n".join([opening, "{not json", json.dumps(declaration("E14000501"))]) + "\n"
    start = topic.end()
    response = client.post("/declarations", content=lines, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [(e["record"], e["field"]) for e in body["errors"]] == [(2, "payload")]
    records = topic.read_from(start, 2)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [(b"test", None), (b"test", "E14000501")]


def test_body_that_is_not_json_is_refused_as_payload(entry):
    client, topic = entry
    start = topic.end()
    response = client.post("/declarations", content=b"this is not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["accepted"] == 0
    assert [(e["record"], e["field"]) for e in response.json()["errors"]] == [(1, "payload")]
    assert topic.end() == start


def test_oversize_body_is_refused(entry):
    client, topic = entry
    start = topic.end()
    response = client.post(
        "/declarations", content=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "payload"
    assert topic.end() == start
