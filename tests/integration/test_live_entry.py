"""`tallyroom declare`: valid records are sent to the real broker, invalid ones refused by record and field."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from tallyroom.consumers.redis_sink import redis_client
from tallyroom.producers.audit import read_audit
from tallyroom.schemas import parse_event
from tests.factories import cand, decl
from tests.integration.conftest import cli_env, isolated_settings

pytestmark = pytest.mark.integration


def read_topic(settings, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(**settings.kafka_python_config(), enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records, deadline = [], time.monotonic() + 30
    while len(records) < expected and time.monotonic() < deadline:
        records += consumer.poll(timeout_ms=500).get(tp, [])
    consumer.close()
    return records


def test_declare_sends_valid_records_and_names_the_bad_ones(stack):
    settings, env = isolated_settings(stack, "declare")
    election = f"declare-{settings.worker_id[-8:]}"  # this run's own: the audit trail is per election
    env["TALLYROOM_ELECTION"] = election
    good = decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 5), election=election).model_dump_json()
    bad = json.loads(good) | {"ons_id": "E14000002"}
    bad["candidates"][1]["votes"] = -5
    recount = json.dumps(
        {"kind": "recount", "election": election, "ons_id": "E14000003", "announced_at": "2024-07-05T02:00:00+01:00"}
    )
    lines = "\n".join([good, json.dumps(bad), "{not json", recount]) + "\n"
    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "declare", "--operator", "olga"],
        input=lines,
        text=True,
        capture_output=True,
        env=cli_env(env),
        timeout=120,
    )
    assert done.returncode == 1
    assert "record 2: declaration.candidates.1.votes" in done.stderr
    assert "record 3: payload" in done.stderr
    assert "2 sent and acknowledged, 2 refused" in done.stdout
    records = read_topic(settings, settings.topic_declarations, 2)
    assert [(r.key, json.loads(r.value).get("ons_id")) for r in records] == [
        (election.encode(), "E14000001"),
        (election.encode(), "E14000003"),
    ]
    assert {(parse_event(r.value).entered_by, parse_event(r.value).source) for r in records} == {("olga", "cli")}
    trail = read_audit(redis_client(settings), election)
    assert [(e["record"], e["operator"], e["source"], e["action"], e["outcome"]) for e in trail] == [
        ("1", "olga", "cli", "declaration", "accepted"),
        ("2", "olga", "cli", "declaration", "refused"),
        ("3", "olga", "cli", "record", "refused"),
        ("4", "olga", "cli", "recount", "accepted"),
    ]
    assert [e["offset"] for e in trail] == [str(records[0].offset), "", "", str(records[1].offset)]
    assert trail[1]["reason"].startswith("declaration.candidates.1.votes: ")
