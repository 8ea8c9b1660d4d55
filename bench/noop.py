"""The ceiling of the worker's framework: a Faust agent that does nothing but forward each record.

It is built like the worker (``streams.app.create_app``: the same producer, acks, linger,
batch limit and Faust options; ``shorten_fetch_wait`` with the same fetch wait), reads
with the same ``take_events(worker_batch_size, within=worker_batch_seconds)`` and sends
one record per event through the same direct producer call, awaited per batch, as the
worker awaits its sends. What it lacks is Tallyroom's work: parse, count, rules,
serialisation, the changelog. ``tallyroom bench`` runs it on the same broker, in the
same run, as the reference row that Tallyroom's throughput is a ratio of.

It reads ``topic_declarations`` and writes to ``topic_results`` of its settings: the bench
gives it topics of its own, created by ``ensure_topics`` as Tallyroom's are.

    python -m tallyroom.bench.noop     # with TALLYROOM_WORKER_ID and TALLYROOM_TOPIC_* set
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import faust

from tallyroom.processes import Background
from tallyroom.settings import Settings
from tallyroom.streams import faust_compat
from tallyroom.streams.app import create_app


def build_noop(settings: Settings) -> faust.App:
    app = create_app(settings)
    faust_compat.shorten_fetch_wait(app, settings.fetch_max_wait_ms)
    records = app.topic(settings.topic_declarations, key_serializer="raw", value_serializer="raw")
    target = settings.topic_results

    @app.agent(records, concurrency=1, name="forward")
    async def forward(stream: faust.StreamT) -> None:
        batches = stream.take_events(  # type: ignore[attr-defined]
            settings.worker_batch_size, within=settings.worker_batch_seconds
        )
        async for events in batches:
            futures: list[Any] = [
                await faust_compat.send(app, target, event.key, event.value, None) for event in events
            ]
            await asyncio.gather(*futures)

    return app


def start(env: dict[str, str], log_path: Path) -> Background:
    """Run the no-op agent in a process of its own (as the worker runs), its output in ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log_start = log.tell()
        process = subprocess.Popen(
            [sys.executable, "-m", "tallyroom.bench.noop"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
        )
    return Background("no-op Faust agent", process, log_path, log_start)


def main() -> None:
    from faust import Worker

    settings = Settings()
    app = build_noop(settings)
    Worker(app, loglevel="info").execute_from_commandline()


if __name__ == "__main__":
    main()
