"""Live entry during a count: JSON declarations validated, then sent.

Every record is checked against the schema first; an invalid one is refused
with the record and field named, and the valid ones around it are still sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from pydantic import ValidationError

from producers.kafka import DeclarationSender
from schemas import NightOpened, parse_event

MAX_RECORD_BYTES = 1_000_000


@dataclass
class Refusal:
    record: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "message": self.message}


@dataclass
class EntryReport:
    accepted: int = 0
    acknowledged: int = 0
    errors: list[Refusal] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)


def check_record(number: int, raw: str | bytes) -> tuple[object | None, list[Refusal]]:
    """Validate one record; returns the event or the reasons it was refused."""
    if len(raw) > MAX_RECORD_BYTES:
        return None, [Refusal(number, "payload", f"{len(raw)} bytes is over the {MAX_RECORD_BYTES} limit")]
    try:
        return parse_event(raw), []
    except ValidationError as exc:
        return None, [
            Refusal(number, ".".join(str(p) for p in e["loc"]) or "payload", e["msg"]) for e in exc.errors()
        ]


def send_records(records: Iterable[str | bytes], sender: DeclarationSender) -> EntryReport:
    report = EntryReport()
    for number, raw in enumerate(records, start=1):
        if isinstance(raw, str) and not raw.strip():
            continue
        event, refusals = check_record(number, raw)
        if refusals:
            report.errors.extend(refusals)
            continue
        if isinstance(event, NightOpened):
            sender.open_night(event)
        else:
            sender.send(event)
        report.accepted += 1
    report.acknowledged, report.failures = sender.flush()
    return report


def send_lines(lines: Iterable[str], sender: DeclarationSender) -> EntryReport:
    return send_records((line.rstrip("\n") for line in lines), sender)
