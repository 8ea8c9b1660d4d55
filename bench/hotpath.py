"""The worker's and the sink's per-event CPU work, in-process, for profiling.

No Kafka and no Redis: this repeats what ``tallyroom.streams.app.handle`` and
``tallyroom.consumers.redis_sink.RedisSink.handle`` do to each declaration's bytes
(parse, count, serialise the alerts, the update and the table value; then the
sink's parse and re-serialisation), so a profiler sees only Tallyroom's own
code. It is the ceiling the real pipeline cannot beat.

    python -m bench.hotpath --seats 10000 --declarations 20000
    python -m pyinstrument -m bench.hotpath --seats 10000 --declarations 20000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tallyroom.bench.night import NightSpec, SyntheticNight
from tallyroom.schemas import Declaration, NightOpened, ResultUpdate, parse_event
from tallyroom.streams.count import Count

BATCH = 500  # Settings.worker_batch_size: events per take_events batch


@dataclass
class HotPathRate:
    events: int
    worker_seconds: float
    sink_seconds: float

    @property
    def worker_per_second(self) -> float:
        return self.events / self.worker_seconds if self.worker_seconds else 0.0

    @property
    def sink_per_second(self) -> float:
        return self.events / self.sink_seconds if self.sink_seconds else 0.0


def worker_batch(count: Count, table: dict[str, bytes], raws: list[bytes]) -> list[bytes]:
    """What the agent does for one batch (``tallyroom.streams.app``): count each declaration,
    attach one tally snapshot to each election's last update, serialise it all.
    Returns the results-topic records."""
    messages: list[Any] = []
    written: dict[str, bytes] = {}
    last: dict[str, int] = {}
    for raw in raws:
        declaration = parse_event(raw)
        assert isinstance(declaration, Declaration)
        outcome = count.declare(declaration, snapshot=False)
        messages += [alert.model_dump_json().encode() for alert in outcome.alerts]
        if outcome.update is not None and outcome.update.seat is not None:
            written[f"{declaration.election}/{declaration.ons_id}"] = outcome.stored
            last[declaration.election] = len(messages)
            messages.append(outcome.update)
    for election, index in last.items():
        messages[index] = messages[index].model_copy(update={"tally": count.snapshot(election)})
    results = []
    for message in messages:
        if isinstance(message, ResultUpdate):
            message = message.model_dump_json().encode()
            results.append(message)
    table.update(written)  # the table's values and changelog records
    return results


def sink_step(raw_update: bytes) -> None:
    """What the sink does to one results record before its Redis calls."""
    update = ResultUpdate.model_validate_json(raw_update)
    for alert in update.alerts:
        alert.model_dump_json()
    if update.seat is not None:
        update.seat.model_dump_json()
    if update.tally is not None:
        update.tally.model_dump_json()


def measure(payloads: list[bytes], night: NightOpened, batch_size: int = BATCH) -> HotPathRate:
    count = Count()
    count.open_night(night)
    table: dict[str, bytes] = {}
    updates: list[bytes] = []
    started = time.perf_counter()
    for start in range(0, len(payloads), batch_size):
        updates += worker_batch(count, table, payloads[start : start + batch_size])
    worker_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for raw in updates:
        sink_step(raw)
    return HotPathRate(len(payloads), worker_seconds, time.perf_counter() - started)


def ge2024_payloads(directory: Path) -> tuple[NightOpened, list[bytes]]:
    from tallyroom.producers.nights import load_night

    loaded = load_night(directory, "ge2024-hotpath")
    return loaded.opened, [d.model_dump_json().encode() for d in loaded.declarations]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=10_000)
    parser.add_argument("--declarations", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="events per worker batch")
    parser.add_argument("--night", type=Path, default=None, help="a real night directory instead (e.g. data/ge2024)")
    args = parser.parse_args(argv)
    if args.night:
        opened, payloads = ge2024_payloads(args.night)
    else:
        night = SyntheticNight(NightSpec("bench-hotpath", args.seats, args.declarations))
        opened = night.opened
        payloads = [d.model_dump_json().encode() for d in night.declarations()]
    rate = measure(payloads, opened, args.batch)
    print(
        f"{rate.events} declarations: worker path {rate.worker_per_second:,.0f}/s "
        f"({rate.worker_seconds:.2f}s), sink path {rate.sink_per_second:,.0f}/s ({rate.sink_seconds:.2f}s)"
    )


if __name__ == "__main__":
    main()
