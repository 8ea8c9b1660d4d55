"""Alerts: what Tallyroom flags for newsrooms and subscribers.

``ALERT_KINDS`` is the one registry of alert kinds: each kind's label, colour,
short description and the facts it carries. The web page, ``tallyroom watch``,
the JSON Schema and the README's table of kinds are all drawn from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from tallyroom.schemas.common import SCHEMA_VERSION, ElectionId, OnsId, Record, Timestamp


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


# The facts every alert about one seat's result carries (streams/rules.py, seat_facts):
# both leading candidates' figures, the seat's turnout, and change and swing since last time.
SEAT_FACTS = tuple(
    f"{role}{figure}"
    for role in ("winner", "runner_up")
    for figure in ("", "_party", "_votes", "_share", "_share_change")
) + (
    "held_by",
    "majority",
    "majority_share",
    "valid_votes",
    "electorate",
    "turnout",
    "turnout_change",
    "swing",
)


@dataclass(frozen=True)
class KindInfo:
    """How one alert kind is shown and what it says.

    ``colour`` is a name CSS and Rich both know; ``None`` means the alert is drawn
    in the colour of the party its ``party_fact`` names. ``emphasis`` is how hard
    it shouts: ``loud`` (reversed), ``strong`` (bold), ``quiet`` (dim) or ``plain``.
    """

    label: str
    colour: str | None
    description: str
    facts: tuple[str, ...]
    party_fact: str | None = None
    emphasis: Literal["loud", "strong", "plain", "quiet"] = "plain"


ALERT_KINDS: dict[AlertKind, KindInfo] = {
    AlertKind.GAIN: KindInfo(
        label="Gain",
        colour=None,
        description="a seat won by a party other than the one that held it",
        facts=SEAT_FACTS,
        party_fact="winner_party",
        emphasis="strong",
    ),
    AlertKind.INDEPENDENT_GAIN: KindInfo(
        label="Independent gain",
        colour="white",
        description="an independent candidate takes a seat from a party",
        facts=SEAT_FACTS,
        party_fact="winner_party",
        emphasis="loud",
    ),
    AlertKind.INCUMBENT_DEFEATED: KindInfo(
        label="MP defeated",
        colour="red",
        description="a sitting MP loses their seat (one alert per defeated MP)",
        facts=(*SEAT_FACTS, "defeated", "defeated_party", "defeated_votes", "defeated_share", "defeated_share_change"),
        party_fact="winner_party",
        emphasis="loud",
    ),
    AlertKind.MARGINAL: KindInfo(
        label="Marginal",
        colour="yellow",
        description="a majority under TALLYROOM_MARGINAL_VOTES votes or TALLYROOM_MARGINAL_SHARE of valid votes",
        facts=SEAT_FACTS,
        party_fact="winner_party",
    ),
    AlertKind.NEAR_UPSET: KindInfo(
        label="Near upset",
        colour="yellow",
        description="the holder survives, but an independent or a party holding no seats came within the marginal line",
        facts=(*SEAT_FACTS, "challenger", "challenger_party", "challenger_votes", "challenger_share", "gap"),
        party_fact="winner_party",
    ),
    AlertKind.MAJORITY_REACHED: KindInfo(
        label="Majority",
        colour="green",
        description="a party reaches the majority line (once per party per election)",
        facts=("party", "seats", "majority_line", "clinching_seat"),
        party_fact="party",
        emphasis="strong",
    ),
    AlertKind.HUNG_PARLIAMENT: KindInfo(
        label="Hung parliament",
        colour="green",
        description="no party can reach the majority line even winning every seat still to declare (once per election)",
        facts=(
            "majority_line",
            "largest_party",
            "largest_party_seats",
            "seats",
            "declared",
            "remaining",
            "deciding_seat",
        ),
        party_fact="largest_party",
        emphasis="strong",
    ),
    AlertKind.BIG_SWING: KindInfo(
        label="Big swing",
        colour="cyan",
        description="a seat's two-party swing since last time reaches TALLYROOM_BIG_SWING",
        facts=(*SEAT_FACTS, "swing_from", "swing_to", "swing_size"),
        party_fact="swing_to",
    ),
    AlertKind.RUSH: KindInfo(
        label="Rush",
        colour=None,
        description="a seat's winner flashed before its figures: a gain or hold judged against the baseline",
        facts=("winner_party", "winner", "held_by", "gain"),
        party_fact="winner_party",
    ),
    AlertKind.WITHDRAWN: KindInfo(
        label="Withdrawn",
        colour="magenta",
        description="a seat's result withdrawn by an admin: the seat is undeclared until a later revision",
        facts=("reason", "withdrawn_revision", "withdrawn_status", "previous_winner_party", "revision"),
        emphasis="loud",
    ),
    AlertKind.CORRECTION: KindInfo(
        label="Correction",
        colour="magenta",
        description="a seat's result is declared again with a higher revision",
        facts=(
            *SEAT_FACTS,
            "previous_revision",
            "revision",
            "previous_winner",
            "previous_winner_party",
            "previous_majority",
            "vote_changes",
            "rushed_party",
        ),
        party_fact="winner_party",
    ),
    AlertKind.RECOUNT: KindInfo(
        label="Recount",
        colour="magenta",
        description="a recount is announced in a seat",
        facts=("reason",),
    ),
    AlertKind.DATA_FLAW: KindInfo(
        label="Data flaw",
        colour="red",
        description="the published total or majority disagrees with the candidates' votes",
        facts=(*SEAT_FACTS, "flaws"),
        emphasis="quiet",
    ),
}


def kinds_table() -> str:
    """The README's table of alert kinds (a unit test keeps the README's copy current)."""
    rows = ["| kind | label | what it means | facts |", "| --- | --- | --- | --- |"]
    for kind, info in ALERT_KINDS.items():
        facts = ", ".join(f"`{name}`" for name in info.facts)
        rows.append(f"| `{kind.value}` | {info.label} | {info.description} | {facts} |")
    return "\n".join(rows) + "\n"


def _kind_schema(schema: dict[str, Any]) -> None:
    # Each kind documented in the JSON Schema, from the registry (unknown "x-" keywords are ignored by validators).
    schema["description"] = "what the alert is about; x-kinds gives each kind's label, meaning and facts"
    schema["x-kinds"] = {
        kind.value: {"label": info.label, "description": info.description, "facts": list(info.facts)}
        for kind, info in ALERT_KINDS.items()
    }


class DeclarationRef(Record):
    """Which declaration an alert came from."""

    ons_id: OnsId
    revision: int
    declared_at: Timestamp


class Provenance(Record):
    """Who entered the event a seat result or alert came from, how, and which Kafka record it was."""

    entered_by: str | None = None
    source: str | None = None
    topic: str
    partition: int
    offset: int


class Alert(Record):
    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="stable across re-processing: derived from election, subject, kind, revision")
    kind: AlertKind = Field(json_schema_extra=_kind_schema)
    election: ElectionId
    ons_id: OnsId | None = None
    constituency: str | None = None
    headline: str
    facts: dict[str, Any] = Field(default_factory=dict)
    declaration: DeclarationRef | None = None
    occurred_at: Timestamp = Field(description="when it happened on the night (event time)")
    provenance: Provenance | None = Field(None, description="the event it came from (absent on older alerts)")


def alert_id(election: str, subject: str, kind: AlertKind | str, revision: int | str = "") -> str:
    """Deterministic id, so that re-processing an event never makes a second alert."""
    material = f"{election}|{subject}|{kind}|{revision}".encode()
    return hashlib.sha256(material).hexdigest()[:24]
