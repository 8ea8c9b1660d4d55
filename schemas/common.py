"""Field types shared by every model."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

# Election ids become Redis key segments and Kafka keys: keep them plain.
ELECTION_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ElectionId = Annotated[str, StringConstraints(pattern=ELECTION_ID)]
# ONS/GSS code: nation letter, two-digit entity type, six digits (E14001063).
ONS_ID = r"^[EWSNL]\d{8}$"
OnsId = Annotated[str, StringConstraints(pattern=ONS_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PartyCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
# Strict so that "12", 12.5 and true are refused rather than coerced.
Count = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
# An ISO 8601 date-time with its UTC offset. pydantic alone would also take a
# Unix time ("1720000000") and any year from 1 to 9999: both are typos or broken
# clocks on an election night, never a real declaration time.
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
EARLIEST_YEAR, LATEST_YEAR = 1800, 2199
_JSON_TYPES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    list: "an array",
    dict: "an object",
}


def _iso_date_time(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE_TIME.match(value)):
        return value
    shown = repr(value[:40]) if isinstance(value, str) else _JSON_TYPES.get(type(value), type(value).__name__)
    raise ValueError(f"{shown} is not an ISO 8601 date-time such as 2024-07-05T03:31:00+01:00")


def _plausible_year(value: datetime) -> datetime:
    # The local year: converting year 1 or 9999 to UTC could overflow.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year {value.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_date_time), AfterValidator(_plausible_year)]


def _exactly_an_int(value: object) -> object:
    # Literal[1] alone would also take 1.0 and true (both == 1 in Python).
    if type(value) is not int:
        raise ValueError(f"schema_version should be the integer {SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exactly_an_int)]

STRICT = ConfigDict(extra="forbid", frozen=True)
