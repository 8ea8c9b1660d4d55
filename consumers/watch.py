"""`tallyroom watch`: the night in a terminal, live from the Redis contract.

Two halves, kept apart so the picture can be tested without Redis:

- ``render(state, alerts)`` is pure: an ``ElectionState`` and alerts (oldest
  first, as the stream holds them) become a Rich renderable that lays itself
  out for whatever width (and, full-screen, height) it is given.
- ``Follower`` does the I/O: it reads the current state and the last alerts
  (so it works when started mid-night), then follows the alert stream with
  XREAD BLOCK from the last id it has, and re-reads the tally whenever
  ``tally-version`` moves.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import redis
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.rule import Rule
from rich.style import Style
from rich.text import Text

from tallyroom.consumers.keys import ElectionKeys, read_entries, stream_entries
from tallyroom.consumers.reader import ElectionState, read_state
from tallyroom.lifecycle import Stop, authentication_failure
from tallyroom.schemas import Alert
from tallyroom.schemas.alerts import ALERT_KINDS
from tallyroom.schemas.common import read_stored
from tallyroom.schemas.parties import UK, party_colour, party_name
from tallyroom.streams.change import swing_phrase
from tallyroom.streams.tally import NightVerdict, night_verdict

ALERTS_SHOWN = 12
MAJORITY_MARK = "│"
PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"  # index = eighths of a cell
LABEL_WIDTH = max(len(info.label) for info in ALERT_KINDS.values())

# A terminal's plain "white" is light grey; the registry's white means the bright one.
TERMINAL_COLOURS: dict[str, str] = {"white": "bright_white"}

# How each emphasis in the kind registry (schemas/alerts.py) is drawn in a terminal.
EMPHASIS_STYLES: dict[str, str] = {"loud": "bold reverse", "strong": "bold", "plain": "", "quiet": "dim"}

# Columns around the bar: "party " + bar + " seats   net  gain  loss share   chg", five characters each
# (chg: share change since last time, in points). The party column fits the longest full name shown,
# between PARTY_WIDTH and PARTY_MAX_WIDTH ("Liberal Democrats" whole; longer names end in "…").
PARTY_WIDTH = 6
PARTY_MAX_WIDTH = 20
NUMBER_COLUMNS = ("seats", "net", "gain", "loss", "share", "chg")
NUMBERS_WIDTH = 6 * len(NUMBER_COLUMNS)


def alert_style(alert: Alert) -> Style:
    """Each kind is drawn in its registry colour and emphasis; a kind without a colour (a gain) in its party's."""
    info = ALERT_KINDS[alert.kind]
    if info.colour is None:
        colour = party_colour(str(alert.facts.get(info.party_fact or "", "")))
    else:
        colour = TERMINAL_COLOURS.get(info.colour, info.colour)
    return Style.parse(f"{EMPHASIS_STYLES[info.emphasis]} {colour}")


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def uk_clock(moment: datetime) -> str:
    local = moment.astimezone(UK)
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


def alert_clock(moment: datetime) -> str:
    """ "Fri 23:42": a night runs past midnight, and its last seats can come a day later."""
    return f"{moment.astimezone(UK):%a %H:%M}"


def party_width(rows: Sequence[PartyRow], width: int) -> int:
    """The party column: the longest full name shown (plus a space), within bounds, and never more than a
    third of the terminal, so the bars keep their room."""
    longest = max((len(party_name(row.party)) + 1 for row in rows), default=PARTY_WIDTH)
    return max(PARTY_WIDTH, min(longest, PARTY_MAX_WIDTH, width // 3))


def fitted(text: str, width: int) -> str:
    """``text`` in ``width - 1`` characters and a space, cut with "…" when longer."""
    room = width - 1
    return (text if len(text) <= room else text[: room - 1] + "…").ljust(width)


@dataclass(frozen=True)
class PartyRow:
    party: str
    seats: int
    votes: int
    gains: int
    losses: int
    share: float | None = None
    share_change: float | None = None

    @property
    def net(self) -> int:
        return self.gains - self.losses


def party_rows(state: ElectionState) -> list[PartyRow]:
    """Every party with a seat or a change, largest first. The seats hash is the fallback
    when no tally snapshot has landed yet."""
    if state.tally is not None:
        rows = [
            PartyRow(p.party, p.seats, p.votes, p.gains, p.losses, p.share, p.share_change)
            for p in state.tally.parties.values()
        ]
    else:
        rows = [PartyRow(party, n, state.votes.get(party, 0), 0, 0) for party, n in state.seats.items()]
    rows = [row for row in rows if row.seats or row.gains or row.losses]
    return sorted(rows, key=lambda r: (-r.seats, -r.votes, r.party))


def majority_line(state: ElectionState) -> int:
    if state.tally is not None:
        return state.tally.majority_line
    return state.total // 2 + 1 if state.total else 0


def marker_column(line: int, total: int, width: int) -> int:
    """The bar cell holding the boundary of the ``line``-th seat: a party with ``line`` seats always covers it."""
    return max(0, min(width - 1, math.ceil(line * width / total) - 1))


def bar(seats: int, total: int, width: int, colour: str, marker: int | None) -> Text:
    """A horizontal bar of ``seats`` out of ``total`` on ``width`` cells, with the majority mark at ``marker``."""
    # Rounded up (in whole eighths of a cell), so one seat still shows and a party holding
    # the majority line always reaches the mark's cell.
    eighths = -(-seats * width * 8 // total) if total else 0
    full, part = divmod(min(eighths, width * 8), 8)
    filled = "█" * full + (PARTIAL_BLOCKS[part] if part else "")
    cells = filled + " " * (width - len(filled))
    text = Text()
    if marker is None:
        text.append(cells, colour)
        return text
    covered = marker < len(filled)
    text.append(cells[:marker], colour)
    text.append(MAJORITY_MARK, f"bold bright_white on {colour}" if covered else "bold bright_white")
    text.append(cells[marker + 1 :], colour)
    return text


def _signed(n: int) -> str:
    return f"{n:+d}" if n else "0"


def party_line(row: PartyRow, total: int, bar_width: int, marker: int | None, name_width: int = PARTY_WIDTH) -> Text:
    line = Text()
    line.append(fitted(party_name(row.party), name_width), style=f"bold {party_colour(row.party)}")
    line.append_text(bar(row.seats, total, bar_width, party_colour(row.party), marker))
    line.append(f" {row.seats:>5}", style="bold")
    net_style = "green" if row.net > 0 else "red" if row.net < 0 else "dim"
    line.append(f" {_signed(row.net):>5}", style=net_style)
    line.append(
        f" {'+' + str(row.gains) if row.gains else '0':>5} {'-' + str(row.losses) if row.losses else '0':>5}",
        style="dim",
    )
    line.append(f" {'' if row.share is None else f'{row.share:.1%}':>5}")
    change = "" if row.share_change is None else f"{row.share_change * 100:+.1f}"
    line.append(f" {change:>5}", style="green" if change.startswith("+") else "red" if change else "dim")
    return line


def column_titles(bar_width: int, total: int, name_width: int = PARTY_WIDTH) -> Text:
    scale = f"seats won, bar out of all {total}"[:bar_width]
    titles = "".join(f" {title:>5}" for title in NUMBER_COLUMNS)
    return Text(f"{'party':<{name_width}}{scale:<{bar_width}}{titles}", style="dim", no_wrap=True, overflow="crop")


def header(state: ElectionState, status: str | None) -> Text:
    declared = state.tally.declared if state.tally else state.declared
    total = state.tally.total if state.tally else state.total
    text = Text()
    text.append(state.election, style="bold")
    text.append("   ")
    if not total:
        text.append("no results in Redis yet", style="dim")
    else:
        text.append(f"{declared} of {total}", style="bold cyan")
        text.append(" declared")
    if state.tally is not None and state.tally.as_of is not None:
        text.append("   ")
        text.append(uk_clock(state.tally.as_of), style="bold")
    if total:
        text.append(f"   majority {majority_line(state)}", style="dim")
    if state.tally is not None and state.tally.swing is not None:
        text.append(f"   swing {swing_phrase(state.tally.swing, party_name)}", style="bold")
    if status:
        text.append(f"   {status}", style="bold red")
    if state.refused:
        text.append(f"   {state.refused} refused or quarantined: see tallyroom:dead-letters", style="bold yellow")
    return text


def verdict_text(verdict: NightVerdict) -> str:
    """ "Labour has a majority: 411 seats, 326 needed" or "Hung parliament: no party can reach 326 seats
    (Conservative largest, 317; 0 to declare)"."""
    if not verdict.hung:
        return f"{party_name(verdict.party or '')} has a majority: {verdict.seats} seats, {verdict.line} needed"
    largest = f"{party_name(verdict.party)} largest, {verdict.seats}; " if verdict.party else ""
    return f"Hung parliament: no party can reach {verdict.line} seats ({largest}{verdict.remaining} to declare)"


def banner(state: ElectionState) -> Text | None:
    """The night's outcome once it is decided, in the majority party's colour (hung: the terminal's own)."""
    verdict = night_verdict(state.tally) if state.tally is not None else None
    if verdict is None:
        return None
    colour = party_colour(verdict.party) if verdict.party and not verdict.hung else "bright_white"
    return Text(f" {verdict_text(verdict)} ", style=f"bold reverse {colour}", no_wrap=True, overflow="ellipsis")


def scale_line(line: int, total: int, bar_width: int, marker: int, name_width: int = PARTY_WIDTH) -> Text:
    """The axis under the bars: 0 at the left, the majority at its mark, all seats at the right."""
    label = f"{MAJORITY_MARK} {line} to win"
    cells = [" "] * bar_width
    start = min(marker, bar_width - len(label))
    for i, char in enumerate(label):
        if 0 <= start + i < bar_width:
            cells[start + i] = char
    end = str(total)
    if start + len(label) < bar_width - len(end) - 1:
        cells[bar_width - len(end) :] = list(end)
    text = Text(" " * name_width)
    text.append("0" + "".join(cells)[1:], style="dim")
    text.stylize("bold bright_white", name_width + marker, name_width + marker + 1)
    return text


def alert_line(alert: Alert) -> Text:
    style = alert_style(alert)
    line = Text()
    line.append(f"{alert_clock(alert.occurred_at)} ", style="dim")
    line.append(f"{ALERT_KINDS[alert.kind].label.upper():^{LABEL_WIDTH}}", style=style)
    line.append(" ")
    # The headline keeps the kind's colour but not its reverse, so only the badge shouts.
    line.append(alert.headline, style=style + Style(reverse=False))
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


@dataclass
class WatchFrame:
    """One frame of the watch view; lays itself out for the width (and height) Rich gives it."""

    state: ElectionState
    alerts: Sequence[Alert]  # oldest first; the newest are shown at the top
    max_alerts: int = ALERTS_SHOWN
    status: str | None = None
    fit_height: bool = False  # full screen: show fewer alerts rather than push the bars off the top

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        rows = party_rows(self.state)
        total = (self.state.tally.total if self.state.tally else self.state.total) or sum(r.seats for r in rows)
        name_width = party_width(rows, width)
        bar_width = max(10, width - name_width - NUMBERS_WIDTH)
        line = majority_line(self.state)
        marker = marker_column(line, total, bar_width) if total and line else None

        head = header(self.state, self.status)
        head_lines = len(head.wrap(console, width))  # full party names in the swing can take a second line
        yield head
        decided = banner(self.state)
        if decided is not None:
            yield decided
        if total:
            yield column_titles(bar_width, total, name_width)
        if not rows:
            yield Text("waiting for the first declaration", style="dim italic")
        for row in rows:
            yield party_line(row, total, bar_width, marker, name_width)
        if marker is not None:
            yield scale_line(line, total, bar_width, marker, name_width)
        yield Rule("latest alerts", style="dim")
        # Rich's Screen drops `height` on the way down (through a Group) but keeps `max_height`.
        fixed_rows = len(rows) + (decided is not None) + head_lines - 1
        shown = self._alerts_that_fit(options.max_height if self.fit_height else None, fixed_rows)
        if not shown:
            yield Text("no alerts yet", style="dim italic")
        for alert in shown:
            yield alert_line(alert)

    def _alerts_that_fit(self, height: int | None, party_count: int) -> list[Alert]:
        room = self.max_alerts
        if height is not None:  # full screen: header, column titles, the axis, a rule and the parties come first
            room = min(room, max(1, height - party_count - 5))
        return list(reversed(self.alerts[-room:])) if room > 0 else []


def render(
    state: ElectionState,
    alerts: Sequence[Alert],
    max_alerts: int = ALERTS_SHOWN,
    status: str | None = None,
    fit_height: bool = False,
) -> WatchFrame:
    return WatchFrame(state, alerts, max_alerts, status, fit_height)


# --- I/O: Redis in, frames out ---------------------------------------------------------------


@dataclass
class Follower:
    """The watch view's picture of Redis: current state, the last alerts, and where the stream was left."""

    client: redis.Redis
    election: str
    keep: int = ALERTS_SHOWN
    state: ElectionState | None = None
    alerts: deque[Alert] = field(default_factory=deque)
    last_id: str = "0-0"
    version: str | None = None

    def __post_init__(self) -> None:
        self.keys = ElectionKeys(self.election)
        self.alerts = deque(maxlen=self.keep)

    def start(self) -> None:
        """Read what is already there. The stream position is taken from the newest alert read,
        so anything added afterwards is picked up by the first XREAD."""
        self.version = _text(self.client.get(self.keys.version))
        self.state = read_state(self.client, self.election)
        newest_first = stream_entries(self.client.xrevrange(self.keys.alerts, count=self.keep))
        self._take(reversed(newest_first))

    def poll(self, block_ms: int) -> bool:
        """Wait up to ``block_ms`` for new alerts; re-read the tally if its version moved. True if anything changed."""
        entries = read_entries(self.client.xread({self.keys.alerts: self.last_id}, count=500, block=block_ms))
        changed = self._take(entries)
        version = _text(self.client.get(self.keys.version))
        if version != self.version:
            self.version = version
            self.state = read_state(self.client, self.election)
            changed = True
        return changed

    def frame(self, status: str | None = None, fit_height: bool = False) -> WatchFrame:
        assert self.state is not None, "start() first"
        return render(self.state, list(self.alerts), self.keep, status, fit_height)

    def _take(self, entries: Iterable[tuple[str, dict[str, str]]]) -> bool:
        took = False
        for entry_id, fields in entries:
            self.alerts.append(read_stored(Alert, fields["json"]))
            self.last_id = entry_id
            took = True
        return took


def watch(client: redis.Redis, election: str, console: Console, block_ms: int = 500) -> None:
    """Follow the night full-screen until Ctrl-C (or SIGTERM); the terminal is restored on the way out."""
    follower = Follower(client, election)
    follower.start()
    # Ctrl-C and SIGTERM only set the stop; the loop notices within one poll. Raising from the
    # signal handler could land inside Rich or redis-py and end the process by the signal
    # instead of a clean exit (seen under CI load).
    with Stop().on_signals() as stop:
        with Live(
            follower.frame(fit_height=True),
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            _follow(follower, live, block_ms, stop)


def _follow(follower: Follower, live: Live, block_ms: int, stop: Stop) -> None:
    status = None
    size = live.console.size
    while not stop:
        try:
            changed = follower.poll(block_ms)
            if status is not None:  # back after an outage
                status, changed = None, True
        except redis.ConnectionError as exc:
            if authentication_failure(exc):
                raise
            # A restarted Redis should not end the night's view: say so and keep trying.
            changed = status is None
            status = "Redis unreachable, retrying"
            stop.wait(1)
        if live.console.size != size:  # the terminal was resized: lay the frame out again
            size, changed = live.console.size, True
        if changed:
            live.update(follower.frame(status=status, fit_height=True), refresh=True)
