"""Upset rules: each a pure function from a seat change to the alerts it raises.

To add a rule: write a function ``rule(change, config) -> list[Alert]`` here,
append it to ``SEAT_RULES`` (or ``CHANGE_RULES`` if it looks at the whole
night), give its kind an entry in ``ALERT_KINDS`` (``schemas/alerts.py``) with the
model of its facts beside it, and test it in ``tests/unit/test_rules.py`` with
hand-made declarations. A rule builds its kind's facts model itself: that is the
facts' one validation (the alert takes the model as it is).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic_core import to_json

from tallyroom.schemas import (
    Alert,
    AlertKind,
    Candidate,
    CandidateResult,
    DeclarationRef,
    RecountNotice,
    SeatResult,
    SeatSummary,
    Swing,
)
from tallyroom.schemas.alerts import (
    BigSwingFacts,
    CorrectionFacts,
    DataFlawFacts,
    Facts,
    HungParliamentFacts,
    IncumbentDefeatedFacts,
    MajorityReachedFacts,
    NearUpsetFacts,
    RecountFacts,
    SeatFacts,
    alert_id,
)
from tallyroom.schemas.common import SCHEMA_VERSION
from tallyroom.schemas.parties import INDEPENDENT
from tallyroom.streams.change import swing_phrase
from tallyroom.streams.tally import Tally, is_hung


class _HasThresholds(Protocol):
    @property
    def marginal_votes(self) -> int: ...
    @property
    def marginal_share(self) -> float: ...
    @property
    def big_swing(self) -> float: ...


@dataclass(frozen=True)
class RuleConfig:
    marginal_votes: int = 1000
    marginal_share: float = 0.02
    big_swing: float = 0.10

    @classmethod
    def from_settings(cls, settings: _HasThresholds) -> RuleConfig:
        """From anything with the thresholds' names (``tallyroom.settings.Settings``)."""
        return cls(settings.marginal_votes, settings.marginal_share, settings.big_swing)

    def marginal_threshold(self, valid_votes: int) -> float:
        """A majority below this is marginal: under N votes or under a share of valid votes."""
        return max(self.marginal_votes, self.marginal_share * valid_votes)


# What tells one raised seat alert from another of its kind: the kind, and who it names.
AlertKey = tuple[str, Any, Any]
# By seat: what the seat rules raise for its latest revision (that revision, the keys). The count
# keeps it so that a correction need not run the rules on the result it replaces again.
RaisedBySeat = MutableMapping[str, tuple[int, frozenset[AlertKey]]]


@dataclass(frozen=True)
class SeatChange:
    """One accepted declaration: the seat's new result and what it replaced."""

    seat: SeatResult
    previous: SeatResult | None
    parties_holding_seats: frozenset[str]
    seats_before: dict[str, int]
    seats_after: dict[str, int]
    majority_line: int
    declared_before: int = 0
    declared_after: int = 0
    total: int = 0
    raised: RaisedBySeat | None = None  # read and filled by ``evaluate``; None: not kept

    @property
    def is_gain(self) -> bool:
        return bool(self.seat.held_by) and self.seat.winning_party != self.seat.held_by


def seat_alert(
    seat: SeatResult,
    kind: AlertKind,
    headline: str,
    facts: Facts,
    subject: str | None = None,
    revision: int | str | None = None,
) -> Alert:
    """An alert about one seat's result; its id from the election, ``subject`` (the seat), kind and ``revision``."""
    # The kind's model itself: Alert(kind=...) would find it too, a microsecond later (of ~20 per alert).
    return Alert.of_kind[kind](
        id=alert_id(seat.election, subject or seat.ons_id, kind, seat.revision if revision is None else revision),
        kind=kind,
        election=seat.election,
        ons_id=seat.ons_id,
        constituency=seat.constituency,
        headline=headline,
        facts=facts,
        declaration=DeclarationRef(ons_id=seat.ons_id, revision=seat.revision, declared_at=seat.declared_at),
        occurred_at=seat.declared_at,
        provenance=seat.provenance,
    )


def _alert(change: SeatChange, kind: AlertKind, headline: str, facts: Facts, subject: str | None = None) -> Alert:
    return seat_alert(change.seat, kind, headline, facts, subject)


def _who(candidate: Candidate) -> str:
    return f"{candidate.name} ({candidate.party})"


def _votes(candidate: CandidateResult) -> str:
    return f"{candidate.votes:,} ({candidate.share:.1%})"


def _score(seat: SeatResult) -> str:
    """Winner's votes (and share) to the runner-up's, as a reporter quotes a result."""
    if seat.runner_up is None:
        return f"{_votes(seat.winner)}, unopposed"
    return f"{_votes(seat.winner)} to {_votes(seat.runner_up)}"


def _swing_text(swing: Swing | None) -> str:
    return f"; swing {swing_phrase(swing)}" if swing else ""


def _candidate_facts(role: str, candidate: CandidateResult | None) -> dict[str, Any]:
    return {
        role: candidate.name if candidate else None,
        f"{role}_party": candidate.party if candidate else None,
        f"{role}_votes": candidate.votes if candidate else None,
        f"{role}_share": candidate.share if candidate else None,
        f"{role}_share_change": candidate.share_change if candidate else None,
    }


def seat_facts(seat: SeatResult) -> dict[str, Any]:
    """What every seat alert carries (``SeatFacts``): both leading candidates' figures, turnout, change
    and swing; a kind's facts model is made from these and its own, in one validation."""
    return {
        **_candidate_facts("winner", seat.winner),
        **_candidate_facts("runner_up", seat.runner_up),
        "held_by": seat.held_by,
        "majority": seat.majority,
        "majority_share": seat.majority_share,
        "valid_votes": seat.valid_votes,
        "electorate": seat.electorate,
        "turnout": seat.turnout,
        "turnout_change": seat.turnout_change,
        "swing": seat.swing,
    }


def gain(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not change.is_gain:
        return []
    runner_up = f" to {seat.runner_up.votes:,}" if seat.runner_up else ", unopposed"
    headline = (
        f"{seat.winning_party} GAIN {seat.constituency} from {seat.held_by}: "
        f"{seat.winner.name} {_votes(seat.winner)}{runner_up}{_swing_text(seat.swing)}"
    )
    return [_alert(change, AlertKind.GAIN, headline, SeatFacts(**seat_facts(seat)))]


def independent_gain(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not (change.is_gain and seat.winner.party == INDEPENDENT):
        return []
    headline = f"Independent {seat.winner.name} takes {seat.constituency} from {seat.held_by}: " + (
        f"{_votes(seat.winner)} to {seat.runner_up.party}'s {_votes(seat.runner_up)}"
        if seat.runner_up
        else f"{_votes(seat.winner)}, unopposed"
    )
    return [_alert(change, AlertKind.INDEPENDENT_GAIN, headline, SeatFacts(**seat_facts(seat)))]


def incumbent_defeated(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    alerts = []
    for candidate in seat.candidates:
        if candidate.sitting_mp and candidate.identity != seat.winner.identity:
            facts = IncumbentDefeatedFacts(
                **seat_facts(seat),
                defeated=candidate.name,
                defeated_party=candidate.party,
                defeated_votes=candidate.votes,
                defeated_share=candidate.share,
                defeated_share_change=candidate.share_change,
            )
            headline = (
                f"Sitting MP {_who(candidate)} defeated in {seat.constituency} by {_who(seat.winner)}: "
                f"{_votes(seat.winner)} to {_votes(candidate)}"
            )
            subject = f"{seat.ons_id}/{candidate.name.casefold()}"
            alerts.append(_alert(change, AlertKind.INCUMBENT_DEFEATED, headline, facts, subject))
    return alerts


def is_marginal(seat: SeatResult, config: RuleConfig) -> bool:
    """A contested seat won by less than the marginal line (a rush has no figures yet, so is not)."""
    return (
        seat.status == "declared"
        and seat.runner_up is not None
        and seat.majority < config.marginal_threshold(seat.valid_votes)
    )


def seat_summary_data(seat: SeatResult, config: RuleConfig) -> dict[str, Any]:
    """The seat as a map and a seat list show it (``SeatSummary``'s plain data, in its fields' order):
    winner, gain, majority, marginal, swing."""
    withdrawn = seat.status == "withdrawn"
    figures = seat.status == "declared"
    return {
        "schema_version": SCHEMA_VERSION,
        "ons_id": seat.ons_id,
        "constituency": seat.constituency,
        "status": seat.status,
        "party": None if withdrawn else seat.winning_party,
        "gain": not withdrawn and bool(seat.held_by) and seat.winning_party != seat.held_by,
        "held_by": seat.held_by,
        "majority": seat.majority if figures else None,
        "majority_share": seat.majority_share if figures else None,
        "marginal": is_marginal(seat, config),
        "swing": seat.swing if figures else None,
        "declared_at": seat.declared_at,
        "revision": seat.revision,
        "weight": seat.tally_weight,
    }


def seat_summary(seat: SeatResult, config: RuleConfig) -> SeatSummary:
    """The seat's summary, validated."""
    return SeatSummary.model_validate(seat_summary_data(seat, config))


def seat_summary_json(seat: SeatResult, config: RuleConfig) -> bytes:
    """What ``seat_summary(...).model_dump_json()`` writes, serialised from the plain data by pydantic-core
    (every field is read off a seat result already validated): the sink writes one per seat. Half the
    model's cost on the 2024 night's seats (timeit); tests/unit/test_rules.py holds the bytes equal."""
    return to_json(seat_summary_data(seat, config))


def marginal(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if seat.runner_up is None or seat.majority >= config.marginal_threshold(seat.valid_votes):
        return []
    headline = (
        f"Marginal: {_who(seat.winner)} wins {seat.constituency} by {seat.majority:,} over {_who(seat.runner_up)}: "
        f"{_score(seat)}"
    )
    return [_alert(change, AlertKind.MARGINAL, headline, SeatFacts(**seat_facts(seat)))]


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
            facts = NearUpsetFacts(
                **seat_facts(seat),
                challenger=challenger.name,
                challenger_party=challenger.party,
                challenger_votes=challenger.votes,
                challenger_share=challenger.share,
                gap=gap,
            )
            headline = (
                f"Near upset: {_who(seat.winner)} holds {seat.constituency} by {gap:,} over {_who(challenger)}: "
                f"{_votes(seat.winner)} to {_votes(challenger)}"
            )
            return [_alert(change, AlertKind.NEAR_UPSET, headline, facts)]
    return []


def big_swing(change: SeatChange, config: RuleConfig) -> list[Alert]:
    """A seat whose two-party swing (either way) reaches the threshold."""
    seat, swing = change.seat, change.seat.swing
    if swing is None or abs(swing.swing) < config.big_swing:
        return []
    towards, away = (swing.to_party, swing.from_party) if swing.swing >= 0 else (swing.from_party, swing.to_party)
    facts = BigSwingFacts(**seat_facts(seat), swing_from=away, swing_to=towards, swing_size=abs(swing.swing))
    headline = f"Big swing in {seat.constituency}: {swing_phrase(swing)}; {_who(seat.winner)} {_score(seat)}"
    return [_alert(change, AlertKind.BIG_SWING, headline, facts)]


def data_flaw(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat = change.seat
    if not seat.flaws:
        return []
    headline = f"Data flaw in {seat.constituency}: {seat.flaws[0]}"
    return [_alert(change, AlertKind.DATA_FLAW, headline, DataFlawFacts(**seat_facts(seat), flaws=seat.flaws))]


def correction_facts(
    seat: SeatResult, before: SeatResult, vote_changes: dict[str, int], rushed_party: str | None = None
) -> CorrectionFacts:
    """The facts of a correction of ``before`` (a result, or a rush: ``rushed_party``) by ``seat``."""
    return CorrectionFacts(
        **seat_facts(seat),
        previous_revision=before.revision,
        revision=seat.revision,
        previous_winner=before.winner.name,
        previous_winner_party=before.winning_party,
        previous_majority=before.majority,
        vote_changes=vote_changes,
        rushed_party=rushed_party,
    )


def correction(change: SeatChange, config: RuleConfig) -> list[Alert]:
    seat, before = change.seat, change.previous
    if before is None:
        return []
    votes_before = {p.identity: p.votes for p in before.candidates}
    changed = {c.name: c.votes - votes_before.get(c.identity, 0) for c in seat.candidates}
    facts = correction_facts(seat, before, {name: delta for name, delta in changed.items() if delta})
    if before.winner.identity != seat.winner.identity:
        headline = f"CORRECTION {seat.constituency}: winner now {_who(seat.winner)}, was {_who(before.winner)}"
    else:
        headline = (
            f"Correction {seat.constituency} (revision {seat.revision}): {_who(seat.winner)}, "
            f"majority {seat.majority:,} (was {before.majority:,})"
        )
    return [_alert(change, AlertKind.CORRECTION, headline, facts)]


def hung_parliament(change: SeatChange, config: RuleConfig) -> list[Alert]:
    """Raised at the change after which no party can reach the majority line (once per election).

    Looks at the tally before and after, so a correction that changes a winner is judged
    exactly like a declaration; a night with a majority is never hung.
    """
    line, total = change.majority_line, change.total
    if not total:
        return []
    after_hung = is_hung(change.seats_after, total - change.declared_after, line)
    before_hung = is_hung(change.seats_before, total - change.declared_before, line)
    if not after_hung or before_hung:
        return []
    seat = change.seat
    leaders = sorted(change.seats_after.items(), key=lambda kv: (-kv[1], kv[0]))
    leaders = [(party, seats) for party, seats in leaders if seats > 0]
    remaining = total - change.declared_after
    standing = ", ".join(f"{party} {seats}" for party, seats in leaders[:3])
    headline = (
        f"Hung parliament: no party can reach {line} seats ({standing}; {remaining} to declare), "
        f"with {seat.constituency}"
    )
    facts = HungParliamentFacts(
        majority_line=line,
        largest_party=leaders[0][0] if leaders else None,
        largest_party_seats=leaders[0][1] if leaders else 0,
        seats=dict(leaders),
        declared=change.declared_after,
        remaining=remaining,
        deciding_seat=seat.constituency,
    )
    alert = _alert(change, AlertKind.HUNG_PARLIAMENT, headline, facts)
    return [alert.model_copy(update={"id": alert_id(seat.election, "night", AlertKind.HUNG_PARLIAMENT)})]


def majority_reached(change: SeatChange, config: RuleConfig) -> list[Alert]:
    line = change.majority_line
    for party, seats in change.seats_after.items():
        if seats >= line and change.seats_before.get(party, 0) < line:
            seat = change.seat
            headline = f"{party} reaches a majority: {seats} of the {line} seats needed, with {seat.constituency}"
            facts = MajorityReachedFacts(party=party, seats=seats, majority_line=line, clinching_seat=seat.constituency)
            alert = _alert(change, AlertKind.MAJORITY_REACHED, headline, facts)
            # One per party per election, whichever declaration (or re-delivery) took it there.
            return [alert.model_copy(update={"id": alert_id(seat.election, party, AlertKind.MAJORITY_REACHED)})]
    return []


Rule = Callable[[SeatChange, RuleConfig], list[Alert]]

# Rules about the seat itself. On a correction, a kind already raised for the
# earlier revision is not raised again.
SEAT_RULES: list[Rule] = [gain, independent_gain, incumbent_defeated, marginal, near_upset, big_swing, data_flaw]
# Rules about the change or the whole night.
CHANGE_RULES: list[Rule] = [correction, majority_reached, hung_parliament]


def alert_key(alert: Alert) -> AlertKey:
    return (alert.kind, alert.facts.get("defeated"), alert.facts.get("challenger"))


def evaluate(change: SeatChange, config: RuleConfig) -> list[Alert]:
    by_rule = [(rule, rule(change, config)) for rule in SEAT_RULES]
    alerts = [alert for _, raised_now in by_rule for alert in raised_now]
    seat, previous = change.seat, change.previous
    known = change.raised.get(seat.ons_id) if change.raised is not None else None
    if change.raised is not None:
        change.raised[seat.ons_id] = (seat.revision, frozenset(alert_key(a) for a in alerts))
    if previous is not None and alerts:
        # Only a rule that raised something now can have raised it for the earlier revision too:
        # the others are not run again (the earlier revision's rules were 8% of bench.hotpath's worker),
        # and none is when the count kept what they raised for it.
        if known is not None and known[0] == previous.revision:
            raised = known[1]
        else:
            earlier = SeatChange(previous, None, change.parties_holding_seats, {}, {}, change.majority_line)
            raised = frozenset(
                alert_key(a) for rule, raised_now in by_rule if raised_now for a in rule(earlier, config)
            )
        alerts = [a for a in alerts if alert_key(a) not in raised]
    return alerts + [alert for rule in CHANGE_RULES for alert in rule(change, config)]


def recount(notice: RecountNotice, constituency: str | None) -> Alert:
    name = notice.constituency or constituency or notice.ons_id
    reason = f": {notice.reason}" if notice.reason else ""
    return Alert.of_kind[AlertKind.RECOUNT](
        id=alert_id(notice.election, notice.ons_id, AlertKind.RECOUNT, notice.announced_at.isoformat()),
        kind=AlertKind.RECOUNT,
        election=notice.election,
        ons_id=notice.ons_id,
        constituency=name,
        headline=f"Recount in {name}{reason}",
        facts=RecountFacts(reason=notice.reason),
        occurred_at=notice.announced_at,
    )


def seat_change(
    tally: Tally,
    previous: SeatResult | None,
    seat: SeatResult,
    parties_holding_seats: frozenset[str],
    raised: RaisedBySeat | None = None,
) -> SeatChange:
    """Apply a seat's result to the tally and describe the change for the rules (``raised``: see ``evaluate``)."""
    before, declared_before = dict(tally.seats), tally.declared
    tally.apply(previous, seat)
    return SeatChange(
        seat,
        previous,
        parties_holding_seats,
        before,
        dict(tally.seats),
        tally.majority_line,
        declared_before,
        tally.declared,
        tally.total,
        raised,
    )
