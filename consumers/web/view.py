"""What the web page shows, worked out from the Redis contract. Pure: no I/O.

The browser does the same sums in ``static/dashboard.js`` when a tally event
arrives; the colour map is handed to it from here so there is one source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tallyroom.schemas import Alert, SeatResult, TallySnapshot

DEFAULT_ELECTION = "ge2024"
UNKNOWN_COLOUR = "#9a9a9a"

# Broadcasters' customary colours; a party not listed is drawn grey.
PARTY_COLOURS: dict[str, str] = {
    "Lab": "#d50000",
    "Con": "#0087dc",
    "LD": "#fdbb30",
    "SNP": "#fff95d",
    "Green": "#6ab023",
    "RUK": "#12b6cf",
    "PC": "#005b54",
    "SF": "#326760",
    "DUP": "#8b1a1a",
    "SDLP": "#2aa82c",
    "UUP": "#48a5ee",
    "APNI": "#f6cb2f",
    "TUV": "#0c3a6a",
    "Spk": "#5a5a5a",
    "Ind": UNKNOWN_COLOUR,
}

ALERT_LABELS: dict[str, str] = {
    "gain": "Gain",
    "independent_gain": "Independent gain",
    "incumbent_defeated": "MP defeated",
    "marginal": "Marginal",
    "near_upset": "Near upset",
    "majority_reached": "Majority",
    "correction": "Correction",
    "recount": "Recount",
    "data_flaw": "Data flaw",
    "rush": "Rush",
    "withdrawn": "Withdrawn",
}

# A Redis stream entry id: milliseconds, optionally "-sequence".
STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def colour(party: str) -> str:
    return PARTY_COLOURS.get(party, UNKNOWN_COLOUR)


def valid_stream_id(value: str) -> bool:
    return bool(STREAM_ID.match(value))


def state_json(
    election: str, declared: int, total: int, seats: dict[str, int], votes: dict[str, int], tally: TallySnapshot | None
) -> dict:
    """The body of ``/api/e/E/state`` and of each SSE ``tally`` event."""
    return {
        "election": election,
        "declared": declared,
        "total": total,
        "seats": seats,
        "votes": votes,
        "tally": tally.model_dump(mode="json") if tally else None,
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
        return ALERT_LABELS.get(self.alert.kind.value, self.alert.kind.value)

    @property
    def clock(self) -> str:
        """ "Fri 04:12": a night runs past midnight, and its last seats can come a day later."""
        return f"{self.alert.occurred_at:%a %H:%M}"

    @property
    def accent(self) -> str:
        """The colour of the party the alert is about: the winner, or the party reaching a majority."""
        facts = self.alert.facts
        party = facts.get("winner_party") or facts.get("party")
        return colour(party) if isinstance(party, str) else UNKNOWN_COLOUR


@dataclass(frozen=True)
class CandidateRow:
    name: str
    party: str
    votes: int
    share: float
    colour: str
    winner: bool
    sitting_mp: bool


def candidate_rows(seat: SeatResult) -> list[CandidateRow]:
    ranked = sorted(seat.candidates, key=lambda c: (-c.votes, c.name))
    return [
        CandidateRow(
            name=c.name,
            party=c.party,
            votes=c.votes,
            share=c.votes / seat.valid_votes if seat.valid_votes else 0.0,
            colour=colour(c.party),
            winner=i == 0,
            sitting_mp=c.sitting_mp,
        )
        for i, c in enumerate(ranked)
    ]


def seat_verdict(seat: SeatResult) -> str:
    """ "Lab gain from Con", "Con hold", or just the winner's party when nobody held it before;
    a rush says the figures are to follow, a withdrawn result that it no longer stands."""
    if seat.status == "withdrawn":
        return f"Result withdrawn: {seat.withdrawn_reason}"
    party = seat.winning_party
    if seat.held_by is None:
        verdict = f"{party} win"
    else:
        verdict = f"{party} hold" if seat.held_by == party else f"{party} gain from {seat.held_by}"
    return f"{verdict} (rush: figures to follow)" if seat.status == "rush" else verdict
