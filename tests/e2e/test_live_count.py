"""The live count through the real pipeline: operators enter over HTTP, the worker counts,
and every seat result and alert traces back to one Kafka record and one operator."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_alerts
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.audit import read_audit
from tallyroom.producers.http import create_entry_app
from tallyroom.producers.operators import OperatorStore, Role
from tallyroom.schemas import SeatResult
from tests.factories import cand, decl, night

pytestmark = pytest.mark.e2e

SEAT_A, SEAT_B = "E14000001", "E14000002"


@pytest.fixture(scope="module")
def operators(tmp_path_factory):
    store = OperatorStore(tmp_path_factory.mktemp("operators") / "operators.json")
    return store, {"eve": store.add("eve"), "ada": store.add("ada", Role.ADMIN)}


@pytest.fixture(scope="module")
def entry(pipeline, operators):
    settings = pipeline.settings.model_copy(update={"operators_file": operators[0].path})
    with TestClient(create_entry_app(settings)) as client:
        yield client


def post(client, operators, who: str, *events) -> dict:
    body = [json.loads(e.model_dump_json()) for e in events]
    response = client.post("/declarations", json=body, headers={"authorization": f"Bearer {operators[1][who]}"})
    assert response.status_code == 202, response.text
    return response.json()


def opened(election: str):
    return night({SEAT_A: "Con", SEAT_B: "Lab"}, election=election)


def settled(pipeline) -> None:
    wait_until_caught_up(pipeline.settings, timeout=120)


def test_every_alert_and_seat_names_its_operator_and_record(pipeline, entry, operators):
    election = f"live-{uuid.uuid4().hex[:6]}"
    post(entry, operators, "ada", opened(election))
    post(entry, operators, "eve", decl(SEAT_A, cand("A", "Lab", 5000), cand("B", "Con", 4950), election=election))
    settled(pipeline)
    accepted = [e for e in read_audit(pipeline.redis, election) if e["action"] == "declaration"]
    assert [(e["operator"], e["outcome"]) for e in accepted] == [("eve", "accepted")]
    alerts = read_alerts(pipeline.redis, election)
    assert {a.kind.value for a in alerts} >= {"gain", "marginal"}
    assert {
        (a.provenance.entered_by, a.provenance.source, a.provenance.topic, a.provenance.offset) for a in alerts
    } == {("eve", "http", pipeline.settings.topic_declarations, int(accepted[0]["offset"]))}
    seat = SeatResult.model_validate_json(pipeline.redis.get(ElectionKeys(election).seat(SEAT_A)))
    assert seat.provenance.offset == int(accepted[0]["offset"]) and seat.provenance.entered_by == "eve"
