"""Results and tallies the worker publishes, and the dead-letter record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from tallyroom.schemas.alerts import Alert, Provenance
from tallyroom.schemas.common import (
    SCHEMA_VERSION,
    CopiedLabel,
    Count,
    ElectionId,
    Fraction,
    FractionChange,
    OnsId,
    Record,
    SchemaVersion,
    Swing,
    Tallied,
    Timestamp,
)
from tallyroom.schemas.events import Candidate

__all__ = ["CandidateResult", "DeadLetter", "PartyTally", "ResultUpdate", "SeatResult", "Swing", "TallySnapshot"]


class CandidateResult(Candidate):
    """A candidate as counted: the declared figures plus the ones worked out from them."""

    # Copied from the declared candidate, whose labels were checked against the live-entry bound.
    name: CopiedLabel
    party: CopiedLabel = Field(description="party abbreviation, e.g. Lab; 'Ind' for an independent")
    party_name: CopiedLabel | None = None

    share: Fraction = Field(description="of the seat's valid votes, 0..1 (the Library's Share)")
    share_change: FractionChange | None = Field(
        None,
        description=(
            "the candidate's party's share minus its share last time, in fraction points (the Library's Change); "
            "null for an independent and for a party that did not stand last time"
        ),
    )


class SeatResult(Record):
    """The latest accepted result of one seat."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    election: ElectionId
    ons_id: OnsId
    constituency: str
    nation: str | None = None
    region: str | None = None
    revision: Tallied = Field(description="the declaration's revision, >= 1; a rush before any declaration holds 0")
    declared_at: Timestamp
    winner: CandidateResult
    runner_up: CandidateResult | None
    majority: Tallied = Field(description="winner's votes minus the runner-up's")
    majority_share: Fraction = Field(0.0, description="majority / valid votes, 0..1")
    valid_votes: Tallied = Field(description="sum of the candidates' votes")
    electorate: Count | None = None
    turnout: Fraction | None = Field(
        None, description="valid votes / electorate, 0..1; null when the electorate is unknown or below the votes"
    )
    turnout_change: FractionChange | None = Field(
        None, description="turnout minus turnout last time, when both are known"
    )
    swing: Swing | None = Field(
        None,
        description=(
            "Butler swing from the party that held the seat to the winner, or on a hold from the winner to the "
            "runner-up's party; null without both parties' shares last time"
        ),
    )
    held_by: str | None = Field(None, description="party that held the seat before the night")
    party_votes: dict[str, Tallied] = Field(description="votes by party; independents summed under 'Ind'")
    candidates: list[CandidateResult]
    flaws: list[str] = Field(default_factory=list)
    provenance: Provenance | None = Field(None, description="the event it came from (absent on older results)")
    status: Literal["declared", "rush", "withdrawn"] = Field(
        "declared",
        description="rush: winner flashed, figures to follow (no votes); withdrawn: not counted until a later revision",
    )
    withdrawn_reason: str | None = None
    interim_steps: Tallied = Field(
        0, description="rushes and withdrawals the seat has been through: part of the version"
    )

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
    seats: Tallied
    votes: Tallied
    share: Fraction = Field(description="share of valid votes in declared seats, 0..1")
    share_change: FractionChange | None = Field(
        None,
        description=(
            "share minus share last time, over the declared seats with previous figures; null for independents "
            "and a party that stood in none of them last time"
        ),
    )
    gains: Tallied
    losses: Tallied
    held_before: Tallied = Field(description="seats held before the night, among all seats")

    @property
    def net(self) -> int:
        return self.gains - self.losses


class TallySnapshot(Record):
    """The running tally of an election after one change."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    election: ElectionId
    version: Tallied = Field(description="grows with every accepted declaration; larger is newer")
    declared: Tallied = Field(description="seats declared so far, at most total")
    total: Tallied = Field(description="seats in the night")
    majority_line: Tallied
    valid_votes: Tallied
    parties: dict[str, PartyTally]
    compared: Tallied = Field(0, description="declared seats with previous figures: what share_change is measured over")
    swing: Swing | None = Field(
        None, description="national Butler swing between the two largest parties of the previous election"
    )
    as_of: Timestamp | None = None

    @model_validator(mode="after")
    def _declared_within_total(self) -> TallySnapshot:
        # One check per tally (a batch's last update carries one): JSON Schema cannot compare two fields.
        if self.declared > self.total:
            raise ValueError(f"declared {self.declared} is more than the night's total {self.total}")
        return self


class NightSeat(Record):
    """One seat of the night as readers list it, declared or not (the ``tallyroom:E:night`` hash)."""

    ons_id: OnsId
    constituency: str
    expected_at: Timestamp | None = Field(None, description="when the seat is expected to declare, if known")


class SeatSummary(Record):
    """What a map or a seat list needs of one seat's latest result (the ``tallyroom:E:winners`` hash)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    ons_id: OnsId
    constituency: str
    status: Literal["declared", "rush", "withdrawn"]
    party: str | None = Field(description="the winning party; null once the result is withdrawn")
    gain: bool = Field(description="won from another party than the one that held it")
    held_by: str | None = None
    majority: Count | None = Field(None, description="null for a rush (figures to follow) or a withdrawn result")
    majority_share: Fraction | None = None
    marginal: bool = Field(False, description="a majority under the marginal line (TALLYROOM_MARGINAL_*)")
    swing: Swing | None = None
    declared_at: Timestamp
    revision: Count = Field(description="0 for a rush before any result")
    weight: Count = Field(description="revision plus rushes and withdrawals: grows with each accepted event")


class ResultUpdate(Record):
    """One message on the results topic: what one event changed, in order.

    The alerts ride along with the seat and tally they came from, so a reader
    that has seen a tally has also seen every alert raised up to it.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION

    election: ElectionId
    alerts: list[Alert] = Field(default_factory=list)
    seat: SeatResult | None = None
    tally: TallySnapshot | None = None
    night: list[NightSeat] | None = Field(
        None, description="on the night's opening (and each re-opening): every seat of the night, in its order"
    )


class DeadLetter(Record):
    """An event the worker refused, with the reason, so that nothing vanishes silently."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    topic: str
    partition: Tallied
    offset: Tallied
    key: str | None
    raw: str = Field(description="the payload as text (undecodable bytes escaped), truncated")
    reason: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
    received_at: Timestamp
