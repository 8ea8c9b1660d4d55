"""Records read back from storage: read across releases of the same schema major version."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tallyroom.schemas import Candidate, SeatResult
from tallyroom.schemas.common import read_stored
from tallyroom.streams.tally import seat_result
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
