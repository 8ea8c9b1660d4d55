"""Results and tallies the worker publishes, and the dead-letter record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tallyroom.schemas.alerts import Alert, Provenance
from tallyroom.schemas.common import SCHEMA_VERSION, STRICT, ElectionId, OnsId, Timestamp
from tallyroom.schemas.events import Candidate


class SeatResult(BaseModel):
    """The latest accepted result of one seat."""

    model_config = STRICT

    election: ElectionId
    ons_id: OnsId
    constituency: str
    nation: str | None = None
    region: str | None = None
    revision: int
    declared_at: Timestamp
    winner: Candidate
    runner_up: Candidate | None
    majority: int = Field(description="winner's votes minus the runner-up's")
    valid_votes: int = Field(description="sum of the candidates' votes")
    electorate: int | None = None
    held_by: str | None = Field(None, description="party that held the seat before the night")
    party_votes: dict[str, int] = Field(description="votes by party; independents summed under 'Ind'")
    candidates: list[Candidate]
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


class PartyTally(BaseModel):
    model_config = STRICT

    party: str
    seats: int
    votes: int
    share: float = Field(description="share of valid votes in declared seats, 0..1")
    gains: int
    losses: int
    held_before: int = Field(description="seats held before the night, among all seats")

    @property
    def net(self) -> int:
        return self.gains - self.losses


class TallySnapshot(BaseModel):
    """The running tally of an election after one change."""

    model_config = STRICT

    schema_version: int = SCHEMA_VERSION
    election: ElectionId
    version: int = Field(description="grows with every accepted declaration; larger is newer")
    declared: int
    total: int
    majority_line: int
    valid_votes: int
    parties: dict[str, PartyTally]
    as_of: Timestamp | None = None


class ResultUpdate(BaseModel):
    """One message on the results topic: what one event changed, in order.

    The alerts ride along with the seat and tally they came from, so a reader
    that has seen a tally has also seen every alert raised up to it.
    """

    model_config = STRICT

    election: ElectionId
    alerts: list[Alert] = Field(default_factory=list)
    seat: SeatResult | None = None
    tally: TallySnapshot | None = None


class DeadLetter(BaseModel):
    """An event the worker refused, with the reason, so that nothing vanishes silently."""

    model_config = STRICT

    schema_version: int = SCHEMA_VERSION
    topic: str
    partition: int
    offset: int
    key: str | None
    raw: str = Field(description="the payload as text (undecodable bytes escaped), truncated")
    reason: str
    errors: list[dict[str, Any]] = Field(default_factory=list)
    received_at: Timestamp
