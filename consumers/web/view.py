"""What the web page shows, worked out from the Redis contract. Pure: no I/O.

The browser does the same sums in ``static/dashboard.js`` when a tally event
arrives; the party and kind maps (schemas/parties.py, schemas/alerts.py) are handed
to it from here so there is one source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tallyroom.consumers.web.hexmap import NightMap
from tallyroom.schemas import Alert, AlertKind, NightSeat, SeatResult, SeatSummary, Swing, TallySnapshot
from tallyroom.schemas.alerts import ALERT_KINDS
from tallyroom.schemas.parties import PARTIES, UNKNOWN_COLOUR, party_colour, party_name
from tallyroom.streams.change import swing_phrase

colour = party_colour  # the page's name for it


def kind_labels() -> dict[str, str]:
    return {kind.value: info.label for kind, info in ALERT_KINDS.items()}


def kinds_json() -> dict[str, dict[str, str | None]]:
    """What dashboard.js needs of each kind (the registry, in schemas/alerts.py)."""
    return {
        kind.value: {"label": info.label, "colour": info.colour, "partyFact": info.party_fact}
        for kind, info in ALERT_KINDS.items()
    }


def parties_json() -> dict[str, dict[str, str]]:
    return {abbr: {"name": party.name, "colour": party.colour} for abbr, party in PARTIES.items()}


def state_json(
    election: str,
    declared: int,
    total: int,
    seats: dict[str, int],
    votes: dict[str, int],
    tally: TallySnapshot | None,
    refused: int = 0,
) -> dict:
    """The body of ``/api/e/E/state`` and of each SSE ``tally`` event.

    ``refused``: events and stored records of this election the worker refused or
    quarantined (``tallyroom:E:refused``); the page says so, for an operator to look.
    """
    return {
        "election": election,
        "declared": declared,
        "total": total,
        "seats": seats,
        "votes": votes,
        "tally": tally.model_dump(mode="json") if tally else None,
        "refused": refused,
    }


@dataclass(frozen=True)
class Bar:
    party: str
    seats: int
    votes: int
    share: float
    gains: int
    losses: int
    colour: str
    width: float  # percent of all seats in the night
    share_change: float | None = None  # national share change, fraction points (None: not comparable)

    @property
    def name(self) -> str:
        return party_name(self.party)

    @property
    def change_text(self) -> str:
        return points(self.share_change)

    @property
    def net(self) -> int:
        return self.gains - self.losses


def party_rows(state: dict) -> list[Bar]:
    """Every party with a seat, a gain or a loss, largest first; widths are out of every seat in the night."""
    tally = state.get("tally") or {}
    total = state.get("total") or tally.get("total") or 0
    parties = tally.get("parties") or {p: {"seats": n} for p, n in state.get("seats", {}).items()}
    rows = []
    for party, detail in parties.items():
        seats = state.get("seats", {}).get(party, detail.get("seats", 0))
        if not (seats or detail.get("gains") or detail.get("losses")):
            continue
        rows.append(
            Bar(
                party=party,
                seats=seats,
                votes=state.get("votes", {}).get(party, 0),
                share=detail.get("share", 0.0),
                gains=detail.get("gains", 0),
                losses=detail.get("losses", 0),
                colour=colour(party),
                width=round(100 * seats / total, 3) if total else 0.0,
                share_change=detail.get("share_change"),
            )
        )
    return sorted(rows, key=lambda b: (-b.seats, -b.votes, b.party))


def bars(state: dict) -> list[Bar]:
    return [row for row in party_rows(state) if row.seats > 0]


def changes(state: dict) -> list[Bar]:
    """Parties that gained or lost seats, biggest net gain first."""
    moved = [row for row in party_rows(state) if row.gains or row.losses]
    return sorted(moved, key=lambda b: (-b.net, -b.gains, b.party))


BLANK_BAR = Bar(party="", seats=0, votes=0, share=0.0, gains=0, losses=0, colour=UNKNOWN_COLOUR, width=0.0)


def majority_position(state: dict) -> float | None:
    """Where the majority line sits, in percent of the bar track; None before the night is open."""
    tally = state.get("tally")
    if not tally or not tally.get("total"):
        return None
    return round(100 * tally["majority_line"] / tally["total"], 3)


def night_clock(moment: str | datetime | None) -> str:
    """The night's own wall-clock time ("Fri 5 Jul 04:12"), in the offset it was declared in."""
    if moment is None:
        return "—"
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return f"{when:%a} {when.day} {when:%b %H:%M}"


@dataclass(frozen=True)
class FeedItem:
    stream_id: str
    alert: Alert

    @property
    def label(self) -> str:
        return ALERT_KINDS[self.alert.kind].label

    @property
    def clock(self) -> str:
        """ "Fri 04:12": a night runs past midnight, and its last seats can come a day later."""
        return f"{self.alert.occurred_at:%a %H:%M}"

    @property
    def accent(self) -> str:
        """The colour of the party the alert is about (the winner, the party reaching a majority), else its kind's."""
        info = ALERT_KINDS[self.alert.kind]
        party = self.alert.facts.get(info.party_fact) if info.party_fact else None
        if isinstance(party, str):
            return colour(party)
        return info.colour or UNKNOWN_COLOUR


@dataclass(frozen=True)
class CandidateRow:
    name: str
    party: str
    votes: int
    share: float
    colour: str
    winner: bool
    sitting_mp: bool
    share_change: float | None = None

    @property
    def party_name(self) -> str:
        return party_name(self.party)


def points(change: float | None) -> str:
    """A change in share as signed percentage points ("+4.5", "−12.0"); empty when unknown."""
    if change is None:
        return ""
    return f"{change * 100:+.1f}".replace("-", "\u2212")


def swing_text(swing: Swing | None) -> str | None:
    """ "4.5% from Con to Lab", in the direction the swing ran; None without one."""
    return swing_phrase(swing) if swing else None


def swing_in_full(swing: Swing | None) -> str | None:
    """ "11.2% from Conservative to Labour": the index page's words (full party names); None without one."""
    return swing_phrase(swing, party_name) if swing else None


def candidate_rows(seat: SeatResult) -> list[CandidateRow]:
    ranked = sorted(seat.candidates, key=lambda c: (-c.votes, c.name))
    return [
        CandidateRow(
            name=c.name,
            party=c.party,
            votes=c.votes,
            share=c.share,
            colour=colour(c.party),
            winner=i == 0,
            sitting_mp=c.sitting_mp,
            share_change=c.share_change,
        )
        for i, c in enumerate(ranked)
    ]


def seat_verdict(seat: SeatResult, name: Callable[[str], str] = str) -> str:
    """ "Lab gain from Con", "Con hold", or just the winner's party when nobody held it before;
    a rush says the figures are to follow, a withdrawn result that it no longer stands.
    Each party as ``name`` gives it (the page: ``party_name``, "Labour gain from Conservative")."""
    if seat.status == "withdrawn":
        return f"Result withdrawn: {seat.withdrawn_reason}"
    party = seat.winning_party
    if seat.held_by is None:
        verdict = f"{name(party)} win"
    elif seat.held_by == party:
        verdict = f"{name(party)} hold"
    else:
        verdict = f"{name(party)} gain from {name(seat.held_by)}"
    return f"{verdict} (rush: figures to follow)" if seat.status == "rush" else verdict


# --- the map, the seat list and the story of the night --------------------------------------

UNDECLARED_COLOUR = "#d9dadf"  # a seat still to come: lighter than UNKNOWN_COLOUR, which is a party's


def seat_verdict_short(summary: SeatSummary | None) -> str:
    """ "Labour gain from Conservative, majority 4,213"; "not declared yet"; "result withdrawn".

    The page's script words an update the same way (``seatText`` in static/dashboard.js).
    """
    if summary is None:
        return "not declared yet"
    if summary.status == "withdrawn" or summary.party is None:
        return "result withdrawn"
    party = party_name(summary.party)
    if summary.held_by is None:
        verdict = f"{party} win"
    elif summary.gain:
        verdict = f"{party} gain from {party_name(summary.held_by)}"
    else:
        verdict = f"{party} hold"
    if summary.status == "rush":
        return f"{verdict}, figures to follow"
    return f"{verdict}, majority {summary.majority:,}" if summary.majority is not None else verdict


@dataclass(frozen=True)
class MapCell:
    ons_id: str
    name: str
    points: str
    fill: str
    gain: bool
    title: str


def map_cells(night_map: NightMap, winners: dict[str, SeatSummary]) -> list[MapCell]:
    """Each hexagon of the night's map, coloured by its winner (undeclared and withdrawn grey), gains marked."""
    cells = []
    for cell in night_map.cells:
        won = winners.get(cell.ons_id)
        party = won.party if won and won.status != "withdrawn" else None
        cells.append(
            MapCell(
                ons_id=cell.ons_id,
                name=cell.name,
                points=cell.points,
                fill=colour(party) if party else UNDECLARED_COLOUR,
                gain=bool(won and party and won.gain),
                title=f"{cell.name}: {seat_verdict_short(won)}",
            )
        )
    return cells


def night_names(night: dict[str, NightSeat], winners: dict[str, SeatSummary]) -> dict[str, str]:
    """ONS id -> constituency of every seat known: the night's list, and any declared seat missing from it."""
    names = {ons_id: s.constituency for ons_id, s in night.items()}
    for ons_id, won in winners.items():
        names.setdefault(ons_id, won.constituency)
    return names


def seat_list_json(night: dict[str, NightSeat], winners: dict[str, SeatSummary]) -> list[dict]:
    """Every seat for the page's list and map, by name: its expected time, and its result when it has one."""
    rows = []
    for ons_id, name in night_names(night, winners).items():
        expected = night[ons_id].expected_at if ons_id in night else None
        won = winners.get(ons_id)
        rows.append(
            {
                "ons_id": ons_id,
                "name": name,
                "expected_at": expected.isoformat() if expected else None,
                "result": won.model_dump(mode="json") if won else None,
            }
        )
    return sorted(rows, key=lambda r: (r["name"].casefold(), r["ons_id"]))


def to_come(night: dict[str, NightSeat], winners: dict[str, SeatSummary]) -> list[NightSeat]:
    """Seats still to declare (withdrawn ones again), soonest expected first; those with no time last, by name."""
    waiting = [s for ons_id, s in night.items() if ons_id not in winners or winners[ons_id].status == "withdrawn"]
    return sorted(waiting, key=lambda s: (s.expected_at is None, s.expected_at or datetime.min, s.constituency))


@dataclass(frozen=True)
class Banner:
    kind: str  # majority_reached or hung_parliament
    text: str
    colour: str


def night_banner(alerts: list[Alert]) -> Banner | None:
    """The story of the night in one line, from its night alerts: a party past the majority line, or a hung
    parliament. The newest such alert wins (``alerts`` in any order)."""
    story = [a for a in alerts if a.kind.value in ("majority_reached", "hung_parliament")]
    if not story:
        return None
    latest = max(story, key=lambda a: a.occurred_at)
    return banner_of(latest.kind.value, latest.facts.model_dump(mode="json"))


def banner_of(kind: str, facts: dict) -> Banner:
    """As ``bannerOf`` in static/dashboard.js."""
    if kind == "majority_reached":
        party = str(facts.get("party"))
        return Banner(
            kind,
            f"{party_name(party)} wins a majority: {facts.get('seats')} seats, {facts.get('majority_line')} needed",
            colour(party),
        )
    largest = str(facts.get("largest_party"))
    return Banner(
        kind,
        f"Hung parliament: no party can reach {facts.get('majority_line')} seats; "
        f"{party_name(largest)} is the largest party with {facts.get('largest_party_seats')}",
        ALERT_KINDS[AlertKind.HUNG_PARLIAMENT].colour or UNKNOWN_COLOUR,
    )


def turnout_text(seat: SeatResult) -> str:
    """ "67.3%: 49,006 valid votes of an electorate of 72,852" (turnout is valid votes / electorate),
    with its change since last time when known; the valid votes alone when the electorate is not."""
    if seat.turnout is None or not seat.electorate:
        return f"not known: {seat.valid_votes:,} valid votes, electorate not given"
    text = f"{seat.turnout:.1%}: {seat.valid_votes:,} valid votes of an electorate of {seat.electorate:,}"
    if seat.turnout_change is not None:
        text += f" ({points(seat.turnout_change)} points since last time)"
    return text


def seat_context(election: str, seat: SeatResult, alerts: list[FeedItem]) -> dict:
    """What seat.html shows: the verdict, each candidate, turnout, swing, the seat's alerts oldest first."""
    return {
        "election": election,
        "seat": seat,
        "candidates": candidate_rows(seat),
        "verdict": seat_verdict(seat, party_name),
        "winner_colour": colour(seat.winning_party),
        "winner_party": party_name(seat.winning_party),
        "held_by": party_name(seat.held_by) if seat.held_by else None,
        "declared": night_clock(seat.declared_at),
        "turnout": turnout_text(seat),
        "swing": swing_phrase(seat.swing, party_name) if seat.swing else None,
        "alerts": alerts,
        "points": points,
    }
