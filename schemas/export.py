"""JSON Schema for every model on the wire, and the README's table of alert kinds (pure: returns, writes nothing)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tallyroom.schemas.alerts import Alert, kinds_table
from tallyroom.schemas.events import Declaration, NightOpened, RecountNotice, Rush, Withdrawal
from tallyroom.schemas.results import DeadLetter, ResultUpdate, SeatResult, SeatSummary, TallySnapshot

EXPORTED: dict[str, type[BaseModel]] = {
    "declaration": Declaration,
    "recount": RecountNotice,
    "rush": Rush,
    "withdrawal": Withdrawal,
    "night": NightOpened,
    "alert": Alert,
    "seat-result": SeatResult,
    "tally": TallySnapshot,
    "result-update": ResultUpdate,
    "seat-summary": SeatSummary,
    "dead-letter": DeadLetter,
}


# Each schema's $id: a stable URL-like name, not a download address (.example is reserved, RFC 2606, and
# never resolves); a validator matches $id and $ref by this name. A new schema major version would
# get new ids. $schema: the dialect pydantic emits, JSON Schema draft 2020-12.
SCHEMA_ID = "https://tallyroom.example/schemas/{name}.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schemas() -> dict[str, dict[str, Any]]:
    """Each exported model's JSON Schema (what Tallyroom writes: mode="serialization"), with $id and $schema."""
    return {
        name: {"$schema": DIALECT, "$id": SCHEMA_ID.format(name=name), **model.model_json_schema(mode="serialization")}
        for name, model in EXPORTED.items()
    }


KINDS_BEGIN = "<!-- alert kinds: drawn from schemas/alerts.py by `tallyroom schemas export` -->"
KINDS_END = "<!-- end of alert kinds -->"


def with_kinds_table(readme: str) -> str:
    """The README text with its table of alert kinds redrawn from the registry."""
    head, found, rest = readme.partition(KINDS_BEGIN)
    _, found_end, tail = rest.partition(KINDS_END)
    if not (found and found_end):
        raise ValueError(f"README has no {KINDS_BEGIN!r} ... {KINDS_END!r} block")
    return f"{head}{KINDS_BEGIN}\n{kinds_table()}{KINDS_END}{tail}"
