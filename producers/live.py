"""Live entry during a count: JSON declarations validated, then sent.

Every record is checked against the schema first; an invalid one is refused
with the record and field named, and the valid ones around it are still sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from tallyroom.producers.kafka import DeclarationSender
from tallyroom.schemas import Declaration, NightOpened, RecountNotice, parse_event
from tallyroom.schemas.limits import Limits, event_breaches, payload_breach


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


@dataclass(frozen=True)
class NightSeats:
    """The seats of the night being entered, when live entry knows it (`declare --night`)."""

    election: str
    ons_ids: frozenset[str]

    @classmethod
    def of(cls, night: NightOpened) -> NightSeats:
        return cls(night.election, frozenset(s.ons_id for s in night.seats))


def check_record(
    number: int, raw: str | bytes, limits: Limits = Limits(), seats: NightSeats | None = None
) -> tuple[object | None, list[Refusal]]:
    """Validate one record; returns the event or the reasons it was refused."""
    if breach := payload_breach(raw, limits):
        return None, [Refusal(number, breach.field, breach.message)]
    try:
        event = parse_event(raw)
    except ValidationError as exc:
        return None, [Refusal(number, _field_of(e), e["msg"]) for e in exc.errors()]
    refusals = [Refusal(number, b.field, b.message) for b in event_breaches(event, limits)]
    if seats is not None:
        refusals += _seat_refusals(number, event, seats)
    return (None, refusals) if refusals else (event, [])


def _field_of(error: dict) -> str:
    if error["loc"]:
        return ".".join(str(p) for p in error["loc"])
    # pydantic reports a missing or unknown discriminator at the top level: it is `kind`.
    return "kind" if error["type"].startswith("union_tag") else "payload"


def _seat_refusals(number: int, event: object, seats: NightSeats) -> list[Refusal]:
    # The worker would dead-letter these too; refusing here tells the person typing.
    if not isinstance(event, (Declaration, RecountNotice)):
        return []
    if event.election != seats.election:
        return [
            Refusal(
                number,
                f"{event.kind}.election",
                f"{event.election!r} is not the night being entered ({seats.election!r})",
            )
        ]
    if event.ons_id not in seats.ons_ids:
        return [
            Refusal(
                number,
                f"{event.kind}.ons_id",
                f"seat {event.ons_id} is not one of the {len(seats.ons_ids)} seats of {seats.election}",
            )
        ]
    return []


@dataclass
class Checked:
    """One record after its checks: the event, or why it was refused."""

    number: int
    event: object | None
    refusals: list[Refusal]


def check_records(
    records: Iterable[str | bytes], limits: Limits = Limits(), seats: NightSeats | None = None
) -> list[Checked]:
    """Every record checked, numbered from 1; blank ones are skipped but keep their number."""
    checked = []
    for number, raw in enumerate(records, start=1):
        if not raw.strip():
            continue
        event, refusals = check_record(number, raw, limits, seats)
        checked.append(Checked(number, event, refusals))
    return checked


def send_checked(checked: Iterable[Checked], sender: DeclarationSender) -> EntryReport:
    """Send the records that passed their checks, then wait for the broker's acks."""
    report = EntryReport()
    for record in checked:
        if record.refusals:
            report.errors.extend(record.refusals)
            continue
        if isinstance(record.event, NightOpened):
            sender.open_night(record.event)
        else:
            sender.send(record.event)
        report.accepted += 1
    report.acknowledged, report.failures = sender.flush()
    return report


def send_records(
    records: Iterable[str | bytes], sender: DeclarationSender, seats: NightSeats | None = None
) -> EntryReport:
    settings = getattr(sender, "settings", None)
    limits = Limits.from_settings(settings) if settings is not None else Limits()
    return send_checked(check_records(records, limits, seats), sender)


def send_lines(lines: Iterable[str | bytes], sender: DeclarationSender, seats: NightSeats | None = None) -> EntryReport:
    """Lines as text or, so that a line that is not UTF-8 is refused alone, as bytes."""
    return send_records((line.rstrip(b"\n" if isinstance(line, bytes) else "\n") for line in lines), sender, seats)
