"""What the web page shows, worked out from the Redis contract. Pure: no I/O.

The browser does the same sums in ``static/dashboard.js`` when a tally event
arrives; the party and kind maps (schemas/parties.py, schemas/alerts.py) are handed
to it from here so there is one source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from tallyroom.schemas import Alert, SeatResult, Swing, TallySnapshot
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

    @property
    def name(self) -> str:
        return party_name(self.party)

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
