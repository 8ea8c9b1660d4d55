"""Alerts of the live count itself: a rush, a result that contradicts its rush, a withdrawal.

Pure, like ``tallyroom.streams.rules``; ``tallyroom.streams.count`` raises them. Ids follow the
same scheme (election, seat, kind, revision), so a re-delivered event raises nothing new.
"""

from __future__ import annotations

from tallyroom.schemas import Alert, AlertKind, SeatResult
from tallyroom.schemas.alerts import Facts, RushFacts, WithdrawnFacts, alert_id
from tallyroom.streams.rules import correction_facts, seat_alert


def _seat_alert(seat: SeatResult, kind: AlertKind, headline: str, facts: Facts) -> Alert:
    # A rush and a withdrawal share their seat's revision with a result: the interim step tells them apart.
    return seat_alert(seat, kind, headline, facts, revision=f"{seat.revision}.{seat.interim_steps}")


def rush_alert(rush: SeatResult) -> Alert:
    """ "Lab GAIN Chipping Barnet from Con, figures to follow": gain or hold judged against the baseline."""
    party, held = rush.winning_party, rush.held_by
    gain = bool(held) and party != held
    verdict = f"GAIN {rush.constituency} from {held}" if gain else f"HOLD {rush.constituency}"
    named = rush.winner.name if rush.winner.name != party else None  # a rush may name only the party
    who = f" ({named})" if named else ""
    facts = RushFacts(winner_party=party, winner=named, held_by=held, gain=gain)
    return _seat_alert(rush, AlertKind.RUSH, f"{party} {verdict}{who}, figures to follow", facts)


def rush_contradicted(rush: SeatResult, seat: SeatResult) -> Alert:
    """The full result's winner is not the party rushed: a correction of what was flashed."""
    headline = (
        f"CORRECTION {seat.constituency}: {seat.winner.name} ({seat.winning_party}) wins, "
        f"not {rush.winning_party} as rushed"
    )
    # The facts of any correction (the registry's): what was rushed is the previous result.
    facts = correction_facts(seat, rush, vote_changes={}, rushed_party=rush.winning_party)
    alert = _seat_alert(seat, AlertKind.CORRECTION, headline, facts)
    # The same id a correction of this revision would have (streams/rules.py): one correction per revision.
    return alert.model_copy(update={"id": alert_id(seat.election, seat.ons_id, AlertKind.CORRECTION, seat.revision)})


def withdrawn_alert(withdrawn: SeatResult, previous: SeatResult) -> Alert:
    was = "rush" if previous.status == "rush" else f"revision {previous.revision}"
    headline = (
        f"Result withdrawn in {withdrawn.constituency}: {withdrawn.withdrawn_reason} "
        f"(was {previous.winning_party}, {was}); the seat is undeclared again"
    )
    facts = WithdrawnFacts(
        reason=withdrawn.withdrawn_reason,
        withdrawn_revision=previous.revision,
        withdrawn_status=previous.status,
        previous_winner_party=previous.winning_party,
        revision=withdrawn.revision,
    )
    return _seat_alert(withdrawn, AlertKind.WITHDRAWN, headline, facts)
