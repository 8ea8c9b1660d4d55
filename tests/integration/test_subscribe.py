"""`tallyroom subscribe` on the real pipeline: consumer groups, kind filters, crash and resume.

The 2024 night is replayed through the real worker and sink (the ``pipeline`` fixture) into an
election id of this module alone; the subscribers run as real `python -m tallyroom` processes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.lag import wait_until_caught_up
from tests.integration.conftest import cli_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NIGHT = ROOT / "data" / "ge2024"
ALERT_SCHEMA = json.loads((ROOT / "schemas" / "json" / "alert.schema.json").read_text())
INDEPENDENT_GAINS = [
    "Birmingham Perry Barr",
    "Blackburn",
    "Dewsbury and Batley",
    "Islington North",
    "Leicester South",
    "North Down",
]


def tallyroom(pipeline, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # A wide terminal, so that Rich does not wrap the names `history` prints.
    return subprocess.run(
        [sys.executable, "-m", "tallyroom", *args],
        text=True,
        capture_output=True,
        env={**cli_env(pipeline.env), "COLUMNS": "200"},
        timeout=timeout,
    )


def subscribe(pipeline, election: str, *args: str) -> subprocess.CompletedProcess:
    return tallyroom(pipeline, "subscribe", "--election", election, *args, timeout=60)


def lines(done: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def night(pipeline):
    """The 2024 night in a fresh election id; returns (pipeline, election, alert ids in stream order)."""
    election = f"subscribe-{uuid.uuid4().hex[:8]}"
    done = tallyroom(
        pipeline,
        "replay",
        "--night",
        str(NIGHT),
        "--election",
        election,
        "--max",
        "--wait",
        "--timeout",
        "240",
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    wait_until_caught_up(pipeline.settings)
    entries = pipeline.redis.xrange(ElectionKeys(election).alerts)
    assert len(entries) > 100  # the night raises hundreds of alerts; the tests need more than one batch
    return pipeline, election, [fields["id"] for _, fields in entries]


def group_info(pipeline, election: str, group: str) -> dict:
    groups = pipeline.redis.xinfo_groups(ElectionKeys(election).alerts)
    return next(g for g in groups if g["name"] == group)


def pending_ids(pipeline, election: str, group: str, consumer: str) -> list[str]:
    stream = ElectionKeys(election).alerts
    rows = pipeline.redis.xpending_range(stream, group, min="-", max="+", count=10_000, consumername=consumer)
    ids = [row["message_id"] for row in rows]
    return [fields["id"] for _, fields in (pipeline.redis.xrange(stream, i, i)[0] for i in ids)]


def test_subscriber_prints_exactly_the_independent_gains(night):
    pipeline, election, _ = night
    done = subscribe(
        pipeline, election, "--group", "g1", "--kinds", "independent_gain", "--count", "6", "--consumer", "c1"
    )
    assert done.returncode == 0, done.stderr
    alerts = lines(done)
    assert sorted(a["constituency"] for a in alerts) == INDEPENDENT_GAINS
    assert {a["kind"] for a in alerts} == {"independent_gain"}
    for alert in alerts:
        jsonschema.validate(alert, ALERT_SCHEMA)
    # Printed ones and filtered-out ones alike were acknowledged.
    assert group_info(pipeline, election, "g1")["pending"] == 0


def test_a_new_group_starts_at_the_first_alert_and_groups_are_independent(night):
    pipeline, election, ids = night
    first = subscribe(pipeline, election, "--group", "g-all", "--count", "3", "--consumer", "a")
    other = subscribe(pipeline, election, "--group", "g-other", "--count", "2", "--consumer", "a")
    again = subscribe(pipeline, election, "--group", "g-all", "--count", "2", "--consumer", "a")
    assert [a["id"] for a in lines(first)] == ids[:3]
    assert [a["id"] for a in lines(other)] == ids[:2]
    assert [a["id"] for a in lines(again)] == ids[3:5]  # the group remembers where it was


def test_a_subscriber_killed_before_acking_gets_its_unacknowledged_alerts_on_restart(night):
    pipeline, election, ids = night
    crashed = subscribe(pipeline, election, "--group", "g-crash", "--consumer", "c1", "--crash-after", "10")
    assert crashed.returncode == 9, crashed.stderr
    before = [a["id"] for a in lines(crashed)]
    assert before == ids[:10]
    # The 10th was written but never acknowledged; the rest of its batch was read and never handled.
    pending = pending_ids(pipeline, election, "g-crash", "c1")
    assert pending[0] == ids[9] and len(pending) > 1

    rest = len(ids) - 9
    resumed = subscribe(pipeline, election, "--group", "g-crash", "--consumer", "c1", "--count", str(rest))
    assert resumed.returncode == 0, resumed.stderr
    after = [a["id"] for a in lines(resumed)]
    assert after[: len(pending)] == pending  # its own pending entries first
    assert before[:9] + after == ids  # none lost; only the written-not-acked one came twice
    assert group_info(pipeline, election, "g-crash")["pending"] == 0


def test_alerts_a_dead_consumer_left_are_claimed_by_another(night):
    pipeline, election, ids = night
    crashed = subscribe(pipeline, election, "--group", "g-claim", "--consumer", "gone", "--crash-after", "5")
    assert crashed.returncode == 9
    assert len(pending_ids(pipeline, election, "g-claim", "gone")) > 0
    taken = subscribe(
        pipeline,
        election,
        "--group",
        "g-claim",
        "--consumer",
        "heir",
        "--claim-idle",
        "0",
        "--count",
        str(len(ids) - 4),
    )
    assert taken.returncode == 0, taken.stderr
    assert [a["id"] for a in lines(crashed)][:4] + [a["id"] for a in lines(taken)] == ids
    assert pending_ids(pipeline, election, "g-claim", "gone") == []
    assert group_info(pipeline, election, "g-claim")["pending"] == 0


def test_sigterm_stops_a_subscriber_cleanly_with_everything_printed_acknowledged(night, tmp_path):
    pipeline, election, _ = night
    # Output to a file: a pipe nobody reads would fill up and block the subscriber.
    out_path = tmp_path / "out.jsonl"
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tallyroom",
                "subscribe",
                "--election",
                election,
                "--group",
                "g-term",
                "--consumer",
                "t",
                "--kinds",
                "gain",
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(pipeline.env),
        )
    try:
        deadline = time.monotonic() + 60
        # Stopped once it has read the whole stream and acknowledged all it read.
        while group_info_or_none(pipeline, election, "g-term") != {"lag": 0, "pending": 0}:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the subscriber did not reach the end of the stream"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, errors = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, errors
    gains = [json.loads(line) for line in out_path.read_text().splitlines()]
    expected = [
        a
        for a in (json.loads(f["json"]) for _, f in pipeline.redis.xrange(ElectionKeys(election).alerts))
        if a["kind"] == "gain"
    ]
    assert gains == expected
    assert group_info(pipeline, election, "g-term")["pending"] == 0


def group_info_or_none(pipeline, election: str, group: str) -> dict | None:
    groups = pipeline.redis.xinfo_groups(ElectionKeys(election).alerts)
    return next(({"lag": g["lag"], "pending": g["pending"]} for g in groups if g["name"] == group), None)


def test_history_lists_the_night_in_order(night):
    pipeline, election, ids = night
    done = tallyroom(pipeline, "history", "--election", election, "--json")
    assert done.returncode == 0, done.stderr
    assert [a["id"] for a in lines(done)] == ids
    only = tallyroom(pipeline, "history", "--election", election, "--kind", "independent_gain")
    assert only.returncode == 0, only.stderr
    assert "6 alerts" in only.stdout and "Islington North" in only.stdout
