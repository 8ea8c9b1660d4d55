"""Replay a past night into Kafka with its real declaration times, scaled."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import Night
from tallyroom.schemas import Declaration, Rush
from tallyroom.streams.tally import seat_result


def night_events(declarations: list[Declaration], rushes_minutes: float | None = None) -> list[Declaration | Rush]:
    """The night's events in night-clock order: with ``rushes_minutes``, each seat's rush (its
    winner) that many minutes before its result. Ties keep results before rushes, in file order."""
    events: list[tuple[datetime, int, int, Declaration | Rush]] = [
        (d.declared_at, 0, n, d) for n, d in enumerate(declarations)
    ]
    if rushes_minutes is not None:
        ahead = timedelta(minutes=rushes_minutes)
        for n, d in enumerate(declarations):
            winner = seat_result(d, None).winner  # the count's own ranking and tie-break
            rush = Rush(
                election=d.election,
                ons_id=d.ons_id,
                constituency=d.constituency,
                party=winner.party,
                candidate=winner.name,
                announced_at=d.declared_at - ahead,
            )
            events.append((rush.announced_at, 1, n, rush))
    return [event for *_, event in sorted(events, key=lambda e: e[:3])]


def event_time(event: Declaration | Rush) -> datetime:
    return event.declared_at if isinstance(event, Declaration) else event.announced_at


@dataclass
class ReplayReport:
    sent: int
    acknowledged: int
    failures: list[Exception]
    seconds: float


def replay_night(
    night: Night,
    sender: DeclarationSender,
    speed: float | None,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
    entered_by: str | None = None,
    rushes_minutes: float | None = None,
) -> ReplayReport:
    """Send the night's opening, then each declaration in order, each marked as replayed by ``entered_by``.

    ``speed`` divides the real gaps between declaration times (1 = real time);
    ``None`` sends as fast as the broker takes them.
    """
    console = console or Console()
    started = time.monotonic()
    provenance = {"entered_by": entered_by, "source": "replay"}
    sender.open_night(night.opened.model_copy(update=provenance))
    events = night_events(night.declarations, rushes_minutes)
    first = event_time(events[0]) if events else None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("declared · night clock [cyan]{task.fields[clock]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(night.election, total=len(night.declarations), clock="--:--")
        for event in events:
            at = event_time(event)
            if speed and first is not None:
                due = (at - first).total_seconds() / speed
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    sleep(wait)
            sender.send(event.model_copy(update=provenance))
            progress.update(task, advance=isinstance(event, Declaration), clock=at.strftime("%a %H:%M %Z"))
    sent = len(sender.futures)
    acknowledged, failures = sender.flush()
    return ReplayReport(sent, acknowledged, failures, time.monotonic() - started)
