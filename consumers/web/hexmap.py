"""Hex maps of a night: one equal hexagon per seat, so that small urban seats show as much as large rural ones.

The layouts are Open Innovations' HexJSON files (MIT, ``hexmaps/LICENSE`` and
``hexmaps/SOURCE.md``): one for the 2024 boundaries, one for 2010-2019. A night
gets the layout that places every one of its seats, matched by ONS id and, where an
id is missing from a layout (five Scottish seats of 2024 carry older ids there), by
name. A night no layout covers gets no map, and the reason says how close the
nearest came. Pure: reading the shipped files is the only I/O, done once per process.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MAPS_DIR = Path(__file__).with_name("hexmaps")
HEX_SIZE = 10.0  # centre to corner, in SVG units; the page scales the whole drawing to its width


@dataclass(frozen=True)
class Hex:
    ons_id: str
    name: str
    q: int  # column
    r: int  # row: larger is further north in these files


@dataclass(frozen=True)
class HexLayout:
    name: str
    hexes: dict[str, Hex]

    @property
    def by_name(self) -> dict[str, Hex]:
        return {match_key(h.name): h for h in self.hexes.values()}


@dataclass(frozen=True)
class Cell:
    """One seat's hexagon on the page."""

    ons_id: str
    name: str
    points: str  # the SVG polygon's corners
    x: float
    y: float


@dataclass(frozen=True)
class NightMap:
    layout: str | None
    cells: list[Cell]
    width: float
    height: float
    by_name: int  # seats placed by name, their id missing from the layout
    reason: str | None = None  # why there is no map

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.1f} {self.height:.1f}"


def match_key(name: str) -> str:
    """A constituency name as compared across files: no accents, case, punctuation or '&' vs 'and'."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    plain = plain.casefold().replace("&", " and ")
    return re.sub(r"[^a-z0-9]+", " ", plain).strip()


def read_layout(path: Path) -> HexLayout:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("layout") != "odd-r":
        raise ValueError(f"{path.name}: layout {data.get('layout')!r}; only odd-r hex maps are drawn")
    hexes = {
        ons_id: Hex(ons_id, str(h.get("n", ons_id)), int(h["q"]), int(h["r"])) for ons_id, h in data["hexes"].items()
    }
    return HexLayout(path.name.removesuffix(".hexjson"), hexes)


@cache
def shipped_layouts(directory: Path = MAPS_DIR) -> tuple[HexLayout, ...]:
    return tuple(read_layout(path) for path in sorted(directory.glob("*.hexjson")))


def place(seats: dict[str, str], layout: HexLayout) -> tuple[dict[str, Hex], int]:
    """Each seat's hex in ``layout`` (by id, else by name), and how many were placed by name."""
    by_name = layout.by_name
    placed: dict[str, Hex] = {}
    named = 0
    for ons_id, name in seats.items():
        found = layout.hexes.get(ons_id)
        if found is None:
            found = by_name.get(match_key(name))
            named += found is not None
        if found is not None:
            placed[ons_id] = found
    # A hex claimed by two seats (one by id, one by name) means the layout is not this night's.
    if len({h.ons_id for h in placed.values()}) != len(placed):
        return {}, 0
    return placed, named


def map_for_night(seats: dict[str, str], layouts: tuple[HexLayout, ...] | None = None) -> NightMap:
    """The map of a night's seats (ONS id -> constituency name), or none and why."""
    layouts = shipped_layouts() if layouts is None else layouts
    if not seats:
        return NightMap(None, [], 0, 0, 0, "the night has no seats yet")
    best: tuple[int, int, HexLayout, dict[str, Hex], int] | None = None
    for layout in layouts:
        placed, named = place(seats, layout)
        score = (len(placed), -named)
        if best is None or score > best[:2]:
            best = (*score, layout, placed, named)
    if best is None:
        return NightMap(None, [], 0, 0, 0, "no hex maps are installed")
    placed_count, _, layout, placed, named = best
    if placed_count < len(seats):
        missing = sorted(set(seats) - set(placed))[:3]
        return NightMap(
            None,
            [],
            0,
            0,
            0,
            f"no hex map covers this night's {len(seats)} seats: the closest, {layout.name}, places "
            f"{placed_count} (not {', '.join(missing)}{', ...' if len(seats) - placed_count > 3 else ''})",
        )
    return draw(seats, layout.name, placed, named)


def draw(seats: dict[str, str], layout: str, placed: dict[str, Hex], named: int) -> NightMap:
    """Pointy-top hexagons in an odd-r layout: odd rows shift half a hexagon right."""
    width = math.sqrt(3) * HEX_SIZE
    q_min = min(h.q for h in placed.values())
    r_max = max(h.r for h in placed.values())
    corners = [
        (HEX_SIZE * math.cos(math.radians(60 * i - 30)), HEX_SIZE * math.sin(math.radians(60 * i - 30)))
        for i in range(6)
    ]
    cells = []
    for ons_id, h in placed.items():
        x = width * (h.q - q_min + 0.5 * (h.r & 1)) + width / 2
        y = 1.5 * HEX_SIZE * (r_max - h.r) + HEX_SIZE
        points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in corners)
        cells.append(Cell(ons_id, seats[ons_id], points, x, y))
    cells.sort(key=lambda c: (c.y, c.x))
    total_width = max(c.x for c in cells) + width
    total_height = max(c.y for c in cells) + HEX_SIZE
    return NightMap(layout, cells, total_width, total_height, named)
