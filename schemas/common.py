"""Field types shared by every model."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION: Final = 1

STORED: dict[str, bool] = {"stored": True}
"""Validation context for a record read back from storage (a table, a topic, Redis).

It was accepted once, by this Tallyroom or by an older or newer one of the same
schema major version. Limits that protect live entry (label lengths) are not applied
to it again, and fields a newer release added are ignored: refusing a stored record
would cost the night its seat, never protect it. ``read_stored`` reads one so.
"""


def is_stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _at_most(limit: int) -> AfterValidator:
    """A length bound for live entry, not applied to a stored record (see ``STORED``)."""

    def check(value: str, info: ValidationInfo) -> str:
        if len(value) > limit and not is_stored(info):
            # pydantic's own error, so that a refusal reads the same as any other length limit.
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max_length} characters", {"max_length": limit}
            )
        return value

    return AfterValidator(check)


# Election ids become Redis key segments and Kafka keys: keep them plain.
ELECTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ElectionId = Annotated[str, StringConstraints(pattern=ELECTION_ID.pattern)]
# ONS/GSS code: nation letter, two-digit entity type, six digits (E14001063).
ONS_ID = re.compile(r"^[EWSNL]\d{8}$")
OnsId = Annotated[str, StringConstraints(pattern=ONS_ID.pattern)]
# Labels: real ones run long (the Library gives some minor parties' whole names, commas
# and all, as their abbreviation: 46 characters in 2019). The bound stops abuse only, and
# is not applied to a stored record (see STORED).
LABEL_MAX = 200
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    _at_most(LABEL_MAX),
    Field(json_schema_extra={"maxLength": LABEL_MAX}),
]
PartyCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    _at_most(LABEL_MAX),
    Field(json_schema_extra={"maxLength": LABEL_MAX}),
]
# A label of a declaration's candidate. A declaration is only ever read as live entry (``parse_event``), never
# back from storage, so its bound is pydantic's own, checked in Rust, not ``_at_most``'s Python check (three
# a candidate, 24 a declaration of the 2024 night). Its error reads the same.
DeclaredLabel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_MAX)]
# A label Tallyroom copied from a declared one (a counted candidate's name and party): the live-entry bound
# held when it was declared. Checked in Rust only, since the Python check above ran for every label of every
# candidate the worker counts and the sink reads again (bench/README.md, session 9).
CopiedLabel = Annotated[str, StringConstraints(min_length=1)]
# Strict so that "12", 12.5 and true are refused rather than coerced.
Count = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]
# What Tallyroom itself counts or sums (seats, versions, a seat's or the night's votes): never negative,
# and with no upper bound, since a sum of candidates' votes may go past Count's.
Tallied = Annotated[int, Field(strict=True, ge=0)]
# A declaration's revision: 1 for the first, higher for each correction or recount.
Revision = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
# A share of valid votes, a turnout: a fraction 0..1.
Fraction = Annotated[float, Field(ge=0, le=1)]
# The difference of two fractions (share change, turnout change, swing), in fraction points: -1..1.
FractionChange = Annotated[float, Field(ge=-1, le=1)]
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


class Record(BaseModel):
    """Base of every model: strict for what arrives; read what is stored with ``read_stored``."""

    model_config = STRICT

    @classmethod
    def upgrade_stored(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A stored record from an older release, given the fields this one adds that can be worked out."""
        return value


R = TypeVar("R", bound=BaseModel)


def json_bytes(record: BaseModel) -> bytes:
    """``record.model_dump_json().encode()``, the same bytes, without the round trip through ``str``:
    what the worker sends and stores for every seat and alert."""
    return record.__pydantic_serializer__.to_json(record)


def read_stored(model: type[R], raw: str | bytes) -> R:
    """A record read back from storage (a table, a topic, Redis), as ``model``: ``read_stored_as_written``'s record."""
    return read_stored_as_written(model, raw)[0]


def read_stored_as_written(model: type[R], raw: str | bytes) -> tuple[R, bool]:
    """A record read back from storage (a table, a topic, Redis), as ``model``, and whether it was read
    as written (True), or only once fields were dropped or worked out (False).

    Limits that protect live entry are not applied (``context=STORED``), and fields
    that a newer release of the same schema major version added are dropped, and
    fields an older release did not write are worked out where they can be
    (``Record.upgrade_stored``). The first attempt is the plain strict parse, so this
    costs nothing until a record really differs (a model validator for it on every
    model halved the sink's parse rate in ``bench.hotpath``). Anything else wrong
    still raises.
    """
    try:
        return model.model_validate_json(raw, context=STORED), True
    except ValidationError as exc:
        errors = exc.errors()
        if not all(e["type"] in ("extra_forbidden", "missing") for e in errors):
            raise
    value = json.loads(raw)
    for error in errors:
        if error["type"] == "extra_forbidden":
            _drop(value, error["loc"])
    if issubclass(model, Record) and isinstance(value, dict):
        value = model.upgrade_stored(value)
    return model.model_validate(value, context=STORED), False


def _drop(value: Any, loc: tuple[int | str, ...]) -> None:
    for step in loc[:-1]:
        if isinstance(value, dict) and step not in value:
            continue  # a union's tag in the path (the alert's kind: ("alerts", 0, "gain", "facts", ...))
        value = value[step]
    if isinstance(value, dict):
        value.pop(loc[-1], None)


class Swing(Record):
    """Butler two-party swing: the average of one party's rise and the other's fall in share."""

    from_party: str
    to_party: str
    swing: FractionChange = Field(
        description="fraction points from from_party to to_party, -1..1; negative means the other way"
    )
