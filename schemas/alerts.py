"""Alerts: what Tallyroom flags for newsrooms and subscribers."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from tallyroom.schemas.common import SCHEMA_VERSION, STRICT, ElectionId, OnsId, Timestamp


class AlertKind(StrEnum):
    GAIN = "gain"
    INDEPENDENT_GAIN = "independent_gain"
    INCUMBENT_DEFEATED = "incumbent_defeated"
    MARGINAL = "marginal"
    NEAR_UPSET = "near_upset"
    MAJORITY_REACHED = "majority_reached"
    CORRECTION = "correction"
    RECOUNT = "recount"
    DATA_FLAW = "data_flaw"
    RUSH = "rush"
    WITHDRAWN = "withdrawn"


class DeclarationRef(BaseModel):
    """Which declaration an alert came from."""

    model_config = STRICT

    ons_id: OnsId
    revision: int
    declared_at: Timestamp


class Provenance(BaseModel):
    """Who entered the event a seat result or alert came from, how, and which Kafka record it was."""

    model_config = STRICT

    entered_by: str | None = None
    source: str | None = None
    topic: str
    partition: int
    offset: int


class Alert(BaseModel):
    model_config = STRICT

    schema_version: int = SCHEMA_VERSION
    id: str = Field(description="stable across re-processing: derived from election, subject, kind, revision")
    kind: AlertKind
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
