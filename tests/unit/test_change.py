"""Shares, turnout, change since last time and swing, in a seat and over the night (no Kafka)."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from tallyroom.producers.nights import NightFormatError, derive_baseline, load_night, write_baseline
from tallyroom.schemas import PreviousResult, SeatResult
from tallyroom.schemas.parties import canonical_party
from tallyroom.streams import change
from tallyroom.streams.count import Count
from tallyroom.streams.tally import seat_result
from tests.factories import before, cand, decl, night
from tests.unit import test_night_layouts as layouts

A, B, C = "E14000001", "E14000002", "E14000003"


def test_shares_turnout_and_majority_share():
    seat = seat_result(
        decl(A, cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000), cand("Cy", "LD", 2000), electorate=16000), "Lab"
    )
    assert [(c.name, c.share) for c in seat.candidates] == [("Ann", 0.5), ("Bob", 0.3), ("Cy", 0.2)]
    assert seat.winner.share == 0.5 and seat.runner_up.share == 0.3
    assert seat.turnout == 0.625 and seat.majority_share == 0.2
    # No previous figures: no change, no swing.
    assert seat.turnout_change is None and seat.swing is None
    assert all(c.share_change is None for c in seat.candidates)


def test_turnout_is_null_without_an_electorate():
    seat = seat_result(decl(A, cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000)), "Lab")
    assert seat.turnout is None and seat.turnout_change is None


def test_turnout_is_null_when_the_electorate_is_below_the_votes():
    # A flaw of the published figures: a turnout over 1 is no turnout (and would break its 0..1 bound).
    seat = seat_result(decl(A, cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000), electorate=7000), "Lab")
    assert seat.turnout is None and seat.valid_votes == 8000
    assert change.turnout(8000, 8000) == 1.0


def test_share_change_null_for_an_independent_and_a_party_new_this_time():
    previous = before(0.5, Lab=0.40, Con=0.35, Ind=0.2)  # an "Ind" share last time is never compared
    seat = seat_result(
        decl(A, cand("Ann", "Lab", 450), cand("Ivy", "Ind", 300), cand("Rex", "RUK", 150), cand("Bob", "Con", 100),
             electorate=2000),
        "Lab",
        previous,
    )  # fmt: skip
    by_party = {c.party: c for c in seat.candidates}
    assert by_party["Lab"].share_change == pytest.approx(0.45 - 0.40)
    assert by_party["Con"].share_change == pytest.approx(0.10 - 0.35)
    assert by_party["Ind"].share_change is None
    assert by_party["RUK"].share_change is None  # no RUK, nor its predecessor BRX, last time
    assert seat.turnout == 0.5 and seat.turnout_change == 0.0
    # Hold: swing from the winner (Lab +5) to the runner-up's party, here an independent: unknown.
    assert seat.swing is None


def test_a_renamed_party_is_compared_with_its_predecessor():
    seat = seat_result(decl(A, cand("Rex", "RUK", 300), cand("Bob", "Con", 700)), "Con", before(BRX=0.1, Con=0.8))
    assert seat.candidates[1].share_change == pytest.approx(0.2)
    assert seat.swing.model_dump() == {"from_party": "Con", "to_party": "RUK", "swing": pytest.approx(0.15)}


def test_butler_swing_on_a_gain_is_from_the_holder_to_the_winner():
    # Lab 30 -> 50 (+20), Con 50 -> 35 (-15): swing Con to Lab (20 + 15) / 2 = 17.5 points.
    seat = seat_result(
        decl(A, cand("L", "Lab", 500), cand("C", "Con", 350), cand("D", "LD", 150)), "Con", before(Lab=0.3, Con=0.5)
    )
    assert (seat.swing.from_party, seat.swing.to_party) == ("Con", "Lab")
    assert seat.swing.swing == pytest.approx(0.175)


def test_butler_swing_on_a_hold_is_from_the_winner_to_the_runner_up():
    # Held by Lab, which rose 40 -> 50 while Con fell 40 -> 30: a swing of -10 points "to Con".
    seat = seat_result(decl(A, cand("L", "Lab", 500), cand("C", "Con", 300), cand("G", "Green", 200)), "Lab",
                       before(Lab=0.4, Con=0.4, Green=0.2))  # fmt: skip
    assert seat.swing.model_dump() == {"from_party": "Lab", "to_party": "Con", "swing": pytest.approx(-0.1)}


def test_previous_from_share_and_change_columns():
    rows = [("Lab", 0.5, 0.1), ("Con", 0.3, -0.05), ("Ind", 0.15, 0.02), ("RUK", 0.05, None)]
    figures = change.previous_from_share_change(rows)
    assert figures.shares == pytest.approx({"Lab": 0.4, "Con": 0.35})
    assert figures.turnout is None
    assert change.previous_from_share_change([("Ind", 0.5, None), ("New", 0.5, None)]) is None


def test_previous_from_the_votes_of_a_previous_night():
    figures = change.previous_from_votes(
        [cand("a", "Lab", 600), cand("b", "Con", 300), cand("c", "Ind", 100)], electorate=2000
    )
    assert figures.shares == pytest.approx({"Lab": 0.6, "Con": 0.3})
    assert figures.turnout == 0.5 and figures.valid_votes == 1000


# --- over the night ---------------------------------------------------------------------------------


def opened(previous: dict[str, PreviousResult]) -> Count:
    count = Count()
    count.open_night(night({A: "Con", B: "Lab", C: "Lab"}, previous=previous))
    return count


PREVIOUS = {
    A: before(0.6, 1000, Con=0.5, Lab=0.3, LD=0.2),
    B: before(0.6, 3000, Con=0.3, Lab=0.6, LD=0.1),
    # C is missing from the previous night (new boundaries): no previous figures at all.
}


def test_national_share_change_and_swing_over_declared_seats_with_previous_figures():
    count = opened(PREVIOUS)
    count.declare(decl(A, cand("a", "Lab", 1000), cand("b", "Con", 800), cand("c", "LD", 200)))
    tally = count.snapshot("test")
    assert tally.compared == 1
    assert tally.parties["Lab"].share_change == pytest.approx(0.5 - 0.3)
    assert tally.parties["Con"].share_change == pytest.approx(0.4 - 0.5)
    # The two largest parties last time over all seats (weighted by valid votes): Lab, then Con.
    assert (tally.swing.from_party, tally.swing.to_party) == ("Lab", "Con")
    assert tally.swing.swing == pytest.approx((-0.1 - 0.2) / 2)

    count.declare(decl(B, cand("a", "Lab", 1500), cand("b", "Con", 1500)))
    count.declare(decl(C, cand("a", "Lab", 9000), cand("b", "Con", 1000), cand("i", "Ind", 50)))  # not compared
    tally = count.snapshot("test")
    assert tally.compared == 2 and tally.declared == 3
    # Now 2,500 of 5,000 valid votes; before 300 + 1,800 of 4,000 (weighted by last time's valid votes).
    assert tally.parties["Lab"].share_change == pytest.approx(2500 / 5000 - 2100 / 4000)
    assert tally.parties["Con"].share_change == pytest.approx(2300 / 5000 - 1400 / 4000)
    assert tally.parties["LD"].share_change == pytest.approx(200 / 5000 - 500 / 4000)
    assert tally.parties["Ind"].share_change is None
    seat_c = count.held("test", C)
    assert seat_c.swing is None and all(c.share_change is None for c in seat_c.candidates)


def test_a_correction_flipping_the_winner_leaves_the_figures_as_if_declared_once():
    final = [
        decl(A, cand("a", "Lab", 700), cand("b", "Con", 800), cand("c", "LD", 200), revision=2),
        decl(B, cand("a", "Lab", 1500), cand("b", "Con", 1400)),
    ]
    first = decl(A, cand("a", "Lab", 1000), cand("b", "Con", 800), cand("c", "LD", 200))
    fresh = opened(PREVIOUS)
    for declaration in final:
        fresh.declare(declaration)
    expected = fresh.snapshot("test")
    for order in itertools.permutations([first, *final]):
        count = opened(PREVIOUS)
        for declaration in order:
            count.declare(declaration)
        got = count.snapshot("test")
        assert got.parties["Con"].seats == expected.parties["Con"].seats == 1
        for party in ("Lab", "Con", "LD"):
            assert got.parties[party].share_change == pytest.approx(expected.parties[party].share_change)
        assert got.swing.swing == pytest.approx(expected.swing.swing)
    corrected = fresh.held("test", A)
    assert corrected.winner.party == "Con"  # now a Con hold: the swing runs to the runner-up, Lab
    assert (corrected.swing.from_party, corrected.swing.to_party) == ("Con", "Lab")
    assert corrected.swing.swing == pytest.approx(((700 / 1700 - 0.3) - (800 / 1700 - 0.5)) / 2, abs=1e-6)
    assert corrected.held_by == "Con"


def test_seat_result_json_carries_the_figures():
    seat = seat_result(decl(A, cand("L", "Lab", 500), cand("C", "Con", 500), electorate=1000), "Con",
                       before(0.8, Lab=0.4, Con=0.6))  # fmt: skip
    data = json.loads(seat.model_dump_json())
    assert data["turnout"] == 1.0 and data["turnout_change"] == pytest.approx(0.2)
    assert {c["party"]: c["share_change"] for c in data["candidates"]} == {"Lab": 0.1, "Con": -0.1}
    assert SeatResult.model_validate(data) == seat


# --- the baseline from its two sources ------------------------------------------------------------


def test_baseline_from_share_and_change_columns(tmp_path):
    people = layouts.candidates()
    for row, share, delta in zip(people, ["0.416667", "0.5", "0.083333", "0.552620", "0.44738"],
                                 ["0.1", "-0.02", "", "0.05", ""], strict=True):  # fmt: skip
        row["share"], row["change"] = share, delta
    directory = layouts.write_night(tmp_path / "now", candidate_rows=people)
    write_baseline(directory)
    loaded = {s.ons_id: s.previous for s in load_night(directory).opened.seats}
    assert loaded[layouts.MON].shares == pytest.approx({"PC": 0.316667, "Lab": 0.52})
    assert loaded[layouts.TOWN].shares == pytest.approx({"APNI": 0.50262})
    seat = Count()
    night_ = load_night(directory)
    seat.open_night(night_.opened)
    mon = next(d for d in night_.declarations if d.ons_id == layouts.MON)
    result = seat.declare(mon).update.seat
    published = {"PC": 0.1, "Lab": -0.02, "BRX": None}
    for candidate in result.candidates:
        if published[candidate.party] is None:
            assert candidate.share_change is None
        else:
            assert candidate.share_change == pytest.approx(published[candidate.party], abs=1e-4)


def test_baseline_from_a_previous_night_matched_by_ons_id(tmp_path):
    previous_people = [dict(r, votes=str(v)) for r, v in zip(layouts.candidates()[:3], [6000, 3000, 1000], strict=True)]
    previous_seats = [dict(layouts.seats()[0], electorate="20000", valid="10000", majority="3000")]
    previous_dir = layouts.write_night(tmp_path / "before", seat_rows=previous_seats, candidate_rows=previous_people)
    directory = layouts.write_night(tmp_path / "now")
    baseline = {s.ons_id: s for s in derive_baseline(directory, previous_dir)}
    assert baseline[layouts.MON].previous.shares == pytest.approx({"PC": 0.6, "Lab": 0.3, "BRX": 0.1})
    assert baseline[layouts.MON].previous.turnout == 0.5
    assert baseline[layouts.TOWN].previous is None  # not in the previous night
    write_baseline(directory, previous_dir)
    night_ = load_night(directory)
    count = Count()
    count.open_night(night_.opened)
    results = {d.ons_id: count.declare(d).update.seat for d in night_.declarations}
    mon = results[layouts.MON]
    assert mon.turnout == 0.48 and mon.turnout_change == pytest.approx(-0.02)
    # Lab 30% -> 50%, PC 60% -> 41.7%: Lab gains from PC? No: the Result says Lab held it; a hold,
    # so the swing runs from the winner (Lab) to the runner-up (PC).
    assert (mon.swing.from_party, mon.swing.to_party) == ("Lab", "PC")
    assert mon.swing.swing == pytest.approx(((10000 / 24000 - 0.6) - (0.5 - 0.3)) / 2, abs=1e-6)
    assert results[layouts.TOWN].swing is None


# --- the real nights: the Library's own Share and Change, from the baselines derived from them -----

DATA = Path(__file__).resolve().parents[2] / "data"
LIBRARY_COLUMNS = {
    "ge2019": ("ons_id", "firstname", "surname", "party_abbreviation", "share", "change"),
    "ge2024": ("ONS ID", "Candidate first name", "Candidate surname", "Party abbreviation", "Share", "Change"),
}


@pytest.mark.parametrize("name", sorted(LIBRARY_COLUMNS))
def test_every_share_and_change_equals_the_librarys(name):
    loaded = load_night(DATA / name)
    count = Count()
    count.open_night(loaded.opened)
    results = {d.ons_id: count.declare(d).update.seat for d in loaded.declarations}
    ons, first, last, party, share, delta = LIBRARY_COLUMNS[name]
    with (DATA / name / "candidates.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        who = " ".join(f"{row[first]} {row[last]}".split())
        (candidate,) = [
            c for c in results[row[ons]].candidates if c.name == who and c.party == canonical_party(row[party])
        ]
        assert candidate.share == pytest.approx(float(row[share]), abs=1e-4), (row[ons], who)
        if row[delta]:
            assert candidate.share_change == pytest.approx(float(row[delta]), abs=1e-4), (row[ons], who)
        else:
            assert candidate.share_change is None, (row[ons], who)
    tally = count.snapshot(name)
    # Every seat with a Change somewhere (2019's Buckingham, the Speaker's last time, has none).
    assert tally.compared == sum(1 for seat in loaded.opened.seats if seat.previous) >= 649
    assert (tally.swing.from_party, tally.swing.to_party) == ("Con", "Lab")


def test_before_a_night_the_previous_winner_holds_each_seat(tmp_path):
    previous_people = [dict(r, votes=str(v)) for r, v in zip(layouts.candidates()[:3], [6000, 3000, 1000], strict=True)]
    previous_dir = layouts.write_night(tmp_path / "before", candidate_rows=previous_people,
                                       seat_rows=[layouts.seats()[0]])  # fmt: skip
    # Before a night the constituency file has no Result yet: the previous night says who held each seat.
    mon_only = [dict(layouts.seats()[0], result="")]
    directory = layouts.write_night(tmp_path / "now", seat_rows=mon_only, candidate_rows=layouts.candidates()[:3])
    (seat,) = derive_baseline(directory, previous_dir)
    assert (seat.ons_id, seat.held_by) == (layouts.MON, "PC")  # PC won it last time
    assert seat.previous.shares == pytest.approx({"PC": 0.6, "Lab": 0.3, "BRX": 0.1})
    # Without a previous night, an empty Result cannot be placed: the row says so.
    with pytest.raises(NightFormatError) as info:
        derive_baseline(directory)
    assert (info.value.path.name, info.value.line, info.value.field) == ("constituencies.csv", 2, "Result")
    # Nor can a seat the previous night does not have.
    both = [dict(row, result="") for row in layouts.seats()]
    with pytest.raises(NightFormatError) as info:
        derive_baseline(layouts.write_night(tmp_path / "new", seat_rows=both), previous_dir)
    assert (info.value.line, info.value.field) == (3, "Result")


def test_a_previous_electorate_below_the_votes_leaves_turnout_unknown():
    figures = change.previous_from_votes([cand("a", "Lab", 600), cand("b", "Con", 300)], electorate=800)
    assert figures.turnout is None and figures.valid_votes == 900


def test_a_seat_with_no_votes_at_all_is_counted_with_shares_of_zero():
    from tallyroom.streams.count import Count
    from tests.factories import before, cand, decl, night

    count = Count()
    count.open_night(night({"E14000001": "Con"}, previous={"E14000001": before(Con=0.5, Lab=0.4)}))
    outcome = count.declare(decl("E14000001", cand("A", "Lab", 0), cand("B", "Con", 0)))
    assert outcome.rejected is None and outcome.update is not None
    seat = outcome.update.seat
    assert [c.share for c in seat.candidates] == [0.0, 0.0]
    assert outcome.update.tally.declared == 1
