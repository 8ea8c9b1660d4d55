"""The seat page's words and the night's verdict, from hand-made results. No Redis."""

from __future__ import annotations

from tallyroom.consumers.web.store import ParsedAlerts
from tallyroom.consumers.web.view import seat_context, seat_verdict, turnout_text
from tallyroom.schemas import PartyTally, TallySnapshot
from tallyroom.schemas.parties import party_name
from tallyroom.streams.count import Count
from tallyroom.streams.tally import night_verdict
from tests.factories import before, cand, decl, night, seat_id


def declared(electorate: int | None = 72_852):
    count = Count()
    previous = {seat_id(1): before(0.65, Con=0.5, Lab=0.3)}
    count.open_night(night({seat_id(1): "Con"}, previous=previous))
    declaration = decl(seat_id(1), cand("Ann", "Lab", 26_000), cand("Bob", "Con", 23_006), electorate=electorate)
    outcome = count.declare(declaration)
    assert outcome.update is not None and outcome.update.seat is not None
    return outcome.update.seat, outcome.alerts


def test_turnout_is_written_out_as_valid_votes_of_the_electorate():
    seat, _ = declared()
    assert turnout_text(seat) == ("67.3%: 49,006 valid votes of an electorate of 72,852 (+2.3 points since last time)")


def test_turnout_without_an_electorate_says_so():
    seat, _ = declared(electorate=None)
    assert turnout_text(seat) == "not known: 49,006 valid votes, electorate not given"


def test_the_verdict_uses_full_party_names_on_the_page_and_abbreviations_by_default():
    seat, _ = declared()
    assert seat_verdict(seat) == "Lab gain from Con"
    assert seat_verdict(seat, party_name) == "Labour gain from Conservative"


def test_the_seat_context_has_its_alerts_in_order_and_full_names():
    from tallyroom.consumers.web.view import FeedItem

    seat, alerts = declared()
    items = [FeedItem(f"1-{n}", alert) for n, alert in enumerate(alerts)]
    context = seat_context("test", seat, items)
    assert context["alerts"] == items and context["held_by"] == "Conservative"
    assert context["winner_party"] == "Labour"
    assert context["swing"] is not None and "from Conservative to Labour" in context["swing"]
    assert [row.party_name for row in context["candidates"]] == ["Labour", "Conservative"]


def tally(seats: dict[str, int], declared: int, total: int = 650) -> TallySnapshot:
    parties = {
        p: PartyTally(party=p, seats=n, votes=n, share=0.0, gains=0, losses=0, held_before=0) for p, n in seats.items()
    }
    return TallySnapshot(
        election="e", version=declared, declared=declared, total=total, majority_line=total // 2 + 1,
        valid_votes=sum(seats.values()), parties=parties,
    )  # fmt: skip


def test_night_verdict_majority_hung_or_not_yet():
    majority = night_verdict(tally({"Lab": 326, "Con": 100}, 426))
    assert majority is not None and not majority.hung and (majority.party, majority.seats) == ("Lab", 326)
    assert night_verdict(tally({"Lab": 325, "Con": 100}, 426)) is None  # 224 to come: still open
    hung = night_verdict(tally({"Con": 317, "Lab": 262, "SNP": 35, "LD": 36}, 650))
    assert hung is not None and hung.hung and (hung.party, hung.remaining, hung.line) == ("Con", 0, 326)
    # Independents stand alone: many of them are not a party with a majority.
    assert night_verdict(tally({"Ind": 400, "Lab": 100}, 500)) is None


def test_the_seat_alert_index_keeps_each_alert_once_in_stream_order():
    """A Redis refilled by the sink holds the same alerts under new stream ids: each is listed once."""
    from tallyroom.consumers.web.seat_alerts import ElectionIndex

    seat, alerts = declared()
    entries = [(f"1-{n}", {"ons_id": a.ons_id or "", "json": a.model_dump_json()}) for n, a in enumerate(alerts)]
    index, parsed = ElectionIndex(), ParsedAlerts()
    index.take(entries, parsed)
    index.take([(f"2-{n}", fields) for n, (_, fields) in enumerate(entries)], parsed)  # the refill
    held = list(index.by_seat[seat.ons_id].values())
    assert [item.alert.id for item in held] == [a.id for a in alerts] and len(alerts) >= 2
    assert [item.stream_id for item in held] == [sid for sid, _ in entries] and index.last_id == f"2-{len(alerts) - 1}"
