"""Change since the previous election: shares, turnout, share change, Butler swing.

Pure functions, no I/O. Shares are fractions of valid votes (0..1), changes in fraction points,
as in the House of Commons Library's own ``Share`` and ``Change`` columns. An independent has no
share change and no swing: each stands alone, so there is no "Ind" last time to compare with.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping

from tallyroom.schemas import Candidate, PreviousResult, Swing
from tallyroom.schemas.parties import INDEPENDENT, PARTY_PREDECESSORS

# Published figures are rounded to this many places (the Library's own use 6).
PLACES = 6


def rounded(value: float) -> float:
    """Rounded to the published places; + 0.0 turns a -0.0 into 0.0."""
    return round(value, PLACES) + 0.0


def fraction(part: float, whole: float) -> float:
    return rounded(part / whole) if whole else 0.0


def turnout(valid_votes: int, electorate: int | None) -> float | None:
    """Valid votes over the electorate; None when the electorate is unknown (or nil)."""
    return fraction(valid_votes, electorate) if electorate else None


def party_shares(party_votes: Mapping[str, int], valid_votes: int) -> dict[str, float]:
    """Each party's share of the seat's valid votes, unrounded (independents under 'Ind'); 0 for every
    party of a seat with no votes at all (the schema takes one: the fuzz corpus found it)."""
    return {party: votes / valid_votes if valid_votes else 0.0 for party, votes in party_votes.items()}


def previous_share(party: str, previous: PreviousResult | None) -> float | None:
    """The party's share last time: its own, or its predecessor's (a renamed party); None for an
    independent, without previous figures, or for a party that did not stand."""
    if previous is None or party == INDEPENDENT:
        return None
    if party in previous.shares:
        return previous.shares[party]
    predecessor = PARTY_PREDECESSORS.get(party)
    return previous.shares.get(predecessor) if predecessor else None


def share_change(party: str, share: float, previous: PreviousResult | None) -> float | None:
    before = previous_share(party, previous)
    return None if before is None else rounded(share - before)


def turnout_change(now: float | None, previous: PreviousResult | None) -> float | None:
    if now is None or previous is None or previous.turnout is None:
        return None
    return rounded(now - previous.turnout)


def butler_swing(
    from_party: str, to_party: str, shares: Mapping[str, float], previous: PreviousResult | None
) -> Swing | None:
    """Swing from one party to another: half of (to's change in share minus from's change).

    A party not standing this time has share 0 now; one without a share last time (or an
    independent) leaves the swing unknown.
    """
    if from_party == to_party:
        return None
    before_from, before_to = previous_share(from_party, previous), previous_share(to_party, previous)
    if before_from is None or before_to is None:
        return None
    rise = shares.get(to_party, 0.0) - before_to
    fall = shares.get(from_party, 0.0) - before_from
    return Swing(from_party=from_party, to_party=to_party, swing=rounded((rise - fall) / 2))


def seat_swing(
    winner_party: str, runner_up_party: str | None, held_by: str | None, shares: Mapping[str, float], previous
) -> Swing | None:
    """The seat's swing: from the holder to the winner on a gain, from the winner to the runner-up on a hold."""
    if held_by and held_by != winner_party:
        return butler_swing(held_by, winner_party, shares, previous)
    if runner_up_party is None:
        return None
    return butler_swing(winner_party, runner_up_party, shares, previous)


def swing_phrase(swing: Swing, name: Callable[[str], str] = str) -> str:
    """ "4.5% from Con to Lab": the size, in the direction the swing ran (each party as ``name`` gives it)."""
    if swing.swing < 0:
        return f"{-swing.swing:.1%} from {name(swing.to_party)} to {name(swing.from_party)}"
    return f"{swing.swing:.1%} from {name(swing.from_party)} to {name(swing.to_party)}"


# --- previous figures, from the two sources a baseline has -------------------------------------


def previous_from_votes(candidates: Iterable[Candidate], electorate: int | None) -> PreviousResult:
    """A seat's previous figures from that election's own candidates (``tallyroom baseline --previous``)."""
    votes: Counter[str] = Counter()
    valid = 0
    for candidate in candidates:
        valid += candidate.votes
        if not candidate.is_independent:
            votes[candidate.party] += candidate.votes
    shares = {party: round(v / valid, 10) for party, v in votes.items()} if valid else {}
    # An electorate below the votes cast is a flaw of that file: its turnout is then unknown.
    turnout = round(valid / electorate, 10) if electorate and valid <= electorate else None
    return PreviousResult(shares=shares, turnout=turnout, valid_votes=valid)


def previous_from_share_change(rows: Iterable[tuple[str, float, float | None]]) -> PreviousResult | None:
    """A seat's previous shares from this election's (party, share, change) rows: share - change.

    Rows without a change (a party new this time) and independents give nothing; a seat with no
    change at all has no previous figures.
    """
    shares: dict[str, float] = {}
    for party, share, change in rows:
        if change is None or party == INDEPENDENT:
            continue
        # Clamped: a party that lost its whole share rounds to -0.0000001 at worst.
        shares[party] = shares.get(party, 0.0) + min(1.0, max(0.0, round(share - change, 10)))
    return PreviousResult(shares=shares) if shares else None


def largest_parties(previous: Iterable[PreviousResult | None], count: int = 2) -> list[str]:
    """The parties with most votes last time over these seats (weighted by valid votes when known)."""
    totals: dict[str, float] = defaultdict(float)
    for figures in previous:
        if figures is None:
            continue
        weight = figures.valid_votes or 1
        for party, share in figures.shares.items():
            totals[party] += share * weight
    return [party for party, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]
