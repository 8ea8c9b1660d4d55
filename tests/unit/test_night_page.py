"""The index page's pure parts: seat summaries (the winners hash), the map's cells, seats to come, the banner."""

from __future__ import annotations

from datetime import timedelta

from tallyroom.consumers.web import view
from tallyroom.consumers.web.hexmap import Cell, NightMap
from tallyroom.schemas import NightSeat, Rush, SeatSummary, Withdrawal
from tallyroom.schemas.parties import PARTIES
from tallyroom.streams.count import Count
from tallyroom.streams.rules import RuleConfig, seat_summary
from tests.factories import T0, cand, decl, night

A, B, C = "E14000001", "E14000002", "E14000003"
RULES = RuleConfig()


def count() -> Count:
    c = Count()
    c.open_night(night({A: "Con", B: "Lab", C: None}))
    return c


def summary_of(c: Count, event) -> SeatSummary:
    outcome = c.count(event)
    assert outcome.update is not None and outcome.update.seat is not None
    return seat_summary(outcome.update.seat, RULES)


def test_a_gain_a_hold_and_a_marginal_are_summarised_from_the_seat():
    c = count()
    gain = summary_of(c, decl(A, cand("Ann", "Lab", 20000), cand("Bob", "Con", 19500)))
    assert (gain.party, gain.gain, gain.held_by, gain.majority, gain.marginal) == ("Lab", True, "Con", 500, True)
    hold = summary_of(c, decl(B, cand("Cat", "Lab", 30000), cand("Dan", "Con", 10000)))
    assert (hold.party, hold.gain, hold.majority, hold.marginal, hold.status) == (
        "Lab",
        False,
        20000,
        False,
        "declared",
    )
    new = summary_of(c, decl(C, cand("Eve", "LD", 100), cand("Fay", "Con", 50)))
    assert not new.gain and new.held_by is None  # nobody held it: a win, not a gain


def test_a_rush_has_no_figures_and_a_withdrawn_result_no_winner():
    c = count()
    rushed = summary_of(c, Rush(election="test", ons_id=A, party="Lab", announced_at=T0))
    assert (rushed.status, rushed.party, rushed.gain, rushed.majority, rushed.marginal) == (
        "rush",
        "Lab",
        True,
        None,
        False,
    )
    declared = summary_of(c, decl(A, cand("Ann", "Lab", 20000), cand("Bob", "Con", 10000)))
    gone = summary_of(
        c, Withdrawal(election="test", ons_id=A, revision=2, reason="wrong box", withdrawn_at=T0 + timedelta(hours=1))
    )
    assert (gone.status, gone.party, gone.gain, gone.majority) == ("withdrawn", None, False, None)
    assert rushed.weight < declared.weight < gone.weight  # the page keeps the heaviest it has seen of each seat


def cells() -> NightMap:
    return NightMap(
        "test",
        [Cell(A, "Seat A", "0,0", 0, 0), Cell(B, "Seat B", "1,1", 1, 1), Cell(C, "Seat C", "2,2", 2, 2)],
        3,
        3,
        0,
    )


def test_map_cells_colour_winners_mark_gains_and_leave_the_rest_grey_with_full_names():
    c = count()
    winners = {
        A: summary_of(c, decl(A, cand("Ann", "Lab", 20000), cand("Bob", "Con", 14000))),
        B: summary_of(c, decl(B, cand("Cat", "Lab", 30000), cand("Dan", "Con", 10000))),
    }
    a, b, undeclared = view.map_cells(cells(), winners)
    assert (a.fill, a.gain, a.title) == (
        PARTIES["Lab"].colour,
        True,
        "Seat A: Labour gain from Conservative, majority 6,000",
    )
    assert (b.fill, b.gain, b.title) == (PARTIES["Lab"].colour, False, "Seat B: Labour hold, majority 20,000")
    assert (undeclared.fill, undeclared.gain, undeclared.title) == (
        view.UNDECLARED_COLOUR,
        False,
        "Seat C: not declared yet",
    )
    gone = summary_of(c, Withdrawal(election="test", ons_id=A, revision=2, reason="x", withdrawn_at=T0))
    withdrawn = view.map_cells(cells(), {A: gone})[0]
    assert (withdrawn.fill, withdrawn.gain, withdrawn.title) == (
        view.UNDECLARED_COLOUR,
        False,
        "Seat A: result withdrawn",
    )


def test_seats_to_come_soonest_first_and_withdrawn_ones_come_again():
    at = T0 + timedelta(hours=2)
    seats = {
        A: NightSeat(ons_id=A, constituency="Alpha", expected_at=at),
        B: NightSeat(ons_id=B, constituency="Beta", expected_at=at - timedelta(hours=1)),
        C: NightSeat(ons_id=C, constituency="Gamma"),
    }
    assert [s.ons_id for s in view.to_come(seats, {})] == [B, A, C]
    c = count()
    declared = {B: summary_of(c, decl(B, cand("Cat", "Lab", 3), cand("Dan", "Con", 1)))}
    assert [s.ons_id for s in view.to_come(seats, declared)] == [A, C]
    gone = summary_of(c, Withdrawal(election="test", ons_id=B, revision=2, reason="x", withdrawn_at=T0))
    assert [s.ons_id for s in view.to_come(seats, {B: gone})] == [B, A, C]


def test_the_seat_list_holds_every_seat_by_name_with_its_result_or_none():
    c = count()
    seats = {A: NightSeat(ons_id=A, constituency="beta"), B: NightSeat(ons_id=B, constituency="Alpha")}
    declared = {B: summary_of(c, decl(B, cand("Cat", "Lab", 3), cand("Dan", "Con", 1)))}
    rows = view.seat_list_json(seats, declared)
    assert [(r["ons_id"], r["name"]) for r in rows] == [(B, "Alpha"), (A, "beta")]
    assert rows[0]["result"]["party"] == "Lab" and rows[1]["result"] is None


def test_the_banner_tells_a_majority_or_a_hung_parliament_in_full_names():
    c = Count()
    c.open_night(night({A: "Con", B: "Con", C: "Con"}))
    alerts = c.count(decl(A, cand("Ann", "Lab", 20), cand("Bob", "Con", 10))).alerts
    alerts += c.count(decl(B, cand("Cat", "Lab", 20), cand("Dan", "Con", 10), minutes=5)).alerts
    banner = view.night_banner(alerts)
    assert banner is not None and banner.kind == "majority_reached"
    assert banner.text == "Labour wins a majority: 2 seats, 2 needed" and banner.colour == PARTIES["Lab"].colour
    assert view.night_banner([a for a in alerts if a.kind.value == "gain"]) is None
    hung = view.banner_of("hung_parliament", {"majority_line": 326, "largest_party": "Con", "largest_party_seats": 317})
    assert hung.text == "Hung parliament: no party can reach 326 seats; Conservative is the largest party with 317"


def test_the_index_page_words_a_swing_with_full_party_names():
    from tallyroom.schemas import Swing

    assert view.swing_in_full(Swing(from_party="Con", to_party="Lab", swing=0.112)) == (
        "11.2% from Conservative to Labour"
    )
    assert (
        view.swing_in_full(Swing(from_party="Con", to_party="Lab", swing=-0.05)) == "5.0% from Labour to Conservative"
    )
    assert view.swing_in_full(None) is None
