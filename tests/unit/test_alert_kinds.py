"""The registry of alert kinds and the party map: complete, and what every view is drawn from."""

import json
from datetime import UTC, datetime
from pathlib import Path

from tallyroom.consumers.web import view
from tallyroom.schemas import Alert, AlertKind, RecountNotice, Rush, Withdrawal
from tallyroom.schemas.alerts import ALERT_KINDS
from tallyroom.schemas.export import with_kinds_table
from tallyroom.schemas.parties import INDEPENDENT, PARTIES, UNKNOWN_COLOUR, party_colour, party_name
from tallyroom.streams.count import Count
from tests.factories import before, cand, decl, night

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_alert_kind_has_an_entry():
    assert set(ALERT_KINDS) == set(AlertKind)
    for kind, info in ALERT_KINDS.items():
        assert info.label and info.description and info.fact_names, kind
        assert info.colour or info.party_fact, f"{kind}: neither a colour nor a party to take one from"
        assert info.party_fact is None or info.party_fact in info.fact_names, kind


def test_the_readme_table_of_kinds_is_the_registry():
    text = README.read_text()
    assert with_kinds_table(text) == text, "run `tallyroom schemas export` to redraw it"


NIGHT_KINDS = [
    AlertKind.GAIN,
    AlertKind.INDEPENDENT_GAIN,
    AlertKind.INCUMBENT_DEFEATED,
    AlertKind.MARGINAL,
    AlertKind.NEAR_UPSET,
    AlertKind.MAJORITY_REACHED,
    AlertKind.CORRECTION,
    AlertKind.RECOUNT,
    AlertKind.DATA_FLAW,
    AlertKind.HUNG_PARLIAMENT,
    AlertKind.BIG_SWING,
    AlertKind.RUSH,
    AlertKind.WITHDRAWN,
]


def alerts_of_a_night():
    count = Count()
    count.open_night(night({"E14000001": "Con", "E14000002": "Lab", "E14000003": "Lab"}))
    outcomes = [
        # gain, sitting MP defeated, marginal
        count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 4900, sitting=True))),
        # hold with an independent close behind (near upset, marginal), and Lab reaches 2 of 3
        count.declare(decl("E14000002", cand("C", "Lab", 5000), cand("D", "Ind", 4500))),
        # independent gain
        count.declare(decl("E14000003", cand("E", "Ind", 6000), cand("F", "Lab", 1000))),
        # correction
        count.declare(decl("E14000001", cand("A", "Lab", 5200), cand("B", "Con", 4900, sitting=True), revision=2)),
        count.recount(RecountNotice(election="test", ons_id="E14000002", announced_at=datetime.now(UTC), reason="x")),
    ]
    flawed = Count()
    flawed.open_night(night({"E14000001": "Con"}))
    declaration = decl("E14000001", cand("G", "Con", 10), cand("H", "Lab", 5))
    outcomes.append(flawed.declare(declaration.model_copy(update={"flaws": ["valid votes 16 differ from 15"]})))
    # A four-seat night shared out two ways: hung once the third seat is in, and a big swing from Con to Lab.
    hung = Count()
    held = {"E14000001": "Con", "E14000002": "Con", "E14000003": "LD", "E14000004": "SNP"}
    hung.open_night(night(held, previous={"E14000001": before(Con=0.6, Lab=0.3)}))
    outcomes += [
        hung.declare(decl("E14000001", cand("A", "Lab", 550), cand("B", "Con", 450))),
        hung.declare(decl("E14000002", cand("C", "Con", 500), cand("D", "Lab", 400))),
        hung.declare(decl("E14000003", cand("E", "LD", 500), cand("F", "Lab", 400))),
        # a rush, whose result names another winner (a correction), then withdrawn
        hung.rush(Rush(election="test", ons_id="E14000004", party="SNP", announced_at=datetime.now(UTC))),
        hung.declare(decl("E14000004", cand("G", "Lab", 500), cand("H", "SNP", 400))),
        hung.withdraw(
            Withdrawal(
                election="test", ons_id="E14000004", revision=2, reason="miscounted", withdrawn_at=datetime.now(UTC)
            )
        ),
    ]
    return [alert for outcome in outcomes for alert in outcome.alerts]


def test_each_alert_carries_the_facts_its_entry_lists():
    alerts = alerts_of_a_night()
    # The kinds this night raises (a new kind's own test lives beside its rule, in test_rules.py).
    assert {a.kind for a in alerts} >= set(NIGHT_KINDS)
    for alert in alerts:
        info = ALERT_KINDS[alert.kind]
        assert type(alert) is Alert.of_kind[alert.kind] and type(alert.facts) is info.facts, alert.kind
        # Every fact set by the rule itself, none left to a default.
        assert alert.facts.model_fields_set == set(info.fact_names), alert.kind
        assert set(json.loads(alert.model_dump_json())["facts"]) == set(info.fact_names), alert.kind


def test_one_party_map_for_every_view():
    assert party_colour("Con") == PARTIES["Con"].colour == view.colour("Con")
    assert party_colour("Nobody") == UNKNOWN_COLOUR and party_name("Nobody") == "Nobody"
    assert party_name("Lab") == "Labour" and INDEPENDENT in PARTIES
    assert view.parties_json()["SNP"] == {"name": "Scottish National Party", "colour": PARTIES["SNP"].colour}
    assert view.kinds_json()["gain"]["label"] == ALERT_KINDS[AlertKind.GAIN].label
