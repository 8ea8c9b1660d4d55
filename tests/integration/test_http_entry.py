"""HTTP live entry: records posted to /declarations land on the real topic; bad ones are named."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition

from tallyroom.consumers.redis_sink import redis_client
from tallyroom.producers.audit import audit_key
from tallyroom.producers.http import MAX_BODY_BYTES, create_entry_app
from tallyroom.producers.kafka import ensure_topics
from tallyroom.producers.operators import OperatorStore, Role
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
def operators(tmp_path_factory):
    store = OperatorStore(tmp_path_factory.mktemp("operators") / "operators.json")
    return store, {"entry": store.add("eve"), "admin": store.add("ada", Role.ADMIN)}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class Audit:
    """What one request added to the audit trails (the election's, and the entry server's own)."""

    def __init__(self, settings, default_election: str):
        self.redis = redis_client(settings)
        self.keys = [audit_key("test"), audit_key(default_election)]
        self.marks: dict[str, str] = {}

    def mark(self) -> None:
        self.marks = {key: (self.redis.xrevrange(key, count=1) or [("0-0", {})])[0][0] for key in self.keys}

    def since_mark(self) -> list[dict]:
        return [fields for key in self.keys for _, fields in self.redis.xrange(key, min=f"({self.marks[key]}")]


@pytest.fixture(scope="module")
def entry(stack, operators):
    settings, _env = isolated_settings(stack, "http")
    default_election = f"http-entry-{settings.worker_id[-8:]}"
    settings = settings.model_copy(update={"operators_file": operators[0].path, "election": default_election})
    ensure_topics(settings)
    # An entry operator's token on every request unless a test sends its own.
    with TestClient(create_entry_app(settings), headers=bearer(operators[1]["entry"])) as client:
        yield client, Topic(settings), Audit(settings, default_election)


def declaration(ons_id: str, *, revision: int = 1, votes: tuple[int, int] = (10, 5)) -> dict:
    return json.loads(
        decl(ons_id, cand("A", "Lab", votes[0]), cand("B", "Con", votes[1]), revision=revision).model_dump_json()
    )


def test_health(entry):
    client, *_ = entry
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_valid_declaration_is_sent_keyed_by_election(entry):
    client, topic, audit = entry
    start = topic.end()
    response = client.post("/declarations", json=declaration("E14000101"))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "acknowledged": 1, "errors": []}
    records = topic.read_from(start, 1)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [(b"test", "E14000101")]
    sent = parse_event(records[0].value)
    assert sent.ons_id == "E14000101" and sent.candidate_votes == 15


def test_batch_with_a_bad_record_names_it_and_sends_the_rest(entry):
    client, topic, audit = entry
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
    client, topic, audit = entry
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
    client, topic, audit = entry
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


def test_ndjson_lines_are_numbered_like_declare(entry, operators):
    client, topic, audit = entry
    opening = night({"E14000501": "Con"}).model_dump_json()
    lines = "\n".join([opening, "{not json", json.dumps(declaration("E14000501"))]) + "\n"
    start = topic.end()
    headers = {"content-type": "application/x-ndjson"} | bearer(operators[1]["admin"])  # opening a night: admin
    response = client.post("/declarations", content=lines, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [(e["record"], e["field"]) for e in body["errors"]] == [(2, "payload")]
    records = topic.read_from(start, 2)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [(b"test", None), (b"test", "E14000501")]


def test_body_that_is_not_json_is_refused_as_payload(entry):
    client, topic, audit = entry
    start = topic.end()
    response = client.post("/declarations", content=b"this is not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["accepted"] == 0
    assert [(e["record"], e["field"]) for e in response.json()["errors"]] == [(1, "payload")]
    assert topic.end() == start


def test_oversize_body_is_refused(entry):
    client, topic, audit = entry
    start = topic.end()
    response = client.post(
        "/declarations", content=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "payload"
    assert topic.end() == start


# --- who may write ---------------------------------------------------------------------------


def refused_whole(response, status: int, field: str, audit: Audit, operator: str = "") -> None:
    """Refused as a whole, and so recorded: one audit entry naming the header at fault."""
    assert response.status_code == status, response.text
    body = response.json()
    assert (body["accepted"], body["acknowledged"]) == (0, 0)
    assert [(e["record"], e["field"]) for e in body["errors"]] == [(0, field)], body
    assert body["errors"][0]["message"]
    entries = audit.since_mark()
    assert [(e["outcome"], e["status"], e["operator"], e["action"], e["source"]) for e in entries] == [
        ("refused", str(status), operator, "request", "http")
    ]
    assert entries[0]["reason"] == f"{field}: {body['errors'][0]['message']}"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer ", "Bearer not-a-token-of-anyone-at-all-0123456789", "Basic YWRhOmFkYQ=="]
)
def test_no_token_or_a_bad_one_is_401_and_nothing_is_sent(entry, authorization):
    client, topic, audit = entry
    bare = TestClient(client.app)  # the same running app, without the fixture's default token
    start = topic.end()
    audit.mark()
    headers = {"authorization": authorization} if authorization else {}
    response = bare.post("/declarations", json=declaration("E14000601"), headers=headers)
    refused_whole(response, 401, "Authorization", audit)
    assert response.headers["www-authenticate"] == "Bearer"
    assert topic.end() == start


def test_a_revoked_token_is_401(entry, operators):
    client, topic, audit = entry
    store, _ = operators
    token = store.add("mallory")
    assert client.post("/declarations", json=declaration("E14000701"), headers=bearer(token)).status_code == 202
    store.revoke("mallory")
    start = topic.end()
    audit.mark()
    response = client.post("/declarations", json=declaration("E14000701", revision=2), headers=bearer(token))
    refused_whole(response, 401, "Authorization", audit)
    assert topic.end() == start


def test_an_entry_operator_may_not_open_a_night_nor_send_anything_with_it(entry):
    client, topic, audit = entry
    start = topic.end()
    audit.mark()
    body = [declaration("E14000801"), json.loads(night({"E14000801": "Con"}).model_dump_json())]
    response = client.post("/declarations", json=body)
    assert response.status_code == 403, response.text
    assert response.json()["accepted"] == 0
    assert [(e["record"], e["field"]) for e in response.json()["errors"]] == [(2, "night")]
    assert "admin only" in response.json()["errors"][0]["message"]
    assert topic.end() == start
    entries = audit.since_mark()
    assert [(e["record"], e["action"], e["outcome"], e["status"], e["operator"], e["role"]) for e in entries] == [
        ("1", "declaration", "refused", "403", "eve", "entry"),
        ("2", "night", "refused", "403", "eve", "entry"),
    ]
    assert "another record of the request was refused" in entries[0]["reason"]
    assert "admin only" in entries[1]["reason"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_neither_json_nor_ndjson_is_415(entry, content_type):
    client, topic, audit = entry
    start = topic.end()
    audit.mark()
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/declarations", content=json.dumps(declaration("E14000901")), headers=headers)
    refused_whole(response, 415, "Content-Type", audit, operator="eve")
    assert topic.end() == start


@pytest.mark.parametrize("origin", ["https://elsewhere.example", "null", "http://testserver.example"])
def test_a_foreign_origin_is_403(entry, origin):
    client, topic, audit = entry
    start = topic.end()
    audit.mark()
    response = client.post("/declarations", json=declaration("E14001001"), headers={"origin": origin})
    refused_whole(response, 403, "Origin", audit)
    assert topic.end() == start


def test_the_servers_own_origin_is_accepted(entry):
    client, topic, audit = entry
    response = client.post("/declarations", json=declaration("E14001101"), headers={"origin": "http://testserver"})
    assert response.status_code == 202, response.text


def test_what_was_sent_is_stamped_with_its_operator_and_audited_with_its_offset(entry):
    client, topic, audit = entry
    start = topic.end()
    audit.mark()
    claimed = declaration("E14001201") | {"entered_by": "someone-else", "source": "replay"}
    bad = declaration("E14001202") | {"revision": 0}
    response = client.post("/declarations", json=[claimed, bad])
    assert response.status_code == 422, response.text
    (record,) = topic.read_from(start, 1)
    sent = parse_event(record.value)
    assert (sent.entered_by, sent.source) == ("eve", "http")
    entries = audit.since_mark()
    assert [(e["record"], e["outcome"], e["ons_id"], e["revision"], e["status"]) for e in entries] == [
        ("1", "accepted", "E14001201", "1", "422"),
        ("2", "refused", "E14001202", "", "422"),
    ]
    assert (entries[0]["topic"], entries[0]["partition"], entries[0]["offset"]) == (
        topic.tp.topic,
        "0",
        str(record.offset),
    )
    assert entries[1]["reason"].startswith("declaration.revision: ")
