"""Provenance: who entered an event and which Kafka record it was ride on its seat result and alerts."""

from __future__ import annotations

import json

from tallyroom.producers.audit import REFUSED, UNACKNOWLEDGED
from tallyroom.producers.live import Author, audit_attempts, check_records
from tallyroom.schemas import Alert, AlertKind, Declaration, RecountNotice, SeatResult, parse_event
from tallyroom.streams.count import Count, RecordAt
from tests.factories import T0, cand, decl, night

AT = RecordAt("tallyroom.declarations", 0, 41)


def entered(event, by="ada", source="http"):
    return event.model_copy(update={"entered_by": by, "source": source})


def test_a_seat_result_and_every_alert_name_the_operator_and_the_record():
    count = Count()
    count.open_night(night({"E14000001": "Con"}))
    outcome = count.declare(entered(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 4900))), at=AT)
    kinds = {a.kind for a in outcome.alerts}
    assert {AlertKind.GAIN, AlertKind.MARGINAL} <= kinds
    expected = {
        "entered_by": "ada",
        "source": "http",
        "topic": "tallyroom.declarations",
        "partition": 0,
        "offset": 41,
    }
    assert outcome.update.seat.provenance.model_dump() == expected
    assert [a.provenance.model_dump() for a in outcome.alerts] == [expected] * len(outcome.alerts)
    # and they survive the trip through JSON, as the sink and subscribers read them
    assert Alert.model_validate_json(outcome.alerts[0].model_dump_json()).provenance.offset == 41
    assert SeatResult.model_validate_json(outcome.stored).provenance.entered_by == "ada"


def test_a_correction_traces_to_its_own_record_and_a_redelivery_changes_nothing():
    count = Count()
    count.open_night(night({"E14000001": "Con"}))
    first = entered(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    count.declare(first, at=AT)
    assert count.declare(first, at=RecordAt(AT.topic, 0, 99)).ignored  # re-delivered at another offset
    assert count.held("test", "E14000001").provenance.offset == 41
    second = entered(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 5100), revision=2), by="eve")
    outcome = count.declare(second, at=RecordAt(AT.topic, 0, 42))
    correction = next(a for a in outcome.alerts if a.kind is AlertKind.CORRECTION)
    assert (correction.provenance.entered_by, correction.provenance.offset) == ("eve", 42)


def test_a_recount_alert_names_its_record():
    count = Count()
    count.open_night(night({"E14000001": "Con"}))
    notice = RecountNotice(election="test", ons_id="E14000001", announced_at=T0, entered_by="eve", source="cli")
    (alert,) = count.recount(notice, AT).alerts
    assert (alert.provenance.entered_by, alert.provenance.source, alert.provenance.offset) == ("eve", "cli", 41)


def test_events_and_results_stored_before_provenance_still_parse():
    old = json.loads(decl("E14000001", cand("A", "Lab", 10)).model_dump_json())
    del old["entered_by"], old["source"]
    event = parse_event(json.dumps(old))
    assert isinstance(event, Declaration) and event.entered_by is None and event.source is None
    count = Count()
    count.open_night(night({"E14000001": "Con"}))
    seat = json.loads(count.declare(event).stored)
    del seat["provenance"]
    assert SeatResult.model_validate_json(json.dumps(seat)).provenance is None


def test_an_unknown_source_is_refused_by_field():
    raw = json.loads(decl("E14000001", cand("A", "Lab", 10)).model_dump_json()) | {"source": "telepathy"}
    ((_, refusals),) = [(c.event, c.refusals) for c in check_records([json.dumps(raw)])]
    assert [r.field for r in refusals] == ["declaration.source"]


def test_the_author_overwrites_whoever_the_record_claims_to_be():
    claimed = entered(decl("E14000001", cand("A", "Lab", 10)), by="someone-else", source="replay")
    stamped = Author("eve", "http", "entry").stamp(claimed)
    assert (stamped.entered_by, stamped.source) == ("eve", "http")


def test_audit_entries_name_each_record_and_why_it_was_not_sent():
    good = decl("E14000001", cand("A", "Lab", 10)).model_dump_json()
    checked = check_records([good, "{not json", "", good.replace('"votes":10', '"votes":-1')])
    author = Author("eve", "http", "entry", "127.0.0.1")
    refused = audit_attempts(checked, author, None, 403, {1: "night: admin only"})
    assert [(a.record, a.outcome, a.action, a.election) for a in refused] == [
        (1, REFUSED, "declaration", "test"),
        (2, REFUSED, "record", ""),
        (4, REFUSED, "declaration", "test"),
    ]
    assert refused[0].reason == "night: admin only"
    assert refused[1].reason.startswith("payload: ")
    assert refused[2].reason.startswith("declaration.candidates.0.votes: ")
    assert {(a.operator, a.role, a.source, a.status, a.client) for a in refused} == {
        ("eve", "entry", "http", "403", "127.0.0.1")
    }
    unacknowledged = audit_attempts(checked, author, None, 503, {1: "broker away"}, UNACKNOWLEDGED)
    assert [a.outcome for a in unacknowledged] == [UNACKNOWLEDGED, REFUSED, REFUSED]
