"""Acceptance on the real stack for the 2019 night, the Library's own files as published.

Expectations come from the official result and from the CSV files read here with the csv module,
independently of the loader.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from tallyroom.consumers.reader import read_alerts, read_state
from tests.e2e.test_night import replay

pytestmark = pytest.mark.e2e
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2019"
ELECTION = "ge2019"
OFFICIAL_SEATS = {
    "Con": 365,
    "Lab": 202,
    "SNP": 48,
    "LD": 11,
    "DUP": 8,
    "SF": 7,
    "PC": 4,
    "SDLP": 2,
    "Green": 1,
    "APNI": 1,
    "Spk": 1,
}
# The Library's 2019 labels that name a party another way in the other file (SOURCE.md).
SAME_PARTY = {"Lab Coop": "Lab", "Alliance": "APNI", "Brexit": "BRX"}


def rows(name: str) -> list[dict]:
    with (NIGHT / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def night_2019(pipeline):
    done = replay(pipeline, ELECTION, NIGHT)
    return pipeline, done


def test_official_seats_exactly(night_2019):
    pipeline, _ = night_2019
    state = read_state(pipeline.redis, ELECTION)
    assert state.declared == state.total == 650
    assert state.seats == OFFICIAL_SEATS
    assert state.tally.majority_line == 326


def test_votes_per_party_equal_the_candidate_file(night_2019):
    pipeline, _ = night_2019
    votes: Counter = Counter()
    for row in rows("candidates.csv"):
        party = row["party_abbreviation"].strip()  # "Cumbria First " has a trailing space
        votes[SAME_PARTY.get(party, party)] += int(row["votes"])
    assert read_state(pipeline.redis, ELECTION).votes == dict(votes)


def test_every_gain_and_only_gains(night_2019):
    pipeline, _ = night_2019
    gains = read_alerts(pipeline.redis, ELECTION, {"gain"})
    expected = {r["ONS ID"]: r["Result"] for r in rows("constituencies.csv") if " gain from " in r["Result"]}
    assert len(expected) == 81
    assert sorted(a.ons_id for a in gains) == sorted(expected)
    chorley = next(a for a in gains if a.constituency == "Chorley")
    assert (chorley.facts["winner_party"], chorley.facts["held_by"]) == ("Spk", "Lab")


def test_majority_reached_once_for_the_conservatives(night_2019):
    pipeline, _ = night_2019
    alerts = read_alerts(pipeline.redis, ELECTION, {"majority_reached"})
    assert [(a.facts["party"], a.facts["seats"]) for a in alerts] == [("Con", 326)]
    assert read_alerts(pipeline.redis, ELECTION, {"hung_parliament"}) == []


def test_known_flaws_are_flagged_not_fatal(night_2019):
    pipeline, done = night_2019
    # Meon Valley's published valid votes (54,829) are not its candidates' sum (55,569).
    assert "Meon Valley" in done.stderr and "54829" in done.stderr
    flaws = read_alerts(pipeline.redis, ELECTION, {"data_flaw"})
    assert [a.constituency for a in flaws] == ["Meon Valley"]
    assert "54829" in flaws[0].facts["flaws"][0] and "55569" in flaws[0].facts["flaws"][0]
    # The long, comma-carrying abbreviation is a party like any other.
    party = "Christian Party, Proclaiming Christ's Lordship"
    assert read_state(pipeline.redis, ELECTION).votes[party] == sum(
        int(r["votes"]) for r in rows("candidates.csv") if r["party_abbreviation"] == party
    )
