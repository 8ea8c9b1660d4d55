"""Acceptance on the real stack: Kafka broker + Redis + a real Faust worker process + the sink.

The 2024 night is replayed with `tallyroom replay --max --wait`, then Redis is read.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys
from tallyroom.consumers.reader import read_alerts, read_state, wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tests.integration.conftest import cli_env

pytestmark = pytest.mark.e2e
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"


def tallyroom(pipeline, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tallyroom", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=cli_env(pipeline.env),
        timeout=300,
    )


def replay(pipeline, election: str, night: Path = NIGHT, seats: int = 650) -> subprocess.CompletedProcess:
    done = tallyroom(
        pipeline, "replay", "--night", str(night), "--election", election, "--max", "--wait", "--timeout", "240"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{seats + 1} of {seats + 1} events acknowledged" in done.stdout
    wait_until_caught_up(pipeline.settings)
    return done


def constituency_rows() -> list[dict]:
    with (NIGHT / "constituencies.csv").open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def candidate_votes_by_party() -> Counter:
    votes: Counter = Counter()
    with (NIGHT / "candidates.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            votes[row["Party abbreviation"]] += int(row["Votes"])
    return votes


@pytest.fixture(scope="module")
def night_2024(pipeline):
    replay(pipeline, "ge2024")
    return pipeline


def test_tallies_are_exact(night_2024):
    state = read_state(night_2024.redis, "ge2024")
    assert state.declared == state.total == 650
    assert state.seats == {
        "Lab": 411,
        "Con": 121,
        "LD": 72,
        "SNP": 9,
        "SF": 7,
        "Ind": 6,
        "RUK": 5,
        "DUP": 5,
        "Green": 4,
        "PC": 4,
        "SDLP": 2,
        "APNI": 1,
        "TUV": 1,
        "UUP": 1,
        "Spk": 1,
    }
    assert state.seats == dict(Counter(row["First party"] for row in constituency_rows()))
    assert state.votes == dict(candidate_votes_by_party())
    assert state.tally.majority_line == 326


def test_gain_alert_for_exactly_the_seats_the_result_calls_gains(night_2024):
    alerts = read_alerts(night_2024.redis, "ge2024", {"gain"})
    expected = {row["ONS ID"] for row in constituency_rows() if " gain from " in row["Result"]}
    assert {a.ons_id for a in alerts} == expected
    assert len(alerts) == len(expected)


def test_independent_gains(night_2024):
    alerts = read_alerts(night_2024.redis, "ge2024", {"independent_gain"})
    assert sorted(a.constituency for a in alerts) == [
        "Birmingham Perry Barr",
        "Blackburn",
        "Dewsbury and Batley",
        "Islington North",
        "Leicester South",
        "North Down",
    ]


def test_majority_reached_once_for_labour(night_2024):
    alerts = read_alerts(night_2024.redis, "ge2024", {"majority_reached"})
    assert [(a.facts["party"], a.facts["seats"]) for a in alerts] == [("Lab", 326)]


def test_incumbent_defeated_and_near_upset(night_2024):
    defeated = read_alerts(night_2024.redis, "ge2024", {"incumbent_defeated"})
    assert ("Leicester South", "Jonathan Ashworth") in {(a.constituency, a.facts["defeated"]) for a in defeated}
    near = {a.constituency: a for a in read_alerts(night_2024.redis, "ge2024", {"near_upset"})}
    assert near["Ilford North"].facts["winner"] == "Wes Streeting"
    assert near["Ilford North"].facts["gap"] == 528
    assert near["Ilford North"].facts["challenger_party"] == "Ind"


def test_each_alert_id_once_and_stream_fields(night_2024):
    entries = night_2024.redis.xrange(ElectionKeys("ge2024").alerts)
    ids = [fields["id"] for _, fields in entries]
    assert len(ids) == len(set(ids)) > 300
    assert night_2024.redis.scard(ElectionKeys("ge2024").alert_ids) == len(ids)
    _, first = entries[0]
    assert set(first) == {"id", "kind", "ons_id", "constituency", "headline", "json"}
    assert json.loads(first["json"])["id"] == first["id"]


def test_seat_key_holds_the_latest_result(night_2024):
    ons_id = next(r["ONS ID"] for r in constituency_rows() if r["Constituency name"] == "Leicester South")
    seat = json.loads(night_2024.redis.get(ElectionKeys("ge2024").seat(ons_id)))
    assert seat["winner"]["name"] == "Shockat Adam" and seat["majority"] == 979 and seat["held_by"] == "Lab"


def test_rerunning_the_replay_adds_no_alerts(night_2024):
    keys = ElectionKeys("ge2024")
    before = night_2024.redis.xlen(keys.alerts)
    state_before = read_state(night_2024.redis, "ge2024")
    replay(night_2024, "ge2024")
    assert night_2024.redis.xlen(keys.alerts) == before
    assert read_state(night_2024.redis, "ge2024").seats == state_before.seats


def test_correction_replaces_the_seat_and_raises_one_alert(pipeline):
    election = "ge2024-correction"
    replay(pipeline, election)
    night = load_night(NIGHT, election)
    original = next(d for d in night.declarations if d.constituency == "Ilford North")
    # The independent overtakes Labour on a corrected count.
    candidates = [
        c.model_copy(update={"votes": c.votes + 1000}) if c.name == "Leanne Mohamad" else c for c in original.candidates
    ]
    corrected = original.model_copy(update={"revision": 2, "candidates": candidates, "valid_votes": None})
    before = read_state(pipeline.redis, election)
    line = corrected.model_dump_json()
    done = tallyroom(pipeline, "declare", stdin=line + "\n")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for_declared(pipeline.redis, election, 650, 60, version=before.tally.version + 1)
    wait_until_caught_up(pipeline.settings)

    after = read_state(pipeline.redis, election)
    assert after.seats["Lab"] == before.seats["Lab"] - 1
    assert after.seats["Ind"] == before.seats["Ind"] + 1
    assert after.votes["Ind"] == before.votes["Ind"] + 1000
    assert after.votes["Lab"] == before.votes["Lab"]
    corrections = read_alerts(pipeline.redis, election, {"correction"})
    assert [(a.constituency, a.facts["revision"]) for a in corrections] == [("Ilford North", 2)]
    gains = {a.constituency for a in read_alerts(pipeline.redis, election, {"independent_gain"})}
    assert "Ilford North" in gains

    # The same revision again changes nothing.
    alerts_before = pipeline.redis.xlen(ElectionKeys(election).alerts)
    assert tallyroom(pipeline, "declare", stdin=line + "\n").returncode == 0
    wait_until_caught_up(pipeline.settings)
    assert pipeline.redis.xlen(ElectionKeys(election).alerts) == alerts_before
    assert read_state(pipeline.redis, election).votes == after.votes


def test_bad_events_go_to_the_dead_letter_stream_and_the_worker_keeps_going(night_2024):
    sender = DeclarationSender(night_2024.settings)
    bad = [
        b"\xff\xfe not json",
        b'{"kind": "declaration", "election": "ge2024"}',
        json.dumps(
            {
                "kind": "recount",
                "election": "ge2024",
                "ons_id": "E99999999",
                "announced_at": "2024-07-05T04:00:00+01:00",
            }
        ).encode(),
    ]
    for value in bad:
        sender.send_raw(b"bad", value)
    ons_id = next(r["ONS ID"] for r in constituency_rows() if r["Constituency name"] == "Leicester South")
    recount = {
        "kind": "recount",
        "election": "ge2024",
        "ons_id": ons_id,
        "announced_at": "2024-07-05T03:00:00+01:00",
        "reason": "test",
    }
    sender.send_raw(ons_id.encode(), json.dumps(recount).encode())
    acked, failures = sender.flush()
    sender.close()
    assert acked == 4 and not failures
    wait_until_caught_up(night_2024.settings)
    letters = [json.loads(f["json"]) for _, f in night_2024.redis.xrange(DEAD_LETTERS)]
    reasons = [letter["reason"] for letter in letters[-3:]]
    assert reasons[0].startswith("invalid event: payload") or "json" in reasons[0].lower()
    assert "ons_id" in reasons[1] or "Field required" in reasons[1]
    assert "E99999999 is not one of the seats" in reasons[2]
    assert [a.constituency for a in read_alerts(night_2024.redis, "ge2024", {"recount"})] == ["Leicester South"]


def test_worker_killed_mid_night_recovers_its_tables_and_stays_exact(pipeline):
    """SIGKILL after 300 declarations, restart, send the rest: tallies and alerts as if nothing happened."""
    from dataclasses import replace

    from tallyroom.producers.replay import replay_night

    election = "ge2024-restart"
    night = load_night(NIGHT, election)
    first, rest = night.declarations[:300], night.declarations[300:]
    sender = DeclarationSender(pipeline.settings)
    replay_night(replace(night, declarations=first), sender, None)
    wait_for_declared(pipeline.redis, election, 300, 120)
    pipeline.worker.kill()
    pipeline.restart_worker()
    for declaration in rest:
        sender.send(declaration)
    for declaration in first[:50]:  # re-delivered events must change nothing
        sender.send(declaration)
    acked, failures = sender.flush()
    sender.close()
    assert acked == len(rest) + 50 and not failures
    wait_for_declared(pipeline.redis, election, 650, 240)
    wait_until_caught_up(pipeline.settings)

    reference = read_state(pipeline.redis, "ge2024") if pipeline.redis.exists(ElectionKeys("ge2024").tally) else None
    state = read_state(pipeline.redis, election)
    assert state.seats == dict(Counter(row["First party"] for row in constituency_rows()))
    assert state.votes == dict(candidate_votes_by_party())
    expected_gains = {row["ONS ID"] for row in constituency_rows() if " gain from " in row["Result"]}
    assert {a.ons_id for a in read_alerts(pipeline.redis, election, {"gain"})} == expected_gains
    assert len(read_alerts(pipeline.redis, election, {"gain"})) == len(expected_gains)
    assert len(read_alerts(pipeline.redis, election, {"majority_reached"})) == 1
    if reference is not None:
        assert state.tally.version == reference.tally.version


def candidate_rows() -> list[dict]:
    with (NIGHT / "candidates.csv").open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_every_share_and_share_change_equals_the_librarys(night_2024):
    """Share and Change as published, for all 4,515 candidates, from the baseline derived from them."""
    keys = ElectionKeys("ge2024")
    published: dict[tuple[str, str, str], dict] = {}
    for row in candidate_rows():  # Mid Buckinghamshire has two Greg Smiths: told apart by party
        name = f"{row['Candidate first name']} {row['Candidate surname']}".strip()
        published[(row["ONS ID"], name, row["Party abbreviation"])] = row
    seats = {r["ONS ID"]: json.loads(night_2024.redis.get(keys.seat(r["ONS ID"]))) for r in constituency_rows()}
    checked = 0
    for ons_id, seat in seats.items():
        for candidate in seat["candidates"]:
            row = published[(ons_id, candidate["name"], candidate["party"])]
            assert candidate["share"] == pytest.approx(float(row["Share"]), abs=1e-4), (ons_id, candidate["name"])
            if row["Change"] == "":
                assert candidate["share_change"] is None, (ons_id, candidate["name"])
            else:
                assert candidate["share_change"] == pytest.approx(float(row["Change"]), abs=1e-4), (
                    ons_id,
                    candidate["name"],
                )
            checked += 1
        assert seat["turnout"] == pytest.approx(seat["valid_votes"] / seat["electorate"], abs=1e-6)
    assert checked == len(published) == 4515
    tally = read_state(night_2024.redis, "ge2024").tally
    assert tally.compared == 650
    assert tally.parties["Ind"].share_change is None
    assert (tally.swing.from_party, tally.swing.to_party) == ("Con", "Lab")


NOTABLE = (
    "Islington North",
    "Leicester South",
    "Blackburn",
    "Dewsbury and Batley",
    "Ilford North",
    "Birmingham Yardley",
)


def test_alerts_for_the_notable_seats_carry_the_published_votes(night_2024):
    ranked: dict[str, list[tuple[int, str]]] = {}
    for row in candidate_rows():
        name = f"{row['Candidate first name']} {row['Candidate surname']}".strip()
        ranked.setdefault(row["Constituency name"], []).append((int(row["Votes"]), name))
    # Every alert raised by a declaration (a recount notice may come before any result).
    alerts = [a for a in read_alerts(night_2024.redis, "ge2024") if a.constituency in NOTABLE and a.declaration]
    assert {a.constituency for a in alerts} == set(NOTABLE)
    for alert in alerts:
        (winner_votes, winner), (runner_up_votes, runner_up) = sorted(ranked[alert.constituency], reverse=True)[:2]
        facts = alert.facts
        assert (facts["winner"], facts["winner_votes"]) == (winner, winner_votes), alert.headline
        assert (facts["runner_up"], facts["runner_up_votes"]) == (runner_up, runner_up_votes), alert.headline
        total = sum(votes for votes, _ in ranked[alert.constituency])
        assert facts["winner_share"] == pytest.approx(winner_votes / total, abs=1e-6)
        assert facts["runner_up_share"] == pytest.approx(runner_up_votes / total, abs=1e-6)
        assert facts["turnout"] is not None
    corbyn = next(a for a in alerts if a.constituency == "Islington North" and a.kind == "gain")
    assert corbyn.headline == "Ind GAIN Islington North from Lab: Jeremy Corbyn 24,120 (49.2%) to 16,873"
    streeting = next(a for a in alerts if a.constituency == "Ilford North" and a.kind == "near_upset")
    assert "15,647 (33.4%) to 15,119 (32.2%)" in streeting.headline


def test_the_worker_makes_no_topic_beyond_its_changelogs(night_2024):
    """Faust's leader topic is off (streams.app.create_app): the worker's only topics of its own
    are the changelogs ``ensure_topics`` made, led, before Faust subscribed to them."""
    from kafka import KafkaAdminClient

    from tallyroom.streams.app import changelog_topics

    admin = KafkaAdminClient(**night_2024.settings.kafka_python_config())
    try:
        own = {topic for topic in admin.list_topics() if topic.startswith(f"{night_2024.settings.worker_id}-")}
    finally:
        admin.close()
    assert own == set(changelog_topics(night_2024.settings))
