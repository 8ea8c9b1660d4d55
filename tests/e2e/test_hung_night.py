"""A night where no party reaches the majority line, on the real stack."""

from __future__ import annotations

import csv

import pytest

from tallyroom.consumers.reader import read_alerts
from tests.e2e.test_night import replay

pytestmark = pytest.mark.e2e


def test_a_hung_night_raises_hung_parliament_once(pipeline, tmp_path):
    """A 2017-style night in the Library layout, small: no party reaches the line of 3 of 5."""
    night = tmp_path / "hung-night"
    night.mkdir()
    winners = ["Con", "Lab", "Con", "Lab", "LD"]
    seats = [f"E14{n:06d}" for n in range(1, 6)]
    with (night / "constituencies.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["ons_id", "constituency_name", "declaration_time", "result", "electorate"])
        for n, (ons_id, party) in enumerate(zip(seats, winners, strict=True)):
            out.writerow([ons_id, f"Seat {n}", f"09/06/2017 0{n + 1}:00", f"{party} hold", 1000])
    with (night / "candidates.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["ons_id", "party_abbreviation", "firstname", "surname", "votes"])
        for ons_id, party in zip(seats, winners, strict=True):
            out.writerow([ons_id, party, "Win", ons_id, 500])
            out.writerow([ons_id, "Green", "Run", ons_id, 100])
    replay(pipeline, "hung-night", night, seats=5)
    hung = read_alerts(pipeline.redis, "hung-night", {"hung_parliament"})
    assert [(a.constituency, a.facts["remaining"], a.facts["seats"]) for a in hung] == [
        ("Seat 4", 0, {"Con": 2, "Lab": 2, "LD": 1})
    ]
    assert read_alerts(pipeline.redis, "hung-night", {"majority_reached"}) == []
    replay(pipeline, "hung-night", night, seats=5)  # a replay again raises nothing new
    assert len(read_alerts(pipeline.redis, "hung-night", {"hung_parliament"})) == 1
