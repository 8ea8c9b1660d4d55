import json

import pytest
from pydantic import ValidationError

from tallyroom.schemas import Alert, AlertKind, Declaration, parse_event
from tallyroom.schemas.export import json_schemas
from tests.factories import T0, cand, decl


def payload(**overrides):
    base = {
        "kind": "declaration",
        "election": "ge2024",
        "ons_id": "E14001063",
        "revision": 1,
        "constituency": "Leicester South",
        "declared_at": "2024-07-05T03:31:00+01:00",
        "valid_votes": 300,
        "candidates": [
            {"name": "A", "party": "Lab", "votes": 100},
            {"name": "B", "party": "Ind", "votes": 200},
        ],
    }
    return base | overrides


def error_fields(raw) -> set[str]:
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(raw))
    return {".".join(str(p) for p in e["loc"]) + " " + e["msg"] for e in info.value.errors()}


def test_valid_declaration_parses():
    event = parse_event(json.dumps(payload()))
    assert isinstance(event, Declaration)
    assert event.candidate_votes == 300
    assert event.declared_at.utcoffset().total_seconds() == 3600


@pytest.mark.parametrize("votes", [-1, 1.5, "12", True])
def test_bad_votes_are_refused_naming_the_field(votes):
    raw = payload(valid_votes=None)
    raw["candidates"][0]["votes"] = votes
    fields = error_fields(raw)
    assert any(f.startswith("declaration.candidates.0.votes") for f in fields), fields


def test_no_candidates_refused():
    assert any("candidates" in f for f in error_fields(payload(candidates=[], valid_votes=None)))


def test_candidate_twice_refused():
    raw = payload(valid_votes=None)
    raw["candidates"].append({"name": "a", "party": "Lab", "votes": 5})
    assert any("appears twice" in f for f in error_fields(raw))


def test_two_independents_are_not_duplicates():
    raw = payload(valid_votes=None)
    raw["candidates"].append({"name": "C", "party": "Ind", "votes": 5})
    assert len(parse_event(json.dumps(raw)).candidates) == 3


def test_valid_votes_must_match_candidates():
    fields = error_fields(payload(valid_votes=301))
    assert any("valid_votes 301 differs" in f for f in fields), fields


def test_naive_timestamp_refused():
    fields = error_fields(payload(declared_at="2024-07-05T03:31:00"))
    assert any(f.startswith("declaration.declared_at") and "timezone" in f for f in fields), fields


@pytest.mark.parametrize("ons_id", ["X123", "e14001063", "E1400106", ""])
def test_bad_ons_id_refused(ons_id):
    assert any(f.startswith("declaration.ons_id") for f in error_fields(payload(ons_id=ons_id)))


def test_unknown_kind_and_bad_json_refused():
    assert error_fields({"kind": "nonsense"})
    with pytest.raises(ValidationError):
        parse_event(b"\xff\xfe{not json")


def test_declaration_round_trips_through_json():
    original = decl("E14000001", cand("A", "Lab", 10, sitting=True), cand("B", "Con", 7), revision=3)
    again = parse_event(original.model_dump_json())
    assert again == original
    assert again.declared_at == T0


def test_alert_round_trips_through_json():
    alert = Alert(id="x", kind=AlertKind.GAIN, election="e", headline="h", facts={"a": 1}, occurred_at=T0)
    assert Alert.model_validate_json(alert.model_dump_json()) == alert


def test_exported_json_schema_validates_a_real_declaration():
    jsonschema = pytest.importorskip("jsonschema")
    schemas = json_schemas()
    assert {"declaration", "alert", "tally", "recount", "night"} <= set(schemas)
    jsonschema.validate(json.loads(json.dumps(payload())), schemas["declaration"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload(ons_id="nope"), schemas["declaration"])


def test_committed_json_schemas_are_current():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "schemas" / "json"
    for name, schema in json_schemas().items():
        committed = json.loads((folder / f"{name}.schema.json").read_text())
        assert committed == json.loads(json.dumps(schema)), f"run `tallyroom schemas export`: {name} is stale"
