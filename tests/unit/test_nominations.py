"""Nominations: the night's opening lists each seat's candidates; live entry holds declarations to them.
And `replay --rushes`: each seat's rush ahead of its result, in night-clock order."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tallyroom.producers.live import NightSeats, check_record
from tallyroom.producers.nights import load_night
from tallyroom.producers.replay import night_events
from tallyroom.schemas import Declaration, NightOpened, Nominee, Rush, SeatBaseline
from tests.factories import T0, cand, decl

NIGHT_DIR = Path(__file__).resolve().parents[2] / "data" / "ge2024"
SEAT = "E14000001"


@pytest.fixture(scope="module")
def ge2024():
    return load_night(NIGHT_DIR, "ge2024")


def seats() -> NightSeats:
    nominees = [Nominee(name="Ann Smith", party="Lab"), Nominee(name="Bob Jones", party="Con", sitting_mp=True)]
    night = NightOpened(
        election="test",
        opened_at=T0,
        seats=[SeatBaseline(ons_id=SEAT, constituency="Aldwych", held_by="Con", candidates=nominees)],
    )
    return NightSeats.of(night)


def refusals(event) -> list[tuple[str, str]]:
    _, found = check_record(3, event.model_dump_json(), seats=seats())
    assert {r.record for r in found} <= {3}
    return [(r.field, r.message) for r in found]


def test_the_2024_opening_lists_every_candidate_of_every_seat(ge2024):
    assert sum(len(s.candidates) for s in ge2024.opened.seats) == sum(len(d.candidates) for d in ge2024.declarations)
    islington = next(s for s in ge2024.opened.seats if s.constituency == "Islington North")
    assert {(n.name, n.party) for n in islington.candidates} >= {("Jeremy Corbyn", "Ind")}
    assert len(ge2024.opened.model_dump_json()) < 1_000_000  # under the default payload limit


def test_a_declaration_of_exactly_the_nominees_passes():
    assert refusals(decl(SEAT, cand("ann smith", "Lab", 10), cand("Bob Jones", "Con", 5))) == []


def test_an_unknown_candidate_a_wrong_party_and_a_missing_one_are_refused_by_name():
    assert refusals(decl(SEAT, cand("Ann Smyth", "Lab", 10), cand("Bob Jones", "Con", 5))) == [
        (
            "declaration.candidates.0.name",
            "'Ann Smyth' is not nominated in Aldwych; the nominees are Ann Smith (Lab), Bob Jones (Con)",
        ),
        ("declaration.candidates", "nominee Ann Smith (Lab) of Aldwych is missing"),
    ]
    assert refusals(decl(SEAT, cand("Ann Smith", "LD", 10), cand("Bob Jones", "Con", 5))) == [
        ("declaration.candidates.0.party", "Ann Smith stands for Lab in Aldwych, not LD")
    ]
    assert refusals(decl(SEAT, cand("Ann Smith", "Lab", 10))) == [
        ("declaration.candidates", "nominee Bob Jones (Con) of Aldwych is missing")
    ]


def test_a_rush_must_name_a_nominee_or_a_party_standing():
    rush = Rush(election="test", ons_id=SEAT, party="Lab", announced_at=T0)
    assert refusals(rush) == []
    assert refusals(rush.model_copy(update={"candidate": "Ann Smith"})) == []
    assert [f for f, _ in refusals(rush.model_copy(update={"party": "Grn"}))] == ["rush.party"]
    assert [f for f, _ in refusals(rush.model_copy(update={"candidate": "Zed"}))] == ["rush.candidate"]


def test_without_nominations_any_candidates_pass():
    night = NightOpened(election="test", opened_at=T0, seats=[SeatBaseline(ons_id=SEAT, constituency="Aldwych")])
    _, found = check_record(1, decl(SEAT, cand("Zed", "Grn", 1)).model_dump_json(), seats=NightSeats.of(night))
    assert found == []


def test_older_night_openings_without_nominations_still_parse():
    raw = json.loads(
        NightOpened(
            election="test", opened_at=T0, seats=[SeatBaseline(ons_id=SEAT, constituency="A")]
        ).model_dump_json()
    )
    del raw["seats"][0]["candidates"]
    assert NightOpened.model_validate_json(json.dumps(raw)).seats[0].candidates == []


def test_replay_rushes_come_minutes_ahead_of_their_results_in_clock_order():
    first = decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 20), minutes=0)
    second = decl("E14000002", cand("C", "LD", 30), cand("D", "Con", 5), minutes=10)
    events = night_events([first, second], rushes_minutes=15)
    assert [(e.kind, e.ons_id) for e in events] == [
        ("rush", "E14000001"),
        ("rush", "E14000002"),
        ("declaration", "E14000001"),
        ("declaration", "E14000002"),
    ]
    assert (events[0].party, events[0].candidate, events[0].announced_at) == ("Con", "B", T0 - timedelta(minutes=15))
    assert night_events([first, second]) == [first, second]
    assert all(isinstance(e, Declaration) for e in night_events([first, second], None))


def test_an_entry_server_for_one_night_refuses_to_open_another():
    other = NightOpened(election="other", opened_at=T0, seats=[SeatBaseline(ons_id=SEAT, constituency="A")])
    _, found = check_record(1, other.model_dump_json(), seats=seats())
    assert [(r.field, r.message) for r in found] == [
        ("night.election", "'other' is not the night being entered ('test')")
    ]


def test_console_seat_search_finds_part_of_a_name_names_starting_with_it_first(ge2024):
    from tallyroom.producers.console import seat_matches

    night_seats = NightSeats.of(ge2024.opened)
    assert [name for _, name in seat_matches(night_seats, "ISLINGTON")] == [
        "Islington North",
        "Islington South and Finsbury",
    ]
    found = [name for _, name in seat_matches(night_seats, "north", limit=50)]
    starting = [n for n in found if n.casefold().startswith("north")]
    assert found[: len(starting)] == starting and len(found) > len(starting)
    assert seat_matches(night_seats, "  ") == []
    ons_id = next(s.ons_id for s in ge2024.opened.seats if s.constituency == "Islington North")
    assert seat_matches(night_seats, ons_id.lower()) == [(ons_id, "Islington North")]
