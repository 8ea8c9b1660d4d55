"""Field types shared by every model."""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

# Election ids become Redis key segments and Kafka keys: keep them plain.
ElectionId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
]
# ONS/GSS code: nation letter, two-digit entity type, six digits (E14001063).
OnsId = Annotated[str, StringConstraints(pattern=r"^[EWSNL]\d{8}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PartyCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
# Strict so that "12", 12.5 and true are refused rather than coerced.
Count = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
Timestamp = AwareDatetime

STRICT = ConfigDict(extra="forbid", frozen=True)
