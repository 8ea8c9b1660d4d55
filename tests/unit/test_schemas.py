import json

import pytest
from pydantic import ValidationError

from tallyroom.schemas import Alert, AlertKind, Declaration, ResultUpdate, TallySnapshot, parse_event
from tallyroom.schemas.alerts import RecountFacts, SeatFacts
from tallyroom.schemas.export import json_schemas
from tallyroom.streams.rules import seat_alert as make_seat_alert
from tallyroom.streams.rules import seat_facts
from tallyroom.streams.tally import seat_result
from tests.factories import T0, cand, decl


def seat_alert(seat):
    return make_seat_alert(seat, AlertKind.GAIN, "h", SeatFacts(**seat_facts(seat)))


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


def recount_alert(**facts) -> Alert:
    return Alert(id="x", kind=AlertKind.RECOUNT, election="e", headline="h", facts=facts, occurred_at=T0)


def test_alert_round_trips_through_json():
    alert = recount_alert(reason="close")
    assert Alert.model_validate_json(alert.model_dump_json()) == alert
    assert type(alert) is Alert.of_kind[AlertKind.RECOUNT] and isinstance(alert.facts, RecountFacts)


def test_an_alerts_facts_are_its_kinds_and_refused_naming_the_fact():
    with pytest.raises(ValidationError, match="facts.RecountFacts.gap"):
        recount_alert(reason="x", gap=1)
    gain = seat_alert(seat_result(decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 7)), "Con"))
    raw = json.loads(gain.model_dump_json())
    assert raw["facts"]["winner_share"] == round(10 / 17, 6) and raw["facts"]["swing"] is None
    raw["facts"]["winner_share"] = 7
    with pytest.raises(ValidationError, match="facts.SeatFacts.winner_share"):
        Alert.model_validate(raw)
    raw["facts"]["winner_share"], raw["kind"] = 0.5, "majority_reached"  # seat facts are not a majority's
    with pytest.raises(ValidationError, match="facts.MajorityReachedFacts.party"):
        Alert.model_validate(raw)


def test_a_fact_is_read_by_name_from_the_kinds_fields_or_a_stored_alerts_extras():
    from tallyroom.schemas.alerts import StoredFacts

    facts = RecountFacts(reason="close")
    assert facts.get("reason") == facts["reason"] == "close"
    assert facts.get("defeated") is None and facts.get("defeated", "nobody") == "nobody"
    assert facts.get("get") is None  # a method is not a fact
    stored = StoredFacts.model_validate({"reason": "close", "added_later": 3})
    assert stored.get("added_later") == stored["added_later"] == 3 and stored.get("gone", 0) == 0
    with pytest.raises(KeyError):
        facts["defeated"]


def test_an_alert_parsed_in_a_list_is_its_kinds():
    gain = seat_alert(seat_result(decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 7)), "Con"))
    update = ResultUpdate(election="test", alerts=[gain, recount_alert(reason=None)])
    again = ResultUpdate.model_validate_json(update.model_dump_json())
    assert again == update and [type(a.facts) for a in again.alerts] == [SeatFacts, RecountFacts]
    assert again.alerts[0].facts.get("winner_party") == "Lab" and again.alerts[0].facts["majority"] == 3


TALLY = {
    "election": "ge2024",
    "version": 1,
    "declared": 1,
    "total": 650,
    "majority_line": 326,
    "valid_votes": 100,
    "parties": {
        "Lab": {"party": "Lab", "seats": 1, "votes": 100, "share": 1.0, "gains": 0, "losses": 0, "held_before": 1}
    },
}


@pytest.mark.parametrize(
    "path, value",
    [
        (("parties", "Lab", "share"), 7),
        (("parties", "Lab", "share_change"), -1.5),
        (("parties", "Lab", "seats"), -1),
        (("declared",), -1),
        (("valid_votes",), -3),
        (("swing",), {"from_party": "Con", "to_party": "Lab", "swing": 1.2}),
    ],
)
def test_a_tally_out_of_bounds_is_refused_by_pydantic_and_the_json_schema(path, value):
    jsonschema = pytest.importorskip("jsonschema")
    TallySnapshot.model_validate(TALLY)
    jsonschema.validate(TALLY, json_schemas()["tally"])
    bad = json.loads(json.dumps(TALLY))
    target = bad
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(ValidationError, match=path[-1]):
        TallySnapshot.model_validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schemas()["tally"])


def test_a_tally_declaring_more_than_its_total_is_refused():
    with pytest.raises(ValidationError, match="declared 651 is more than the night's total 650"):
        TallySnapshot.model_validate(TALLY | {"declared": 651})


def test_a_seat_result_out_of_bounds_is_refused_by_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    seat = json.loads(
        seat_result(decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 7)), "Con").model_dump_json()
    )
    jsonschema.validate(seat, json_schemas()["seat-result"])
    for field, value in [("majority", -1), ("turnout", 1.2), ("revision", -1), ("schema_version", 2)]:
        with pytest.raises(jsonschema.ValidationError) as refused:
            jsonschema.validate(seat | {field: value}, json_schemas()["seat-result"])
        assert list(refused.value.absolute_path)[:1] == [field]
    seat["candidates"][0]["share"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(seat, json_schemas()["seat-result"])


def test_every_schema_has_an_id_and_the_2020_12_dialect():
    jsonschema = pytest.importorskip("jsonschema")
    schemas = json_schemas()
    assert len({s["$id"] for s in schemas.values()}) == len(schemas)
    for name, schema in schemas.items():
        assert schema["$id"] == f"https://tallyroom.example/schemas/{name}.schema.json"
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        # Every record Tallyroom writes carries schema_version 1.
        if name != "alert":
            assert schema["properties"]["schema_version"]["const"] == 1, name
    for variant in schemas["alert"]["$defs"].values():
        if variant["title"].endswith("Alert"):
            assert variant["properties"]["schema_version"]["const"] == 1


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


def test_sums_of_votes_have_no_upper_bound_a_candidates_votes_do():
    # A candidate's votes stop at a billion (a typo guard); a seat's or a night's sum of them may pass it.
    big = json.loads(json.dumps(TALLY))
    big["valid_votes"] = big["parties"]["Lab"]["votes"] = 3_000_000_000
    assert TallySnapshot.model_validate(big).valid_votes == 3_000_000_000
    with pytest.raises(ValidationError, match="votes"):
        cand("A", "Lab", 3_000_000_000)


def test_json_bytes_are_the_models_own_json():
    from bench.night import NightSpec, SyntheticNight
    from tallyroom.schemas.common import json_bytes
    from tallyroom.streams.count import Count

    synthetic = SyntheticNight(NightSpec("json-bytes", 200, 600))
    count = Count()
    count.open_night(synthetic.opened)
    records: list = [synthetic.opened]
    for declaration in synthetic.declarations():
        outcome = count.declare(declaration)
        records += [outcome.update, outcome.update.seat, outcome.update.tally, *outcome.alerts]
    stored = Alert.model_validate_json(json_bytes(recount_alert(reason="a reason é")))
    # What else the worker and the producers send: the declarations, a night's seats, a dead letter.
    from tallyroom.schemas import DeadLetter, NightSeat

    records += list(synthetic.declarations(0, 20))
    records += [NightSeat(ons_id=s.ons_id, constituency=s.constituency) for s in synthetic.opened.seats[:20]]
    records.append(
        DeadLetter(topic="t", partition=0, offset=1, key="k", raw="{é", reason="why", received_at=T0, errors=[])
    )
    kinds = {a.kind for a in records if isinstance(a, Alert)}
    assert len(kinds) >= 5  # gains, marginals, corrections, ... each kind's own model
    for record in [*records, stored]:
        assert json_bytes(record) == record.model_dump_json().encode()
