"""The watch view's picture: hand-made state and alerts rendered to text and styled segments. No Redis."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console
from rich.screen import Screen
from rich.segment import Segment

from tallyroom.consumers.reader import ElectionState
from tallyroom.consumers.watch import MAJORITY_MARK, bar, marker_column, render
from tallyroom.schemas import AlertKind, PartyTally, Swing, TallySnapshot
from tests.factories import alert

AS_OF = datetime(2024, 7, 5, 2, 15, tzinfo=UTC)  # 03:15 BST


def party(name: str, seats: int, votes: int, gains: int = 0, losses: int = 0, held: int = 0) -> PartyTally:
    return PartyTally(party=name, seats=seats, votes=votes, share=0.0, gains=gains, losses=losses, held_before=held)


def state(parties: list[PartyTally], declared: int, total: int = 650) -> ElectionState:
    tally = TallySnapshot(
        election="night",
        version=declared,
        declared=declared,
        total=total,
        majority_line=total // 2 + 1,
        valid_votes=sum(p.votes for p in parties),
        parties={p.party: p for p in parties},
        as_of=AS_OF,
    )
    return ElectionState(
        election="night",
        declared=declared,
        total=total,
        seats={p.party: p.seats for p in parties},
        votes={p.party: p.votes for p in parties},
        tally=tally,
    )


NIGHT = state(
    [
        party("Lab", 411, 9_700_000, gains=218, losses=7, held=200),
        party("Con", 121, 6_800_000, gains=1, losses=252, held=372),
        party("Ind", 6, 560_000, gains=6),
    ],
    declared=538,
)
ALERTS = [
    alert(1, AlertKind.GAIN, "Lab GAIN Hendon from Con", winner_party="Lab"),
    alert(2, AlertKind.MARGINAL, "Marginal: Poole by 18"),
    alert(3, AlertKind.INDEPENDENT_GAIN, "Independent Shockat Adam takes Leicester South from Lab"),
    alert(4, AlertKind.MAJORITY_REACHED, "Lab reaches a majority"),
]


def draw(frame, width: int = 100) -> tuple[str, list[Segment]]:
    console = Console(record=True, width=width, color_system="truecolor", force_terminal=True, file=io.StringIO())
    segments = list(console.render(frame))
    console.print(frame)
    return console.export_text(), segments


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_header_says_declared_n_of_n_and_the_uk_clock():
    text, _ = draw(render(NIGHT, ALERTS))
    first = text.splitlines()[0]
    assert "538 of 650 declared" in first
    assert "Fri 5 Jul 03:15 BST" in first
    assert "majority 326" in first
    assert "swing" not in first  # no figures from last time, no swing


def test_header_gives_the_national_swing_when_there_is_one():
    lab = party("Lab", 411, 9_700_000, gains=218, losses=7).model_copy(update={"share": 0.337, "share_change": 0.016})
    con = party("Con", 121, 6_800_000, gains=1, losses=252).model_copy(update={"share": 0.237, "share_change": -0.199})
    parties = {"Lab": lab, "Con": con}
    swung = NIGHT.tally.model_copy(
        update={"swing": Swing(from_party="Con", to_party="Lab", swing=0.1049), "parties": parties}
    )
    night = ElectionState(**{**NIGHT.__dict__, "tally": swung})
    text, _ = draw(render(night, ALERTS), width=120)
    assert "swing 10.5% from Conservative to Labour" in text.splitlines()[0]
    (lab,) = lines_starting(text, "Labour ")
    (con,) = lines_starting(text, "Conservative ")
    assert re.search(r"33\.7% +\+1\.6 *$", lab) and re.search(r"23\.7% +-19\.9 *$", con), (lab, con)


def test_bars_are_on_one_scale_of_every_seat_with_the_majority_line_marked():
    text, _ = draw(render(NIGHT, ALERTS))
    (lab,) = lines_starting(text, "Labour ")
    (con,) = lines_starting(text, "Conservative ")
    (ind,) = lines_starting(text, "Independent ")
    # ... then share, and no change in share without figures from last time.
    assert re.search(r"\b411 +\+211 +\+218 +-7 +0\.0% *$", lab), lab
    assert re.search(r"\b121 +-251 +\+1 +-252 +0\.0% *$", con), con
    assert re.search(r"\b6 +\+6 +\+6 +0 +0\.0% *$", ind), ind
    # The mark sits in the same column on every row and on the axis, and Labour's bar passes it.
    column = lab.index(MAJORITY_MARK)
    assert con.index(MAJORITY_MARK) == ind.index(MAJORITY_MARK) == column
    axis = next(line for line in text.splitlines() if "326 to win" in line)
    assert axis.index(MAJORITY_MARK) == column
    assert lab[column + 1] == "█" and con[column - 1] == " "
    bar_cells = lambda line: line.count("█")  # noqa: E731
    assert bar_cells(lab) > 3 * bar_cells(con) > 0
    # On a scale of 650 seats, 411 seats fill 411/650 of the bar (within a cell).
    bar_width = 100 - len("Conservative ") - 36  # the party column fits the longest full name
    # (full blocks only: the mark's cell and the last, partial block are not counted)
    assert 0 <= 411 * bar_width / 650 - bar_cells(lab) < 2


def test_rows_are_largest_party_first():
    text, _ = draw(render(NIGHT, ALERTS))
    names = {"Labour", "Conservative", "Independent"}
    order = [line.split()[0] for line in text.splitlines() if line[:1].strip() and line.split()[0] in names]
    assert order == ["Labour", "Conservative", "Independent"]


def test_alerts_latest_first_and_at_most_twelve():
    many = [alert(n, AlertKind.MARGINAL, f"Marginal number {n}") for n in range(1, 21)]
    text, _ = draw(render(NIGHT, many))
    shown = [int(m) for m in re.findall(r"Marginal number (\d+)", text)]
    assert shown == list(range(20, 8, -1))

    text, _ = draw(render(NIGHT, ALERTS))
    order = [line for line in text.splitlines() if re.match(r"\w\w\w \d\d:\d\d ", line)]
    assert ["MAJORITY" in order[0], "INDEPENDENT GAIN" in order[1], "MARGINAL" in order[2], "GAIN" in order[3]] == [
        True
    ] * 4
    assert order[0].startswith("Fri 01:04")  # occurred_at 00:04 UTC, shown in UK local time (BST), with its day


def styles_of(segments: list[Segment], needle: str):
    found = [s.style for s in segments if needle in s.text]
    assert found, f"{needle!r} not rendered"
    return found


def test_independent_gain_stands_out_reversed_and_bold():
    _, segments = draw(render(NIGHT, ALERTS))
    (badge,) = styles_of(segments, "INDEPENDENT GAIN")
    assert badge.bold and badge.reverse
    (headline,) = styles_of(segments, "Shockat Adam")
    assert headline.bold and not headline.reverse


def test_each_kind_has_its_colour():
    kinds = [
        alert(1, AlertKind.GAIN, "g", winner_party="Con"),
        alert(2, AlertKind.NEAR_UPSET, "n"),
        alert(3, AlertKind.MAJORITY_REACHED, "m"),
        alert(4, AlertKind.CORRECTION, "c"),
        alert(5, AlertKind.DATA_FLAW, "d"),
        alert(6, AlertKind.INCUMBENT_DEFEATED, "i"),
    ]
    _, segments = draw(render(NIGHT, kinds))
    (gain,) = [s for s in styles_of(segments, "GAIN") if s.color]
    assert gain.color.triplet.hex == "#0087dc"  # the winner's (Conservative) colour
    assert styles_of(segments, "NEAR UPSET")[0].color.name == "yellow"
    majority = styles_of(segments, "MAJORITY")[0]
    assert majority.color.name == "green" and majority.bold
    assert styles_of(segments, "CORRECTION")[0].color.name == "magenta"
    flaw = styles_of(segments, "DATA FLAW")[0]
    assert flaw.color.name == "red" and flaw.dim
    defeated = styles_of(segments, "MP DEFEATED")[0]
    assert defeated.bold and defeated.reverse


def test_a_night_not_yet_begun_says_so():
    empty = ElectionState(election="night", declared=0, total=0, seats={}, votes={}, tally=None)
    text, _ = draw(render(empty, []))
    assert "no results in Redis yet" in text
    assert "waiting for the first declaration" in text
    assert "no alerts yet" in text


def test_seats_without_a_tally_snapshot_still_draw():
    partial = ElectionState(election="night", declared=2, total=10, seats={"Lab": 2}, votes={"Lab": 5}, tally=None)
    text, _ = draw(render(partial, []), width=60)
    assert "2 of 10 declared" in text
    (lab,) = lines_starting(text, "Labour ")
    assert MAJORITY_MARK in lab and "█" in lab


def test_full_screen_height_limits_the_alerts_so_the_bars_stay_on_screen():
    console = Console(record=True, width=100, height=12, file=io.StringIO())
    many = [alert(n, AlertKind.MARGINAL, f"Marginal number {n}") for n in range(1, 21)]
    console.print(Screen(render(NIGHT, many, fit_height=True)))
    text = console.export_text()
    assert "Labour " in text and "Labour has a majority" in text
    assert re.findall(r"Marginal number (\d+)", text) == ["20", "19", "18"]  # 12 - 3 parties - the banner - 5
    assert len(re.findall(r"Marginal number", draw(render(NIGHT, many))[0])) == 12  # --once: not fitted


def test_the_banner_says_when_a_party_has_the_majority_in_its_colour():
    text, segments = draw(render(NIGHT, ALERTS))
    assert text.splitlines()[1].strip() == "Labour has a majority: 411 seats, 326 needed"
    (style,) = styles_of(segments, "Labour has a majority")
    assert style.reverse and style.color.triplet.hex == "#e4003b"  # Labour's colour, as on the page


def test_the_banner_says_when_the_parliament_is_hung_and_none_before_the_night_is_decided():
    hung = state([party("Con", 317, 13_000_000), party("Lab", 262, 12_000_000), party("SNP", 35, 1_000_000)], 650)
    text, _ = draw(render(hung, []), width=120)
    assert "Hung parliament: no party can reach 326 seats (Conservative largest, 317; 0 to declare)" in text
    early = state([party("Lab", 200, 5_000_000), party("Con", 100, 3_000_000)], 300)
    text, _ = draw(render(early, []))
    assert "majority:" not in text and "Hung" not in text  # 200 + 350 to come could still reach 326


def test_a_header_that_wraps_still_leaves_the_bars_on_a_full_screen():
    swung = NIGHT.tally.model_copy(update={"swing": Swing(from_party="Con", to_party="Lab", swing=0.112)})
    night = ElectionState(**{**NIGHT.__dict__, "tally": swung})
    console = Console(record=True, width=80, height=14, file=io.StringIO())
    many = [alert(n, AlertKind.MARGINAL, f"Marginal number {n}") for n in range(1, 21)]
    console.print(Screen(render(night, many, fit_height=True)))
    text = console.export_text()
    assert "from Conservative to" in text and "Labour has a majority" in text
    assert lines_starting(text, "Labour ") and "326 to win" in text
    # 14 rows: a header of two lines, the banner, titles, 3 parties, the axis, the rule: 4 alerts
    assert re.findall(r"Marginal number (\d+)", text) == ["20", "19", "18", "17"]
    frame = render(night, many, fit_height=True)
    lines = console.render_lines(frame, console.options.update(height=14), pad=False)
    assert len(lines) == 14  # fills the screen and no more: nothing is cut at the bottom


@pytest.mark.parametrize("width", [10, 37, 70])
@pytest.mark.parametrize("total", [5, 59, 650])
def test_a_party_with_the_majority_line_always_covers_the_mark(width, total):
    console = Console()
    line = total // 2 + 1
    marker = marker_column(line, total, width)
    drawn = bar(line, total, width, "red", marker)
    assert drawn.plain[marker] == MAJORITY_MARK
    assert " " not in drawn.plain[:marker]
    assert drawn.get_style_at_offset(console, marker).bgcolor.name == "red"  # drawn inside the bar
    short = bar(line - 1 - total // 10, total, width, "red", marker)
    assert short.get_style_at_offset(console, marker).bgcolor is None  # a bar short of the line leaves it bare
    assert bar(total, total, width, "red", None).plain == "█" * width


def test_header_tells_the_operator_of_refused_or_quarantined_records():
    from dataclasses import replace

    assert "refused" not in draw(render(NIGHT, ALERTS))[0].splitlines()[0]
    text, _ = draw(render(replace(NIGHT, refused=2), ALERTS))
    assert "2 refused or quarantined: see tallyroom:dead-letters" in " ".join(text.split())
