"""Events on the declarations topic: a night opening, declarations, recounts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StringConstraints, TypeAdapter, field_validator, model_validator

from tallyroom.schemas.common import (
    SCHEMA_VERSION,
    Count,
    DeclaredLabel,
    ElectionId,
    Fraction,
    Name,
    OnsId,
    PartyCode,
    Record,
    Revision,
    SchemaVersion,
    Timestamp,
)
from tallyroom.schemas.parties import INDEPENDENT

# Where an event was entered. Absent on events stored before provenance was recorded.
Source = Literal["replay", "cli", "http", "console"]
ENTERED_BY_DESCRIPTION = "the operator who entered it; set by the producer (live entry overwrites what a sender claims)"

# Limits guard the worker against absurd payloads; deployments may lower them.
MAX_CANDIDATES = 100
MAX_SEATS = 50_000


class Candidate(Record):
    name: DeclaredLabel
    party: DeclaredLabel = Field(description="party abbreviation, e.g. Lab; 'Ind' for an independent")
    party_name: DeclaredLabel | None = None
    votes: Count
    # Strict: lax pydantic would read "yes", "off" and 1 as booleans.
    sitting_mp: StrictBool = False
    former_mp: StrictBool = False

    @property
    def is_independent(self) -> bool:
        return self.party == INDEPENDENT

    @property
    def identity(self) -> tuple[str, str]:
        """Who this candidate is: independents are told apart by name, never pooled."""
        return (self.party, self.name.casefold())


class Nominee(Record):
    """A candidate standing in a seat, known before the count (the nominations)."""

    name: Name
    party: PartyCode
    party_name: Name | None = None
    sitting_mp: StrictBool = False
    former_mp: StrictBool = False

    @classmethod
    def standing(cls, candidate: Candidate) -> Nominee:
        """The nomination of a candidate whose votes are known (a past night's)."""
        return cls(**candidate.model_dump(exclude={"votes"}))


class PreviousResult(Record):
    """A seat's figures at the previous election, what change and swing are measured against."""

    shares: dict[PartyCode, Fraction] = Field(
        default_factory=dict,
        description="each party's share of valid votes last time, 0..1 (independents never: each stands alone)",
    )
    turnout: Fraction | None = Field(None, description="valid votes / electorate last time")
    valid_votes: Count | None = Field(None, description="valid votes last time, when known (weights national change)")


class SeatBaseline(Record):
    ons_id: OnsId
    constituency: Name
    held_by: PartyCode | None = Field(None, description="party that held the seat before the night")
    previous: PreviousResult | None = Field(None, description="the previous election's figures, when known")
    expected_at: Timestamp | None = Field(
        None, description="when the seat is expected to declare, where a timetable is known"
    )
    candidates: list[Nominee] = Field(
        default_factory=list,
        max_length=MAX_CANDIDATES,
        description="the nominations; live entry refuses a declaration naming others, or leaving one out",
    )


class EventHeader(Record):
    """What every event on the declarations topic starts with: its kind, the contract's version,
    the election, and who entered it how. ``kind`` is each event's own literal (the discriminator);
    declared here first, it keeps its place first in every event's JSON."""

    kind: str
    schema_version: SchemaVersion = SCHEMA_VERSION
    election: ElectionId
    entered_by: Name | None = Field(None, description=ENTERED_BY_DESCRIPTION)
    source: Source | None = Field(None, description="how it was entered: replay, cli, http or console")


class SeatEvent(EventHeader):
    """An event about one seat: a declaration, a recount, a rush or a withdrawal."""

    ons_id: OnsId


class NightOpened(EventHeader):
    """Opens an election: the seats in play and who held each before the night."""

    kind: Literal["night"] = "night"
    title: Name | None = None
    opened_at: Timestamp
    seats: list[SeatBaseline] = Field(min_length=1, max_length=MAX_SEATS)

    @field_validator("seats")
    @classmethod
    def _seats_unique(cls, seats: list[SeatBaseline]) -> list[SeatBaseline]:
        seen: set[str] = set()
        for seat in seats:
            if seat.ons_id in seen:
                raise ValueError(f"seat {seat.ons_id} appears twice")
            seen.add(seat.ons_id)
        return seats

    @property
    def total_seats(self) -> int:
        return len(self.seats)


class Declaration(SeatEvent):
    """A returning officer's declaration of one seat's result."""

    kind: Literal["declaration"] = "declaration"
    revision: Revision = Field(1, description="a later revision of the same seat replaces an earlier one")
    constituency: Name
    nation: Name | None = None
    region: Name | None = None
    declared_at: Timestamp
    electorate: Count | None = None
    valid_votes: Count | None = Field(None, description="if given, must equal the candidates' sum")
    invalid_votes: Count | None = None
    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    flaws: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list,
        max_length=20,
        description="flaws found in the published source, kept for operators",
    )

    @field_validator("candidates")
    @classmethod
    def _candidates_unique(cls, candidates: list[Candidate]) -> list[Candidate]:
        seen: set[tuple[str, str]] = set()
        for candidate in candidates:
            identity = candidate.identity
            if identity in seen:
                raise ValueError(f"candidate {candidate.name!r} ({candidate.party}) appears twice")
            seen.add(identity)
        return candidates

    @model_validator(mode="after")
    def _valid_votes_match(self) -> Declaration:
        if self.valid_votes is not None and self.valid_votes != self.candidate_votes:
            raise ValueError(f"valid_votes {self.valid_votes} differs from the candidates' sum {self.candidate_votes}")
        return self

    @property
    def candidate_votes(self) -> int:
        return sum(c.votes for c in self.candidates)


class RecountNotice(SeatEvent):
    """A recount has been called for a seat (before or after a declaration)."""

    kind: Literal["recount"] = "recount"
    constituency: Name | None = None
    announced_at: Timestamp
    reason: Annotated[str, Field(max_length=500)] | None = None


class Rush(SeatEvent):
    """A seat's winner, flashed before its figures; the full declaration replaces it."""

    kind: Literal["rush"] = "rush"
    constituency: Name | None = None
    party: PartyCode = Field(description="the winning party")
    candidate: Name | None = Field(None, description="the winning candidate, when known")
    announced_at: Timestamp


class Withdrawal(SeatEvent):
    """A seat's result withdrawn (admin only): the seat is undeclared again until a later revision."""

    kind: Literal["withdrawal"] = "withdrawal"
    revision: Annotated[int, Field(strict=True, ge=2, le=1_000_000)] = Field(
        description="newer than the revision it withdraws; a re-declaration must be newer still"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    withdrawn_at: Timestamp


AnyEvent = NightOpened | Declaration | RecountNotice | Rush | Withdrawal
ElectionEvent = Annotated[AnyEvent, Field(discriminator="kind")]
_event_adapter: TypeAdapter[ElectionEvent] = TypeAdapter(ElectionEvent)


def parse_event(raw: bytes | str) -> AnyEvent:
    """Parse one JSON event; raises pydantic.ValidationError naming the field."""
    return _event_adapter.validate_json(raw)
