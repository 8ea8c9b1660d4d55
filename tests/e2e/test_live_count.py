"""The live count through the real pipeline: operators enter over HTTP, the worker counts,
and every seat result and alert traces back to one Kafka record and one operator."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_alerts, read_state
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
    # Four seats: a majority takes three, so no majority_reached comes into these tests.
    return night({SEAT_A: "Con", SEAT_B: "Lab", "E14000003": "LD", "E14000004": "LD"}, election=election)


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


def rush(election: str, ons_id: str, party: str, minutes: int = 0):
    from datetime import timedelta

    from tallyroom.schemas import Rush
    from tests.factories import T0

    return Rush(election=election, ons_id=ons_id, party=party, announced_at=T0 + timedelta(minutes=minutes))


def withdrawal(election: str, ons_id: str, revision: int, reason: str):
    from tallyroom.schemas import Withdrawal
    from tests.factories import T0

    return Withdrawal(election=election, ons_id=ons_id, revision=revision, reason=reason, withdrawn_at=T0)


def tally_of(pipeline, election) -> tuple[dict, int, dict]:
    state = read_state(pipeline.redis, election)
    seats = {p: t.seats for p, t in state.tally.parties.items() if t.seats}
    votes = {p: t.votes for p, t in state.tally.parties.items() if t.votes}
    return seats, state.declared, votes


def kinds_since(pipeline, election, seen: int) -> list[str]:
    return [a.kind.value for a in read_alerts(pipeline.redis, election)[seen:]]


def test_rush_result_contradiction_withdrawal_and_redeclaration_keep_the_tally_exact(pipeline, entry, operators):
    election = f"live-{uuid.uuid4().hex[:6]}"
    post(entry, operators, "ada", opened(election))

    post(entry, operators, "eve", rush(election, SEAT_A, "Lab"))
    settled(pipeline)
    assert tally_of(pipeline, election) == ({"Lab": 1}, 0, {})  # the seat, not the declaration or votes
    assert kinds_since(pipeline, election, 0) == ["rush"]
    assert read_alerts(pipeline.redis, election)[0].headline == f"Lab GAIN Seat {SEAT_A} from Con, figures to follow"

    post(entry, operators, "eve", decl(SEAT_A, cand("A", "Lab", 5000), cand("B", "Con", 3000), election=election))
    settled(pipeline)
    assert tally_of(pipeline, election) == ({"Lab": 1}, 1, {"Lab": 5000, "Con": 3000})
    assert kinds_since(pipeline, election, 1) == ["gain"]

    post(entry, operators, "eve", rush(election, SEAT_B, "Con"))
    post(entry, operators, "eve", decl(SEAT_B, cand("C", "Lab", 4000), cand("D", "Con", 1000), election=election))
    settled(pipeline)
    assert tally_of(pipeline, election) == ({"Lab": 2}, 2, {"Lab": 9000, "Con": 4000})
    assert kinds_since(pipeline, election, 2) == ["rush", "correction"]  # Lab held what was rushed as Con's
    assert "not Con as rushed" in read_alerts(pipeline.redis, election)[-1].headline

    # an entry operator may not withdraw; an admin may
    response = entry.post(
        "/declarations",
        json=json.loads(withdrawal(election, SEAT_A, 2, "wrong box").model_dump_json()),
        headers={"authorization": f"Bearer {operators[1]['eve']}"},
    )
    assert response.status_code == 403, response.text
    post(entry, operators, "ada", withdrawal(election, SEAT_A, 2, "ballot box from the wrong seat"))
    settled(pipeline)
    assert tally_of(pipeline, election) == ({"Lab": 1}, 1, {"Lab": 4000, "Con": 1000})
    assert kinds_since(pipeline, election, 4) == ["withdrawn"]
    seat = SeatResult.model_validate_json(pipeline.redis.get(ElectionKeys(election).seat(SEAT_A)))
    assert (seat.status, seat.revision, seat.withdrawn_reason) == ("withdrawn", 2, "ballot box from the wrong seat")

    post(
        entry,
        operators,
        "eve",
        decl(SEAT_A, cand("A", "Lab", 5100), cand("B", "Con", 3000), election=election, revision=3),
    )
    settled(pipeline)
    assert tally_of(pipeline, election) == ({"Lab": 2}, 2, {"Lab": 9100, "Con": 4000})
    assert kinds_since(pipeline, election, 5) == ["gain"]

    # every alert traces to an accepted record of the audit trail, and to its operator
    accepted = {
        int(e["offset"]): e["operator"] for e in read_audit(pipeline.redis, election) if e["outcome"] == "accepted"
    }
    alerts = read_alerts(pipeline.redis, election)
    assert len(alerts) == 6
    for alert in alerts:
        assert alert.provenance.source == "http"
        assert accepted[alert.provenance.offset] == alert.provenance.entered_by, alert
    assert [a.provenance.entered_by for a in alerts if a.kind.value == "withdrawn"] == ["ada"]


def test_a_2024_rehearsal_with_rushes_ends_exactly_as_the_night_did(pipeline):
    """replay --rushes: every seat rushed ten minutes ahead, then declared; the end is the same night."""
    import subprocess
    import sys
    from collections import Counter

    from tallyroom.consumers.reader import wait_for_declared
    from tallyroom.settings import REPO_ROOT
    from tests.integration.conftest import cli_env

    election = f"ge2024-rushes-{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "replay", "--night", str(REPO_ROOT / "data" / "ge2024")]
        + ["--election", election, "--max", "--rushes", "10"],
        capture_output=True,
        text=True,
        env=cli_env(pipeline.env),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1300 of 1301 events acknowledged" not in done.stdout and "1301 of 1301" in done.stdout
    wait_for_declared(pipeline.redis, election, 650, 240)
    settled(pipeline)
    seats, declared, _ = tally_of(pipeline, election)
    assert declared == 650
    assert {p: seats.get(p) for p in ("Lab", "Con", "LD")} == {"Lab": 411, "Con": 121, "LD": 72}
    kinds = Counter(a.kind.value for a in read_alerts(pipeline.redis, election))
    assert kinds["rush"] == 650 and kinds["correction"] == 0  # each rush named the real winner
    assert kinds["gain"] > 0 and kinds["majority_reached"] == 1
    sources = {(a.provenance.source, a.provenance.topic) for a in read_alerts(pipeline.redis, election)}
    assert sources == {("replay", pipeline.settings.topic_declarations)}
