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
import signal
import time
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

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import ElectionState, read_state
from tallyroom.schemas import Alert
from tallyroom.schemas.parties import UK

ALERTS_SHOWN = 12
MAJORITY_MARK = "│"
PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"  # index = eighths of a cell
UNKNOWN_COLOUR = "grey62"

# Broadcasters' customary colours; a party not listed is drawn grey.
PARTY_COLOURS: dict[str, str] = {
    "Lab": "#e4003b",
    "Con": "#0087dc",
    "LD": "#faa61a",
    "SNP": "#fdf38e",
    "Green": "#6ab023",
    "RUK": "#12b6cf",
    "PC": "#00815b",
    "SF": "#326760",
    "DUP": "#d46a4c",
    "SDLP": "#2aa82c",
    "UUP": "#48a5ee",
    "APNI": "#f6cb2f",
    "TUV": "#6f8fc9",
    "Spk": "grey70",
    "Ind": "grey62",
}

ALERT_LABELS: dict[str, str] = {
    "gain": "GAIN",
    "independent_gain": "INDEPENDENT GAIN",
    "incumbent_defeated": "MP DEFEATED",
    "marginal": "MARGINAL",
    "near_upset": "NEAR UPSET",
    "majority_reached": "MAJORITY",
    "correction": "CORRECTION",
    "recount": "RECOUNT",
    "data_flaw": "DATA FLAW",
    "rush": "RUSH",
    "withdrawn": "WITHDRAWN",
}
LABEL_WIDTH = max(len(label) for label in ALERT_LABELS.values())

# The two kinds a newsroom must not miss are drawn reversed, so they stand out in the feed.
ALERT_STYLES: dict[str, str] = {
    "independent_gain": "bold reverse bright_white",
    "incumbent_defeated": "bold reverse red",
    "marginal": "yellow",
    "near_upset": "yellow",
    "majority_reached": "bold green",
    "correction": "magenta",
    "recount": "magenta",
    "data_flaw": "dim red",
    "rush": "cyan",
    "withdrawn": "bold magenta",
}

# Columns around the bar: "party " + bar + " seats   net  gain  loss", five characters each.
PARTY_WIDTH = 6
NUMBER_COLUMNS = ("seats", "net", "gain", "loss")
NUMBERS_WIDTH = 6 * len(NUMBER_COLUMNS)


def party_colour(party: str) -> str:
    return PARTY_COLOURS.get(party, UNKNOWN_COLOUR)


def alert_style(alert: Alert) -> Style:
    """A gain is drawn in the winner's colour; every other kind has its own style."""
    if alert.kind.value == "gain":
        return Style.parse(f"bold {party_colour(str(alert.facts.get('winner_party', '')))}")
    return Style.parse(ALERT_STYLES.get(alert.kind.value, ""))


def uk_clock(moment: datetime) -> str:
    local = moment.astimezone(UK)
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


@dataclass(frozen=True)
class PartyRow:
    party: str
    seats: int
    votes: int
    gains: int
    losses: int

    @property
    def net(self) -> int:
        return self.gains - self.losses


def party_rows(state: ElectionState) -> list[PartyRow]:
    """Every party with a seat or a change, largest first. The seats hash is the fallback
    when no tally snapshot has landed yet."""
    if state.tally is not None:
        rows = [PartyRow(p.party, p.seats, p.votes, p.gains, p.losses) for p in state.tally.parties.values()]
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


def party_line(row: PartyRow, total: int, bar_width: int, marker: int | None) -> Text:
    line = Text()
    line.append(f"{row.party[: PARTY_WIDTH - 1]:<{PARTY_WIDTH}}", style=f"bold {party_colour(row.party)}")
    line.append_text(bar(row.seats, total, bar_width, party_colour(row.party), marker))
    line.append(f" {row.seats:>5}", style="bold")
    net_style = "green" if row.net > 0 else "red" if row.net < 0 else "dim"
    line.append(f" {_signed(row.net):>5}", style=net_style)
    line.append(
        f" {'+' + str(row.gains) if row.gains else '0':>5} {'-' + str(row.losses) if row.losses else '0':>5}",
        style="dim",
    )
    return line


def column_titles(bar_width: int, total: int) -> Text:
    scale = f"seats won, bar out of all {total}"[:bar_width]
    titles = "".join(f" {title:>5}" for title in NUMBER_COLUMNS)
    return Text(f"{'party':<{PARTY_WIDTH}}{scale:<{bar_width}}{titles}", style="dim", no_wrap=True, overflow="crop")


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
    if status:
        text.append(f"   {status}", style="bold red")
    return text


def scale_line(line: int, total: int, bar_width: int, marker: int) -> Text:
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
    text = Text(" " * PARTY_WIDTH)
    text.append("0" + "".join(cells)[1:], style="dim")
    text.stylize("bold bright_white", PARTY_WIDTH + marker, PARTY_WIDTH + marker + 1)
    return text


def alert_line(alert: Alert) -> Text:
    style = alert_style(alert)
    line = Text()
    line.append(f"{alert.occurred_at.astimezone(UK):%H:%M} ", style="dim")
    line.append(f"{ALERT_LABELS.get(alert.kind.value, alert.kind.value.upper()):^{LABEL_WIDTH}}", style=style)
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
        bar_width = max(10, width - PARTY_WIDTH - NUMBERS_WIDTH)
        line = majority_line(self.state)
        marker = marker_column(line, total, bar_width) if total and line else None

        yield header(self.state, self.status)
        if total:
            yield column_titles(bar_width, total)
        if not rows:
            yield Text("waiting for the first declaration", style="dim italic")
        for row in rows:
            yield party_line(row, total, bar_width, marker)
        if marker is not None:
            yield scale_line(line, total, bar_width, marker)
        yield Rule("latest alerts", style="dim")
        # Rich's Screen drops `height` on the way down (through a Group) but keeps `max_height`.
        shown = self._alerts_that_fit(options.max_height if self.fit_height else None, len(rows))
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
        self.version = self.client.get(self.keys.version)
        self.state = read_state(self.client, self.election)
        newest_first = self.client.xrevrange(self.keys.alerts, count=self.keep)
        self._take(reversed(newest_first))

    def poll(self, block_ms: int) -> bool:
        """Wait up to ``block_ms`` for new alerts; re-read the tally if its version moved. True if anything changed."""
        streams = self.client.xread({self.keys.alerts: self.last_id}, count=500, block=block_ms)
        changed = False
        for _, entries in streams or []:
            changed |= self._take(entries)
        version = self.client.get(self.keys.version)
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
            self.alerts.append(Alert.model_validate_json(fields["json"]))
            self.last_id = entry_id
            took = True
        return took


class _StopFlag:
    """Ctrl-C and SIGTERM only set a flag; the loop notices within one poll.

    Raising from the signal handler could land inside Rich or redis-py and end
    the process by the signal instead of a clean exit (seen under CI load).
    """

    def __init__(self) -> None:
        self.set = False

    def __call__(self, *_: object) -> None:
        self.set = True


def watch(client: redis.Redis, election: str, console: Console, block_ms: int = 500) -> None:
    """Follow the night full-screen until Ctrl-C (or SIGTERM); the terminal is restored on the way out."""
    follower = Follower(client, election)
    follower.start()
    stop = _StopFlag()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Live(
            follower.frame(fit_height=True),
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            _follow(follower, live, block_ms, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _follow(follower: Follower, live: Live, block_ms: int, stop: _StopFlag) -> None:
    status = None
    size = live.console.size
    while not stop.set:
        try:
            changed = follower.poll(block_ms)
            if status is not None:  # back after an outage
                status, changed = None, True
        except redis.ConnectionError:
            # A restarted Redis should not end the night's view: say so and keep trying.
            changed = status is None
            status = "Redis unreachable, retrying"
            time.sleep(1)
        if live.console.size != size:  # the terminal was resized: lay the frame out again
            size, changed = live.console.size, True
        if changed:
            live.update(follower.frame(status=status, fit_height=True), refresh=True)
