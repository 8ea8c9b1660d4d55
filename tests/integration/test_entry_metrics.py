"""The entry server's /metrics: records accepted and refused, requests by status (real broker)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tallyroom.producers.http import create_entry_app
from tallyroom.producers.kafka import ensure_topics
from tests.factories import cand, decl
from tests.integration.conftest import isolated_settings

pytestmark = pytest.mark.integration


def sample(text: str, series: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(series + " ")]
    return float(line.split()[1])


def test_records_accepted_and_refused_are_counted(stack):
    settings, _env = isolated_settings(stack, "entry-metrics")
    ensure_topics(settings)
    good = json.loads(decl("E14000101", cand("A", "Lab", 10), cand("B", "Con", 5)).model_dump_json())
    bad = {**good, "ons_id": "nope"}
    with TestClient(create_entry_app(settings)) as client:
        assert client.post("/declarations", json=[good, bad, good]).status_code == 422
        assert client.post("/declarations", content=b"not json").status_code == 422
        text = client.get("/metrics").text
    assert sample(text, 'tallyroom_entry_records_total{outcome="accepted"}') == 2
    assert sample(text, 'tallyroom_entry_records_total{outcome="refused"}') == 2  # the bad record, the bad body
    assert sample(text, 'tallyroom_http_requests_total{route="/declarations",status="422"}') == 2
