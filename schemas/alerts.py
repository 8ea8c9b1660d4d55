"""Alerts: what Tallyroom flags for newsrooms and subscribers.

``ALERT_KINDS`` is the one registry of alert kinds: each kind's label, colour,
short description and the model of the facts it carries. The web page, ``tallyroom watch``,
the JSON Schema (a union of the kinds, told apart by ``kind``) and the README's table of kinds
are all drawn from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictBool,
    ValidationInfo,
    create_model,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import CoreSchema

from tallyroom.schemas.common import (
    SCHEMA_VERSION,
    Count,
    ElectionId,
    Fraction,
    FractionChange,
    OnsId,
    Record,
    Revision,
    SchemaVersion,
    Swing,
    Tallied,
    Timestamp,
    is_stored,
)


class AlertKind(StrEnum):
    GAIN = "gain"
    INDEPENDENT_GAIN = "independent_gain"
    INCUMBENT_DEFEATED = "incumbent_defeated"
    MARGINAL = "marginal"
    NEAR_UPSET = "near_upset"
    MAJORITY_REACHED = "majority_reached"
    HUNG_PARLIAMENT = "hung_parliament"
    BIG_SWING = "big_swing"
    CORRECTION = "correction"
    RECOUNT = "recount"
    DATA_FLAW = "data_flaw"
    RUSH = "rush"
    WITHDRAWN = "withdrawn"


class Facts(Record):
    """What an alert says, as data: each kind has its own model, named by its registry entry.

    A fact is read by attribute, or by its name as the registry gives it (``facts.get("winner_party")``,
    ``facts["gap"]``): the facts were a JSON object before they were typed, and still are on the wire.
    """

    def get(self, name: str, default: Any = None) -> Any:
        # A fact is a field (in the instance's __dict__) or, on stored facts, an extra. Not getattr:
        # a name the kind lacks went through pydantic's __getattr__ and an AttributeError, and the
        # rules ask every alert for facts that only some kinds have (4% of bench.hotpath's worker).
        facts = self.__dict__
        if name in facts:
            return facts[name]
        extra = self.__pydantic_extra__
        return extra.get(name, default) if extra else default

    def __getitem__(self, name: str) -> Any:
        if name not in type(self).model_fields and name not in (self.model_extra or {}):
            raise KeyError(name)
        return getattr(self, name)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)


class StoredFacts(Facts):
    """The facts of an alert stored by another release that its kind's model does not take as they are
    (an older release carried fewer, a newer one may carry more): kept as stored, never refused.
    Only ever read with the ``STORED`` context; never in the JSON Schema (Tallyroom writes none)."""

    model_config = ConfigDict(extra="allow", frozen=True)


def _only_stored(value: StoredFacts, info: ValidationInfo) -> StoredFacts:
    if not is_stored(info):
        raise ValueError("facts that do not fit the kind's model are only read from storage")
    return value


class SeatFacts(Facts):
    """What every alert about one seat's result carries: both leading candidates, turnout, change, swing.

    ``runner_up*`` are null when the winner was unopposed; a ``*_share_change`` is null for an
    independent and for a party that did not stand last time.
    """

    winner: str
    winner_party: str
    winner_votes: Count
    winner_share: Fraction
    winner_share_change: FractionChange | None
    runner_up: str | None
    runner_up_party: str | None
    runner_up_votes: Count | None
    runner_up_share: Fraction | None
    runner_up_share_change: FractionChange | None
    held_by: str | None
    majority: Tallied
    majority_share: Fraction
    valid_votes: Tallied
    electorate: Count | None
    turnout: Fraction | None
    turnout_change: FractionChange | None
    swing: Swing | None


class IncumbentDefeatedFacts(SeatFacts):
    defeated: str
    defeated_party: str
    defeated_votes: Count
    defeated_share: Fraction
    defeated_share_change: FractionChange | None


class NearUpsetFacts(SeatFacts):
    challenger: str
    challenger_party: str
    challenger_votes: Count
    challenger_share: Fraction
    gap: Count = Field(description="the winner's votes minus the challenger's")


class MajorityReachedFacts(Facts):
    party: str
    seats: Count
    majority_line: Count
    clinching_seat: str = Field(description="the constituency that took the party to the line")


class HungParliamentFacts(Facts):
    majority_line: Count
    largest_party: str | None
    largest_party_seats: Count
    seats: dict[str, Count] = Field(description="party -> seats, each party with any")
    declared: Count
    remaining: Count
    deciding_seat: str = Field(description="the constituency after which no party can reach the line")


class BigSwingFacts(SeatFacts):
    swing_from: str
    swing_to: str
    swing_size: Fraction = Field(description="the swing's size, in the direction it ran")


class RushFacts(Facts):
    winner_party: str
    winner: str | None = Field(description="the winning candidate, when the rush named one")
    held_by: str | None
    gain: StrictBool


class WithdrawnFacts(Facts):
    reason: str | None
    withdrawn_revision: Tallied = Field(description="the revision withdrawn (0 for a rush before any declaration)")
    withdrawn_status: Literal["declared", "rush", "withdrawn"]
    previous_winner_party: str
    revision: Revision


class CorrectionFacts(SeatFacts):
    previous_revision: Tallied = Field(description="the revision replaced (0 for a rush before any declaration)")
    revision: Revision
    previous_winner: str
    previous_winner_party: str
    previous_majority: Tallied
    vote_changes: dict[str, int] = Field(description="candidate -> votes now minus before, for each that changed")
    rushed_party: str | None = Field(description="the party a rush named, when the correction contradicts a rush")


class RecountFacts(Facts):
    reason: str | None


class DataFlawFacts(SeatFacts):
    flaws: list[str]


@dataclass(frozen=True)
class KindInfo:
    """How one alert kind is shown and what it says.

    ``facts`` is the model of the facts it carries (its fields are the facts' names).
    ``colour`` is a name CSS and Rich both know; ``None`` means the alert is drawn
    in the colour of the party its ``party_fact`` names. ``emphasis`` is how hard
    it shouts: ``loud`` (reversed), ``strong`` (bold), ``quiet`` (dim) or ``plain``.
    """

    label: str
    colour: str | None
    description: str
    facts: type[Facts]
    party_fact: str | None = None
    emphasis: Literal["loud", "strong", "plain", "quiet"] = "plain"

    @property
    def fact_names(self) -> tuple[str, ...]:
        return self.facts.names()


ALERT_KINDS: dict[AlertKind, KindInfo] = {
    AlertKind.GAIN: KindInfo(
        label="Gain",
        colour=None,
        description="a seat won by a party other than the one that held it",
        facts=SeatFacts,
        party_fact="winner_party",
        emphasis="strong",
    ),
    AlertKind.INDEPENDENT_GAIN: KindInfo(
        label="Independent gain",
        colour="white",
        description="an independent candidate takes a seat from a party",
        facts=SeatFacts,
        party_fact="winner_party",
        emphasis="loud",
    ),
    AlertKind.INCUMBENT_DEFEATED: KindInfo(
        label="MP defeated",
        colour="red",
        description="a sitting MP loses their seat (one alert per defeated MP)",
        facts=IncumbentDefeatedFacts,
        party_fact="winner_party",
        emphasis="loud",
    ),
    AlertKind.MARGINAL: KindInfo(
        label="Marginal",
        colour="yellow",
        description="a majority under TALLYROOM_MARGINAL_VOTES votes or TALLYROOM_MARGINAL_SHARE of valid votes",
        facts=SeatFacts,
        party_fact="winner_party",
    ),
    AlertKind.NEAR_UPSET: KindInfo(
        label="Near upset",
        colour="yellow",
        description="the holder survives, but an independent or a party holding no seats came within the marginal line",
        facts=NearUpsetFacts,
        party_fact="winner_party",
    ),
    AlertKind.MAJORITY_REACHED: KindInfo(
        label="Majority",
        colour="green",
        description="a party reaches the majority line (once per party per election)",
        facts=MajorityReachedFacts,
        party_fact="party",
        emphasis="strong",
    ),
    AlertKind.HUNG_PARLIAMENT: KindInfo(
        label="Hung parliament",
        colour="green",
        description="no party can reach the majority line even winning every seat still to declare (once per election)",
        facts=HungParliamentFacts,
        party_fact="largest_party",
        emphasis="strong",
    ),
    AlertKind.BIG_SWING: KindInfo(
        label="Big swing",
        colour="cyan",
        description="a seat's two-party swing since last time reaches TALLYROOM_BIG_SWING",
        facts=BigSwingFacts,
        party_fact="swing_to",
    ),
    AlertKind.RUSH: KindInfo(
        label="Rush",
        colour=None,
        description="a seat's winner flashed before its figures: a gain or hold judged against the baseline",
        facts=RushFacts,
        party_fact="winner_party",
    ),
    AlertKind.WITHDRAWN: KindInfo(
        label="Withdrawn",
        colour="magenta",
        description="a seat's result withdrawn by an admin: the seat is undeclared until a later revision",
        facts=WithdrawnFacts,
        emphasis="loud",
    ),
    AlertKind.CORRECTION: KindInfo(
        label="Correction",
        colour="magenta",
        description="a seat's result is declared again with a higher revision",
        facts=CorrectionFacts,
        party_fact="winner_party",
    ),
    AlertKind.RECOUNT: KindInfo(
        label="Recount",
        colour="magenta",
        description="a recount is announced in a seat",
        facts=RecountFacts,
    ),
    AlertKind.DATA_FLAW: KindInfo(
        label="Data flaw",
        colour="red",
        description="the published total or majority disagrees with the candidates' votes",
        facts=DataFlawFacts,
        emphasis="quiet",
    ),
}


def kinds_table() -> str:
    """The README's table of alert kinds (a unit test keeps the README's copy current)."""
    rows = ["| kind | label | what it means | facts |", "| --- | --- | --- | --- |"]
    for kind, info in ALERT_KINDS.items():
        facts = ", ".join(f"`{name}`" for name in info.fact_names)
        rows.append(f"| `{kind.value}` | {info.label} | {info.description} | {facts} |")
    return "\n".join(rows) + "\n"


class DeclarationRef(Record):
    """Which declaration an alert came from."""

    ons_id: OnsId
    revision: Tallied = Field(description="0 for a rush before any declaration")
    declared_at: Timestamp


class Provenance(Record):
    """Who entered the event a seat result or alert came from, how, and which Kafka record it was."""

    entered_by: str | None = None
    source: str | None = None
    topic: str
    partition: Tallied
    offset: Tallied


class Alert(Record):
    """An alert: what Tallyroom flags, with the facts of its kind.

    ``Alert`` is a discriminated union on ``kind``: each kind has its own model (``GainAlert``,
    ``CorrectionAlert``, ... made from ``ALERT_KINDS``), whose ``facts`` is the kind's model.
    ``Alert(kind=..., facts=...)``, ``Alert.model_validate_json``, ``read_stored(Alert, ...)`` and a
    ``list[Alert]`` field all give the kind's model; the JSON Schema is a ``oneOf`` of the kinds.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    id: str = Field(description="stable across re-processing: derived from election, subject, kind, revision")
    kind: AlertKind
    election: ElectionId
    ons_id: OnsId | None = None
    constituency: str | None = None
    headline: str
    facts: Facts
    declaration: DeclarationRef | None = None
    occurred_at: Timestamp = Field(description="when it happened on the night (event time)")
    provenance: Provenance | None = Field(None, description="the event it came from (absent on older alerts)")

    # Each kind's model, set below once they are made (only on Alert itself, never on a kind's model).
    of_kind: ClassVar[dict[AlertKind, type[Alert]]] = {}

    def __new__(cls, *args: Any, **data: Any) -> Alert:
        # Alert(kind=..., ...) makes the kind's model: the facts are checked against the kind's, once.
        kinds = cls.__dict__.get("of_kind")
        if kinds and "kind" in data:
            cls = kinds[AlertKind(data["kind"])]
        return super().__new__(cls)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[BaseModel], handler: GetCoreSchemaHandler) -> CoreSchema:
        # On Alert itself (once its kinds exist), the union of the kinds' models, told apart by kind.
        kinds = cls.__dict__.get("of_kind")
        if kinds:
            union = Union[tuple(kinds.values())]  # type: ignore[valid-type]  # noqa: UP007
            return handler.generate_schema(Annotated[union, Field(discriminator="kind")])
        return handler(source)


def _kind_model(kind: AlertKind, info: KindInfo) -> type[Alert]:
    # Made at run time from the registry (so a new kind is one entry): typed as Any for mypy.
    # facts: the kind's own, or (read from storage only) the facts another release stored.
    fields: dict[str, Any] = {
        "kind": (Literal[kind], ...),
        "facts": (
            Annotated[
                Union[info.facts, SkipJsonSchema[Annotated[StoredFacts, AfterValidator(_only_stored)]]],  # noqa: UP007
                Field(union_mode="left_to_right"),
            ],
            ...,
        ),
    }
    name = "".join(part.title() for part in kind.value.split("_")) + "Alert"
    return create_model(name, __base__=Alert, __doc__=f"{info.label}: {info.description}.", **fields)


Alert.of_kind = {kind: _kind_model(kind, info) for kind, info in ALERT_KINDS.items()}
Alert.model_rebuild(force=True)


def alert_id(election: str, subject: str, kind: AlertKind | str, revision: int | str = "") -> str:
    """Deterministic id, so that re-processing an event never makes a second alert."""
    material = f"{election}|{subject}|{kind}|{revision}".encode()
    return hashlib.sha256(material).hexdigest()[:24]
