"""Hex maps: each night gets the layout that places all its seats, or no map and why."""

from __future__ import annotations

import csv
import math
from itertools import combinations
from pathlib import Path

import pytest

from tallyroom.consumers.web.hexmap import Hex, HexLayout, map_for_night, match_key, shipped_layouts

DATA = Path(__file__).resolve().parents[2] / "data"


def seats_of(constituencies: Path) -> dict[str, str]:
    with constituencies.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    id_col = "ONS ID" if "ONS ID" in rows[0] else "ons_id"
    name_col = "Constituency name" if "Constituency name" in rows[0] else "constituency_name"
    return {row[id_col]: row[name_col] for row in rows}


def test_the_2024_night_is_drawn_on_the_2024_layout_five_seats_by_name():
    night = map_for_night(seats_of(DATA / "ge2024" / "constituencies.csv"))
    assert night.layout == "uk-constituencies-2024" and night.reason is None
    assert len(night.cells) == 650 and night.by_name == 5
    assert len({c.ons_id for c in night.cells}) == 650


def test_a_2010_2019_boundaries_night_gets_the_older_layout():
    path = DATA / "ge2019" / "constituencies.csv"
    if not path.exists():
        pytest.skip("data/ge2019 is not shipped in this checkout")
    night = map_for_night(seats_of(path))
    assert night.layout == "uk-constituencies-2010" and night.by_name == 0 and len(night.cells) == 650


def test_a_night_no_layout_covers_has_no_map_and_says_why():
    seats = {"E14001074": "Barnsley North", "E99999999": "Nowhere West"}
    night = map_for_night(seats)
    assert night.layout is None and night.cells == []
    assert "no hex map covers this night's 2 seats" in night.reason and "E99999999" in night.reason


def test_hexagons_never_overlap():
    night = map_for_night(seats_of(DATA / "ge2024" / "constituencies.csv"))
    width = math.dist(*[tuple(map(float, p.split(","))) for p in night.cells[0].points.split()[:2]]) * math.sqrt(3)
    closest = min(math.dist((a.x, a.y), (b.x, b.y)) for a, b in combinations(night.cells, 2))
    assert closest >= width * 0.99
    assert all(0 <= c.x <= night.width and 0 <= c.y <= night.height for c in night.cells)


def test_names_match_across_accents_case_and_ampersands():
    assert match_key("Ynys Môn") == match_key("YNYS MON")
    assert match_key("Brighton, Kemptown & Peacehaven") == match_key("Brighton Kemptown and Peacehaven")
    layout = HexLayout("tiny", {"X1": Hex("X1", "Ynys Môn", 0, 0), "X2": Hex("X2", "Arfon", 1, 0)})
    night = map_for_night({"W07000041": "Ynys Mon", "X2": "Arfon"}, (layout,))
    assert night.layout == "tiny" and night.by_name == 1


def test_a_hex_claimed_twice_is_not_this_nights_layout():
    layout = HexLayout("tiny", {"A": Hex("A", "Alpha", 0, 0)})
    night = map_for_night({"A": "Beta", "B": "Alpha"}, (layout,))  # B would take A's hex by name
    assert night.layout is None


def test_every_shipped_layout_is_read():
    assert [layout.name for layout in shipped_layouts()] == ["uk-constituencies-2010", "uk-constituencies-2024"]
