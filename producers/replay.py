"""Replay a past night into Kafka with its real declaration times, scaled."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import Night


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
) -> ReplayReport:
    """Send the night's opening, then each declaration in order, each marked as replayed by ``entered_by``.

    ``speed`` divides the real gaps between declaration times (1 = real time);
    ``None`` sends as fast as the broker takes them.
    """
    console = console or Console()
    started = time.monotonic()
    provenance = {"entered_by": entered_by, "source": "replay"}
    sender.open_night(night.opened.model_copy(update=provenance))
    first = night.declarations[0].declared_at if night.declarations else None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("declared · night clock [cyan]{task.fields[clock]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(night.election, total=len(night.declarations), clock="--:--")
        for declaration in night.declarations:
            if speed and first is not None:
                due = (declaration.declared_at - first).total_seconds() / speed
                wait = due - (time.monotonic() - started)
                if wait > 0:
                    sleep(wait)
            sender.send(declaration.model_copy(update=provenance))
            clock = declaration.declared_at.strftime("%a %H:%M %Z")
            progress.update(task, advance=1, clock=clock)
    sent = len(sender.futures)
    acknowledged, failures = sender.flush()
    return ReplayReport(sent, acknowledged, failures, time.monotonic() - started)
