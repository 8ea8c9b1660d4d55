"""Upset rules: each a pure function from a seat change to the alerts it raises.

To add a rule: write a function ``rule(change, config) -> list[Alert]`` here,
append it to ``SEAT_RULES`` (or ``TALLY_RULES`` if it looks at the whole
night), and test it in ``tests/unit/test_rules.py`` with hand-made declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tallyroom.schemas import Alert, AlertKind, Candidate, DeclarationRef, RecountNotice, SeatResult
from tallyroom.schemas.alerts import alert_id
from tallyroom.schemas.parties import INDEPENDENT
from tallyroom.streams.tally import Tally


@dataclass(frozen=True)
class RuleConfig:
    marginal_votes: int = 1000
    marginal_share: float = 0.02

    def marginal_threshold(self, valid_votes: int) -> float:
        """A majority below this is marginal: under N votes or under a share of valid votes."""
        return max(self.marginal_votes, self.marginal_share * valid_votes)


@dataclass(frozen=True)
class SeatChange:
    """One accepted declaration: the seat's new result and what it replaced."""

    seat: SeatResult
    previous: SeatResult | None
    parties_holding_seats: frozenset[str]
    seats_before: dict[str, int]
    seats_after: dict[str, int]
    majority_line: int

    @property
    def is_gain(self) -> bool:
        return bool(self.seat.held_by) and self.seat.winning_party != self.seat.held_by


def _alert(
    change: SeatChange, kind: AlertKind, headline: str, facts: dict[str, Any], subject: str | None = None
) -> Alert:
    seat = change.seat
    return Alert(
        id=alert_id(seat.election, subject or seat.ons_id, kind, seat.revision),
        kind=kind,
        election=seat.election,
        ons_id=seat.ons_id,
        constituency=seat.constituency,
        headline=headline,
        facts=facts,
        declaration=DeclarationRef(ons_id=seat.ons_id, revision=seat.revision, declared_at=seat.declared_at),
        occurred_at=seat.declared_at,
    )


def _who(candidate: Candidate) -> str:
    return f"{candidate.name} ({candidate.party})"


def _base_facts(seat: SeatResult) -> dict[str, Any]:
    return {
        "winner": seat.winner.name,
        "winner_party": seat.winning_party,
        "held_by": seat.held_by,
        "majority": seat.majority,
        "valid_votes": seat.valid_votes,
        "runner_up": seat.runner_up.name if seat.runner_up else None,
        "runner_up_party": seat.runner_up.party if seat.runner_up else None,
    }


def gain(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not change.is_gain:
        return []
    headline = (
        f"{seat.winning_party} GAIN {seat.constituency} from {seat.held_by}: "
        f"{seat.winner.name}, majority {seat.majority:,}"
    )
    return [_alert(change, AlertKind.GAIN, headline, _base_facts(seat))]


def independent_gain(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not (change.is_gain and seat.winner.party == INDEPENDENT):
        return []
    headline = (
        f"Independent {seat.winner.name} takes {seat.constituency} from {seat.held_by}, majority {seat.majority:,}"
    )
    return [_alert(change, AlertKind.INDEPENDENT_GAIN, headline, _base_facts(seat))]


def incumbent_defeated(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    alerts = []
    for candidate in seat.candidates:
        if candidate.sitting_mp and candidate.identity != seat.winner.identity:
            facts = _base_facts(seat) | {
                "defeated": candidate.name,
                "defeated_party": candidate.party,
                "defeated_votes": candidate.votes,
            }
            headline = f"Sitting MP {_who(candidate)} defeated in {seat.constituency} by {_who(seat.winner)}"
            subject = f"{seat.ons_id}/{candidate.name.casefold()}"
            alerts.append(_alert(change, AlertKind.INCUMBENT_DEFEATED, headline, facts, subject))
    return alerts


def marginal(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if seat.runner_up is None or seat.majority >= config.marginal_threshold(seat.valid_votes):
        return []
    headline = (
        f"Marginal: {_who(seat.winner)} wins {seat.constituency} by {seat.majority:,} over {_who(seat.runner_up)}"
    )
    return [_alert(change, AlertKind.MARGINAL, headline, _base_facts(seat))]


def near_upset(change: SeatChange, config: RuleConfig) -> list[Alert]:
    """The holder survived, but an outsider (independent or a party holding no seats) came close."""
    seat = change.seat
    if change.is_gain or not seat.held_by:
        return []
    threshold = config.marginal_threshold(seat.valid_votes)
    for challenger in seat.candidates[1:]:
        gap = seat.winner.votes - challenger.votes
        if gap >= threshold:
            break
        outsider = challenger.party == INDEPENDENT or challenger.party not in change.parties_holding_seats
        if outsider:
            facts = _base_facts(seat) | {
                "challenger": challenger.name,
                "challenger_party": challenger.party,
                "gap": gap,
            }
            headline = f"Near upset: {_who(seat.winner)} holds {seat.constituency} by {gap:,} over {_who(challenger)}"
            return [_alert(change, AlertKind.NEAR_UPSET, headline, facts)]
    return []


def data_flaw(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not seat.flaws:
        return []
    headline = f"Data flaw in {seat.constituency}: {seat.flaws[0]}"
    return [_alert(change, AlertKind.DATA_FLAW, headline, {"flaws": seat.flaws})]


def correction(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat, before = change.seat, change.previous
    if before is None:
        return []
    changed = {
        c.name: c.votes - next((p.votes for p in before.candidates if p.identity == c.identity), 0)
        for c in seat.candidates
    }
    facts = _base_facts(seat) | {
        "previous_revision": before.revision,
        "revision": seat.revision,
        "previous_winner": before.winner.name,
        "previous_winner_party": before.winning_party,
        "previous_majority": before.majority,
        "vote_changes": {name: delta for name, delta in changed.items() if delta},
    }
    if before.winner.identity != seat.winner.identity:
        headline = f"CORRECTION {seat.constituency}: winner now {_who(seat.winner)}, was {_who(before.winner)}"
    else:
        headline = (
            f"Correction {seat.constituency} (revision {seat.revision}): {_who(seat.winner)}, "
            f"majority {seat.majority:,} (was {before.majority:,})"
        )
    return [_alert(change, AlertKind.CORRECTION, headline, facts)]


def majority_reached(change: SeatChange, config: RuleConfig) -> list[Alert]:
    line = change.majority_line
    for party, seats in change.seats_after.items():
        if seats >= line and change.seats_before.get(party, 0) < line:
            seat = change.seat
            headline = f"{party} reaches a majority: {seats} of the {line} seats needed, with {seat.constituency}"
            facts = {"party": party, "seats": seats, "majority_line": line, "clinching_seat": seat.constituency}
            alert = _alert(change, AlertKind.MAJORITY_REACHED, headline, facts)
            # One per party per election, whichever declaration (or re-delivery) took it there.
            return [alert.model_copy(update={"id": alert_id(seat.election, party, AlertKind.MAJORITY_REACHED)})]
    return []


Rule = Callable[[SeatChange, RuleConfig], list[Alert]]

# Rules about the seat itself. On a correction, a kind already raised for the
# earlier revision is not raised again.
SEAT_RULES: list[Rule] = [gain, independent_gain, incumbent_defeated, marginal, near_upset, data_flaw]
# Rules about the change or the whole night.
CHANGE_RULES: list[Rule] = [correction, majority_reached]


def evaluate(change: SeatChange, config: RuleConfig) -> list[Alert]:
    alerts = [alert for rule in SEAT_RULES for alert in rule(change, config)]
    if change.previous is not None:
        earlier = SeatChange(change.previous, None, change.parties_holding_seats, {}, {}, change.majority_line)
        raised = {
            (a.kind, a.facts.get("defeated"), a.facts.get("challenger"))
            for rule in SEAT_RULES
            for a in rule(earlier, config)
        }
        alerts = [a for a in alerts if (a.kind, a.facts.get("defeated"), a.facts.get("challenger")) not in raised]
    return alerts + [alert for rule in CHANGE_RULES for alert in rule(change, config)]


def recount(notice: RecountNotice, constituency: str | None) -> Alert:
    name = notice.constituency or constituency or notice.ons_id
    reason = f": {notice.reason}" if notice.reason else ""
    return Alert(
        id=alert_id(notice.election, notice.ons_id, AlertKind.RECOUNT, notice.announced_at.isoformat()),
        kind=AlertKind.RECOUNT,
        election=notice.election,
        ons_id=notice.ons_id,
        constituency=name,
        headline=f"Recount in {name}{reason}",
        facts={"reason": notice.reason},
        occurred_at=notice.announced_at,
    )


def seat_change(
    tally: Tally, previous: SeatResult | None, seat: SeatResult, parties_holding_seats: frozenset[str]
) -> SeatChange:
    """Apply a seat's result to the tally and describe the change for the rules."""
    before = dict(tally.seats)
    tally.apply(previous, seat)
    return SeatChange(seat, previous, parties_holding_seats, before, dict(tally.seats), tally.majority_line)
