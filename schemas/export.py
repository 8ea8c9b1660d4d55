"""JSON Schema for every model on the wire (pure: returns dicts, writes nothing)."""

from __future__ import annotations

from pydantic import BaseModel

from tallyroom.schemas.alerts import Alert
from tallyroom.schemas.events import Declaration, NightOpened, RecountNotice, Rush, Withdrawal
from tallyroom.schemas.results import DeadLetter, ResultUpdate, SeatResult, TallySnapshot

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
    "dead-letter": DeadLetter,
}


def json_schemas() -> dict[str, dict]:
    return {name: model.model_json_schema(mode="serialization") for name, model in EXPORTED.items()}
