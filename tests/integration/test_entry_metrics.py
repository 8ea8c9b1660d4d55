"""The entry server's /metrics: records accepted and refused, requests by status (real broker)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tallyroom.producers.http import create_entry_app
from tallyroom.producers.kafka import ensure_topics
from tallyroom.producers.operators import OperatorStore
from tests.factories import cand, decl
from tests.integration.conftest import isolated_settings

pytestmark = pytest.mark.integration


def sample(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[1])


def test_records_accepted_and_refused_are_counted(stack, tmp_path):
    settings, _env = isolated_settings(stack, "entry-metrics")
    store = OperatorStore(tmp_path / "operators.json")
    settings = settings.model_copy(update={"operators_file": store.path})
    token = store.add("metrics-test")  # writes need a signed-in operator
    ensure_topics(settings)
    good = json.loads(decl("E14000101", cand("A", "Lab", 10), cand("B", "Con", 5)).model_dump_json())
    bad = {**good, "ons_id": "nope"}
    with TestClient(create_entry_app(settings), headers={"authorization": f"Bearer {token}"}) as client:
        assert client.post("/declarations", json=[good, bad, good]).status_code == 422
        not_json = client.post("/declarations", content=b"not json", headers={"content-type": "application/json"})
        assert not_json.status_code == 422
        text = client.get("/metrics").text
    assert sample(text, 'tallyroom_entry_records_total{outcome="accepted"}') == 2
    assert sample(text, 'tallyroom_entry_records_total{outcome="refused"}') == 2  # the bad record, the bad body
    assert sample(text, 'tallyroom_http_requests_total{route="/declarations",status="422"}') == 2
