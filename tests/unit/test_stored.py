"""Records read back from storage: read across releases of the same schema major version."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tallyroom.schemas import Alert, AlertKind, Candidate, ResultUpdate, SeatResult
from tallyroom.schemas.common import read_stored
from tallyroom.streams import rules
from tallyroom.streams.rules import seat_change
from tallyroom.streams.tally import Tally, seat_result
from tests.factories import cand, decl


def stored_seat() -> dict:
    seat = seat_result(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)), "Con")
    return json.loads(seat.model_dump_json())


def test_a_label_over_the_entry_limit_is_refused_on_entry_and_read_when_stored():
    long_party = "P" * 250
    with pytest.raises(ValidationError, match="at most"):
        Candidate(name="A", party=long_party, votes=1)
    value = stored_seat()
    value["candidates"][0]["party"] = value["winner"]["party"] = long_party
    assert read_stored(SeatResult, json.dumps(value)).winner.party == long_party


def test_fields_a_newer_release_added_are_dropped_at_any_depth():
    value = stored_seat()
    value["recount_count"] = 2
    value["candidates"][1]["ballot_position"] = 3
    value["winner"]["ballot_position"] = 1
    with pytest.raises(ValidationError):
        SeatResult.model_validate_json(json.dumps(value))  # what arrives stays strict
    seat = read_stored(SeatResult, json.dumps(value).encode())
    assert seat.winner.votes == 5000 and seat.candidates[1].name == "B"


def test_anything_else_wrong_still_raises():
    value = stored_seat()
    value["new_field"] = 1
    value["revision"] = "two"
    with pytest.raises(ValidationError, match="revision"):
        read_stored(SeatResult, json.dumps(value))


def test_a_result_stored_by_an_older_release_gets_its_shares_worked_out():
    value = stored_seat()
    for candidate in [*value["candidates"], value["winner"], value["runner_up"]]:
        candidate.pop("share")
        candidate.pop("share_change", None)
    for name in ("majority_share", "turnout", "turnout_change", "swing", "schema_version"):
        value.pop(name, None)
    value["electorate"] = 10_000
    with pytest.raises(ValidationError):
        SeatResult.model_validate_json(json.dumps(value))
    seat = read_stored(SeatResult, json.dumps(value))
    assert seat.winner.share == 0.625 and seat.candidates[1].share == 0.375
    assert seat.majority_share == 0.25 and seat.turnout == 0.8


def stored_alert() -> dict:
    change = seat_change(
        Tally("test", 3),
        None,
        seat_result(decl("E14000001", cand("A", "Lab", 50), cand("B", "Con", 30)), "Con"),
        frozenset(),
    )
    alert = next(a for a in rules.evaluate(change, rules.RuleConfig()) if a.kind == AlertKind.GAIN)
    return json.loads(alert.model_dump_json())


def test_an_alert_stored_by_the_first_release_keeps_the_facts_it_had():
    value = stored_alert()
    # The first release's seat facts: no votes, shares, turnout or swing yet.
    first = ("winner", "winner_party", "held_by", "majority", "valid_votes", "runner_up", "runner_up_party")
    value["facts"] = {name: value["facts"][name] for name in first}
    value.pop("provenance"), value.pop("schema_version")
    with pytest.raises(ValidationError):
        Alert.model_validate_json(json.dumps(value))  # what arrives stays strict
    alert = read_stored(Alert, json.dumps(value))
    assert alert.kind == AlertKind.GAIN and alert.facts.get("winner_party") == "Lab"
    assert alert.facts.get("winner_share") is None and json.loads(alert.model_dump_json())["facts"] == value["facts"]
    update = read_stored(ResultUpdate, json.dumps({"election": "test", "alerts": [value]}))
    assert update.alerts[0].facts["majority"] == 20


def test_an_alert_a_newer_release_added_to_is_read():
    value = stored_alert()
    value["importance"] = 3  # a field a newer release added to every alert
    value["facts"]["winner_age"] = 40  # and a fact
    alert = read_stored(Alert, json.dumps(value))
    assert alert.headline == value["headline"] and alert.facts.get("winner_votes") == 50
    update = read_stored(ResultUpdate, json.dumps({"election": "test", "alerts": [value], "mood": "calm"}))
    assert update.alerts[0].id == value["id"]
    value["facts"]["winner_votes"] = -5
    value["kind"] = "no_such_kind"
    with pytest.raises(ValidationError):
        read_stored(Alert, json.dumps(value))
