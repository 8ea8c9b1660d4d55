"""Results and tallies the worker publishes, and the dead-letter record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tallyroom.schemas.alerts import Alert, Provenance
from tallyroom.schemas.common import SCHEMA_VERSION, ElectionId, OnsId, Record, Timestamp
from tallyroom.schemas.events import Candidate


class CandidateResult(Candidate):
    """A candidate as counted: the declared figures plus the ones worked out from them."""

    share: float = Field(description="of the seat's valid votes, 0..1 (the Library's Share)")
    share_change: float | None = Field(
        None,
        description=(
            "the candidate's party's share minus its share last time, in fraction points (the Library's Change); "
            "null for an independent and for a party that did not stand last time"
        ),
    )


class Swing(Record):
    """Butler two-party swing: the average of one party's rise and the other's fall in share."""

    from_party: str
    to_party: str
    swing: float = Field(description="fraction points from from_party to to_party; negative means the other way")


class SeatResult(Record):
    """The latest accepted result of one seat."""

    schema_version: int = SCHEMA_VERSION
    election: ElectionId
    ons_id: OnsId
    constituency: str
    nation: str | None = None
    region: str | None = None
    revision: int
    declared_at: Timestamp
    winner: CandidateResult
    runner_up: CandidateResult | None
    majority: int = Field(description="winner's votes minus the runner-up's")
    majority_share: float = Field(0.0, description="majority / valid votes, 0..1")
    valid_votes: int = Field(description="sum of the candidates' votes")
    electorate: int | None = None
    turnout: float | None = Field(None, description="valid votes / electorate; null when the electorate is unknown")
    turnout_change: float | None = Field(None, description="turnout minus turnout last time, when both are known")
    swing: Swing | None = Field(
        None,
        description=(
            "Butler swing from the party that held the seat to the winner, or on a hold from the winner to the "
            "runner-up's party; null without both parties' shares last time"
        ),
    )
    held_by: str | None = Field(None, description="party that held the seat before the night")
    party_votes: dict[str, int] = Field(description="votes by party; independents summed under 'Ind'")
    candidates: list[CandidateResult]
    flaws: list[str] = Field(default_factory=list)
    provenance: Provenance | None = Field(None, description="the event it came from (absent on older results)")
    status: Literal["declared", "rush", "withdrawn"] = Field(
        "declared",
        description="rush: winner flashed, figures to follow (no votes); withdrawn: not counted until a later revision",
    )
    withdrawn_reason: str | None = None
    interim_steps: int = Field(0, description="rushes and withdrawals the seat has been through: part of the version")

    @property
    def winning_party(self) -> str:
        return self.winner.party

    @property
    def tally_weight(self) -> int:
        """What the seat adds to the tally's version: it grows with every accepted event of the seat."""
        return self.revision + self.interim_steps

    @classmethod
    def upgrade_stored(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A result stored before shares were kept (Tallyroom 0.1): shares and turnout from its own votes."""
        value = dict(value)
        candidates = [c for c in value.get("candidates", []) if isinstance(c, dict)]
        valid = value.get("valid_votes") or sum(int(c.get("votes", 0)) for c in candidates)
        for role in ("winner", "runner_up"):
            if isinstance(value.get(role), dict):
                candidates.append(value[role])
        for candidate in candidates:
            if "share" not in candidate and isinstance(candidate.get("votes"), int):
                candidate["share"] = round(candidate["votes"] / valid, 6) if valid else 0.0
        if "majority_share" not in value and isinstance(value.get("majority"), int):
            value["majority_share"] = round(value["majority"] / valid, 6) if valid else 0.0
        electorate = value.get("electorate")
        if "turnout" not in value and isinstance(electorate, int) and electorate >= valid > 0:
            value["turnout"] = round(valid / electorate, 6)
        return value


class PartyTally(Record):
    party: str
    seats: int
    votes: int
    share: float = Field(description="share of valid votes in declared seats, 0..1")
    share_change: float | None = Field(
        None,
        description=(
            "share minus share last time, over the declared seats with previous figures; null for independents "
            "and a party that stood in none of them last time"
        ),
    )
    gains: int
    losses: int
    held_before: int = Field(description="seats held before the night, among all seats")

    @property
    def net(self) -> int:
        return self.gains - self.losses


class TallySnapshot(Record):
    """The running tally of an election after one change."""

    schema_version: int = SCHEMA_VERSION
    election: ElectionId
    version: int = Field(description="grows with every accepted declaration; larger is newer")
    declared: int
    total: int
    majority_line: int
    valid_votes: int
    parties: dict[str, PartyTally]
    compared: int = Field(0, description="declared seats with previous figures: what share_change is measured over")
    swing: Swing | None = Field(
        None, description="national Butler swing between the two largest parties of the previous election"
    )
    as_of: Timestamp | None = None


class NightSeat(Record):
    """One seat of the night as readers list it, declared or not (the ``tallyroom:E:night`` hash)."""

    ons_id: OnsId
    constituency: str
    expected_at: Timestamp | None = Field(None, description="when the seat is expected to declare, if known")


class SeatSummary(Record):
    """What a map or a seat list needs of one seat's latest result (the ``tallyroom:E:winners`` hash)."""

    schema_version: int = SCHEMA_VERSION
    ons_id: OnsId
    constituency: str
    status: Literal["declared", "rush", "withdrawn"]
    party: str | None = Field(description="the winning party; null once the result is withdrawn")
    gain: bool = Field(description="won from another party than the one that held it")
    held_by: str | None = None
    majority: int | None = Field(None, description="null for a rush (figures to follow) or a withdrawn result")
    majority_share: float | None = None
    marginal: bool = Field(False, description="a majority under the marginal line (TALLYROOM_MARGINAL_*)")
    swing: Swing | None = None
    declared_at: Timestamp
    revision: int
    weight: int = Field(description="revision plus rushes and withdrawals: grows with every accepted event of the seat")


class ResultUpdate(Record):
    """One message on the results topic: what one event changed, in order.

    The alerts ride along with the seat and tally they came from, so a reader
    that has seen a tally has also seen every alert raised up to it.
    """

    schema_version: int = SCHEMA_VERSION

    election: ElectionId
    alerts: list[Alert] = Field(default_factory=list)
    seat: SeatResult | None = None
    tally: TallySnapshot | None = None
    night: list[NightSeat] | None = Field(
        None, description="on the night's opening (and each re-opening): every seat of the night, in its order"
    )


class DeadLetter(Record):
    """An event the worker refused, with the reason, so that nothing vanishes silently."""

    schema_version: int = SCHEMA_VERSION
    topic: str
    partition: int
    offset: int
    key: str | None
    raw: str = Field(description="the payload as text (undecodable bytes escaped), truncated")
    reason: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
    received_at: Timestamp
