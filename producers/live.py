"""Live entry during a count: JSON declarations validated, then sent.

Every record is checked against the schema first; an invalid one is refused
with the record and field named, and the valid ones around it are still sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tallyroom.producers.audit import ACCEPTED, REFUSED, UNACKNOWLEDGED, Attempt
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.schemas import Declaration, NightOpened, Nominee, RecountNotice, Rush, Withdrawal, parse_event
from tallyroom.schemas.common import ELECTION_ID, ONS_ID
from tallyroom.schemas.events import AnyEvent, Source
from tallyroom.schemas.limits import Limits, event_breaches, payload_breach


@dataclass
class Refusal:
    record: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"record": self.record, "field": self.field, "message": self.message}


@dataclass
class Author:
    """Who is entering records, and through what: stamped on every event sent."""

    operator: str
    source: Source
    role: str = ""
    client: str = ""

    def stamp(self, event):
        """The event as entered by this author, whatever the sender claimed in it."""
        return event.model_copy(update={"entered_by": self.operator, "source": self.source})


@dataclass
class EntryReport:
    accepted: int = 0
    acknowledged: int = 0
    errors: list[Refusal] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    # Each sent record with its broker future, for the audit trail (offset, or why not acknowledged).
    sent: dict[int, tuple[object, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class NightSeats:
    """The seats of the night being entered, when live entry knows it (`declare --night`),
    and each seat's nominations (its candidates, known before the count) when the night lists them."""

    election: str
    ons_ids: frozenset[str]
    nominations: dict[str, tuple[Nominee, ...]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    held_by: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, night: NightOpened, nominations: bool = True) -> NightSeats:
        return cls(
            night.election,
            frozenset(s.ons_id for s in night.seats),
            {s.ons_id: tuple(s.candidates) for s in night.seats if s.candidates} if nominations else {},
            {s.ons_id: s.constituency for s in night.seats},
            {s.ons_id: s.held_by for s in night.seats},
        )


def check_record(
    number: int, raw: str | bytes, limits: Limits = Limits(), seats: NightSeats | None = None
) -> tuple[AnyEvent | None, list[Refusal]]:
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


def _field_of(error: Mapping[str, Any]) -> str:
    if error["loc"]:
        return ".".join(str(p) for p in error["loc"])
    # pydantic reports a missing or unknown discriminator at the top level: it is `kind`.
    return "kind" if error["type"].startswith("union_tag") else "payload"


def _seat_refusals(number: int, event: object, seats: NightSeats) -> list[Refusal]:
    # The worker would dead-letter these too; refusing here tells the person typing.
    if isinstance(event, NightOpened) and event.election != seats.election:
        # An entry server is for one night: it must not re-open another election's seats.
        return [
            Refusal(number, "night.election", f"{event.election!r} is not the night being entered ({seats.election!r})")
        ]
    if not isinstance(event, (Declaration, RecountNotice, Rush, Withdrawal)):
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
    nominees = seats.nominations.get(event.ons_id)
    if nominees is None:
        return []
    if isinstance(event, Declaration):
        return nomination_refusals(number, event, nominees, seats.names.get(event.ons_id, event.ons_id))
    if isinstance(event, Rush):
        return _rush_refusals(number, event, nominees, seats.names.get(event.ons_id, event.ons_id))
    return []


def _listed(nominees: Iterable[Nominee]) -> str:
    return ", ".join(f"{n.name} ({n.party})" for n in nominees)


def nomination_refusals(
    number: int, declaration: Declaration, nominees: tuple[Nominee, ...], seat: str
) -> list[Refusal]:
    """A declaration must name exactly the seat's nominees, each for their own party: the operator types votes."""
    by_name = {n.name.casefold(): n for n in nominees}
    refusals = []
    for index, candidate in enumerate(declaration.candidates):
        nominee = by_name.pop(candidate.name.casefold(), None)
        where = f"declaration.candidates.{index}"
        if nominee is None:
            message = f"{candidate.name!r} is not nominated in {seat}; the nominees are {_listed(nominees)}"
            refusals.append(Refusal(number, f"{where}.name", message))
        elif nominee.party != candidate.party:
            message = f"{candidate.name} stands for {nominee.party} in {seat}, not {candidate.party}"
            refusals.append(Refusal(number, f"{where}.party", message))
    refusals += [
        Refusal(number, "declaration.candidates", f"nominee {missing.name} ({missing.party}) of {seat} is missing")
        for missing in by_name.values()
    ]
    return refusals


def _rush_refusals(number: int, rush: Rush, nominees: tuple[Nominee, ...], seat: str) -> list[Refusal]:
    if rush.candidate is not None:
        nominee = next((n for n in nominees if n.name.casefold() == rush.candidate.casefold()), None)
        if nominee is None:
            message = f"{rush.candidate!r} is not nominated in {seat}; the nominees are {_listed(nominees)}"
            return [Refusal(number, "rush.candidate", message)]
        if nominee.party != rush.party:
            return [Refusal(number, "rush.party", f"{nominee.name} stands for {nominee.party}, not {rush.party}")]
    elif not any(n.party == rush.party for n in nominees):
        return [Refusal(number, "rush.party", f"no {rush.party} candidate is nominated in {seat}: {_listed(nominees)}")]
    return []


@dataclass
class Checked:
    """One record after its checks: the event, or why it was refused."""

    number: int
    event: AnyEvent | None
    refusals: list[Refusal]
    # For a refused record, what it said it was (kind, election, seat) as far as that reads:
    # so its audit entry lands in its election's trail.
    claimed: dict[str, str] = field(default_factory=dict)


_CLAIMED = {"kind": re.compile(r"^[a-z_]{1,20}$"), "election": ELECTION_ID, "ons_id": ONS_ID}


def claimed_identity(raw: str | bytes) -> dict[str, str]:
    """The kind, election and seat a record names, where each is well-formed; {} if it is not a JSON object."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        name: value
        for name, pattern in _CLAIMED.items()
        if isinstance(value := document.get(name), str) and pattern.fullmatch(value)
    }


def check_records(
    records: Iterable[str | bytes], limits: Limits = Limits(), seats: NightSeats | None = None
) -> list[Checked]:
    """Every record checked, numbered from 1; blank ones are skipped but keep their number."""
    checked = []
    for number, raw in enumerate(records, start=1):
        if not raw.strip():
            continue
        event, refusals = check_record(number, raw, limits, seats)
        checked.append(Checked(number, event, refusals, claimed_identity(raw) if refusals else {}))
    return checked


def send_checked(checked: Iterable[Checked], sender: DeclarationSender, author: Author | None = None) -> EntryReport:
    """Send the records that passed their checks, stamped with their author, then wait for the broker's acks."""
    report = EntryReport()
    for record in checked:
        if record.refusals or record.event is None:
            report.errors.extend(record.refusals)
            continue
        event = author.stamp(record.event) if author else record.event
        future = sender.open_night(event) if isinstance(event, NightOpened) else sender.send(event)
        report.sent[record.number] = (event, future)
        report.accepted += 1
    report.acknowledged, report.failures = sender.flush()
    return report


def send_records(
    records: Iterable[str | bytes],
    sender: DeclarationSender,
    seats: NightSeats | None = None,
    author: Author | None = None,
) -> tuple[list[Checked], EntryReport]:
    settings = getattr(sender, "settings", None)
    limits = Limits.from_settings(settings) if settings is not None else Limits()
    checked = check_records(records, limits, seats)
    return checked, send_checked(checked, sender, author)


def send_lines(
    lines: Iterable[str | bytes],
    sender: DeclarationSender,
    seats: NightSeats | None = None,
    author: Author | None = None,
) -> tuple[list[Checked], EntryReport]:
    """Lines as text or, so that a line that is not UTF-8 is refused alone, as bytes."""
    records = (line.rstrip(b"\n") if isinstance(line, bytes) else line.rstrip("\n") for line in lines)
    return send_records(records, sender, seats, author)


def _what(record: Checked) -> dict[str, str]:
    event = record.event
    if event is None:
        return {"action" if k == "kind" else k: v for k, v in record.claimed.items()}
    revision = getattr(event, "revision", None)
    return {
        "action": event.kind,
        "election": event.election,
        "ons_id": getattr(event, "ons_id", ""),
        "revision": "" if revision is None else str(revision),
    }


def _broker_answer(future: Any) -> tuple[str, dict[str, str], str]:
    """accepted with the record's place, or unacknowledged with why."""
    if future is not None and future.is_done and future.succeeded():
        meta = future.value
        return ACCEPTED, {"topic": meta.topic, "partition": str(meta.partition), "offset": str(meta.offset)}, ""
    reason = repr(future.exception) if future is not None and future.is_done else "no answer from the broker"
    return UNACKNOWLEDGED, {}, f"broker did not acknowledge: {reason}"


def audit_attempts(
    checked: Iterable[Checked],
    author: Author,
    report: EntryReport | None = None,
    status: int | str = "",
    refused_why: dict[int, str] | None = None,
    unsent: str = REFUSED,
) -> list[Attempt]:
    """One audit entry per record: refused by its checks, else what the broker said.

    ``report`` None means nothing was sent: the records that passed their checks get
    the outcome ``unsent`` with ``refused_why`` as the reason.
    """
    attempts = []
    for record in checked:
        who: dict[str, Any] = {
            "operator": author.operator,
            "role": author.role,
            "source": author.source,
            "client": author.client,
            "record": record.number,
            "status": str(status),
            "action": "record",
        } | _what(record)
        if record.refusals:
            reason = "; ".join(f"{r.field}: {r.message}" for r in record.refusals)
            attempts.append(Attempt(outcome=REFUSED, reason=reason, **who))
        elif report is None or record.number not in report.sent:
            reason = (refused_why or {}).get(record.number, "not sent: another record of the request was refused")
            attempts.append(Attempt(outcome=unsent, reason=reason, **who))
        else:
            outcome, place, reason = _broker_answer(report.sent[record.number][1])
            attempts.append(Attempt(outcome=outcome, reason=reason, **who | place))
    return attempts
