"""The worker's and the sink's per-event CPU work, in-process, for profiling.

No Kafka and no Redis: the worker's own batch code (``tallyroom.streams.app.Tallier``)
runs against a broker and tables held in memory (``tallyroom.streams.inmemory``), and
the sink's parse and re-serialisation of each result follows, so a profiler sees only
Tallyroom's own code. It is the ceiling the real pipeline cannot beat.

    python -m bench.hotpath --seats 10000 --declarations 20000 [--tune-gc]
    python -m pyinstrument -m bench.hotpath --seats 10000 --declarations 20000

It also times the garbage collector's pauses (``gc.callbacks``) over the run: ``--tune-gc``
freezes what is alive once the payloads are made, as a worker does at start
(``tallyroom.lifecycle.tune_gc``), to compare the two.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from dataclasses import dataclass
from pathlib import Path

from tallyroom.bench.night import NightSpec, SyntheticNight
from tallyroom.schemas import NightOpened, ResultUpdate
from tallyroom.settings import Settings
from tallyroom.streams.app import Received, Tallier
from tallyroom.streams.count import Count
from tallyroom.streams.inmemory import MemoryBroker, MemoryTables

BATCH = 500  # Settings.worker_batch_size: events per take_events batch


@dataclass
class HotPathRate:
    events: int
    worker_seconds: float
    sink_seconds: float
    worker_cpu_seconds: float = 0.0  # process CPU time: barely moved by what else runs on the machine
    sink_cpu_seconds: float = 0.0

    @property
    def worker_cpu_ms_per_event(self) -> float:
        return self.worker_cpu_seconds * 1000 / self.events if self.events else 0.0

    @property
    def sink_cpu_ms_per_event(self) -> float:
        return self.sink_cpu_seconds * 1000 / self.events if self.events else 0.0

    @property
    def worker_per_second(self) -> float:
        return self.events / self.worker_seconds if self.worker_seconds else 0.0

    @property
    def sink_per_second(self) -> float:
        return self.events / self.sink_seconds if self.sink_seconds else 0.0


SETTINGS = Settings(topic_declarations="hotpath.declarations", topic_results="hotpath.results")


class GcPauses:
    """Each garbage collection's pause, by generation, while installed (``with GcPauses() as pauses``)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> str:
        return "; ".join(
            f"gen{generation} {len(pauses)} x, {sum(pauses) * 1000:.0f} ms in all, longest {max(pauses) * 1000:.1f} ms"
            for generation, pauses in self.pauses.items()
            if pauses
        )


def hotpath_tallier(count: Count) -> tuple[Tallier, MemoryBroker]:
    broker = MemoryBroker()
    tallier = Tallier(SETTINGS, count, broker.send, MemoryTables(), lambda topic: 1)
    tallier.books_stale = False  # the count was opened directly, not from tables
    return tallier, broker


def worker_batch(tallier: Tallier, raws: list[bytes], first_offset: int) -> None:
    """What the agent does for one batch: the real ``Tallier.count_batch``."""
    events = [
        Received(SETTINGS.topic_declarations, 0, first_offset + i, b"bench-hotpath", raw) for i, raw in enumerate(raws)
    ]
    asyncio.run(tallier.count_batch(events))


def worker_pass(night: NightOpened, payloads: list[bytes], batch_size: int = BATCH) -> list[bytes]:
    """The worker path over a night's declarations, in batches: the results records it sends."""
    count = Count()
    count.open_night(night)
    tallier, broker = hotpath_tallier(count)
    for start in range(0, len(payloads), batch_size):
        worker_batch(tallier, payloads[start : start + batch_size], start)
    return broker.on(SETTINGS.topic_results)


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
    tallier, broker = hotpath_tallier(count)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(payloads), batch_size):
        worker_batch(tallier, payloads[start : start + batch_size], start)
    worker_seconds, worker_cpu = time.perf_counter() - started, time.process_time() - cpu
    updates = broker.on(SETTINGS.topic_results)
    started, cpu = time.perf_counter(), time.process_time()
    for raw in updates:
        sink_step(raw)
    sink_seconds, sink_cpu = time.perf_counter() - started, time.process_time() - cpu
    return HotPathRate(len(payloads), worker_seconds, sink_seconds, worker_cpu, sink_cpu)


def ge2024_payloads(directory: Path) -> tuple[NightOpened, list[bytes]]:
    from tallyroom.producers.nights import load_night

    loaded = load_night(directory, "ge2024-hotpath")
    return loaded.opened, [d.model_dump_json().encode() for d in loaded.declarations]


def synthetic_payloads(seats: int, declarations: int) -> tuple[NightOpened, list[bytes]]:
    """The bench's synthetic night (``tallyroom bench``'s, by default 5,000 seats and 30,000 declarations:
    most of them corrections)."""
    night = SyntheticNight(NightSpec("bench-hotpath", seats, declarations))
    return night.opened, [d.model_dump_json().encode() for d in night.declarations()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=10_000)
    parser.add_argument("--declarations", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=BATCH, help="events per worker batch")
    parser.add_argument("--night", type=Path, default=None, help="a real night directory instead (e.g. data/ge2024)")
    parser.add_argument("--tune-gc", action="store_true", help="freeze what is alive at start, as a worker does")
    args = parser.parse_args(argv)
    if args.night:
        opened, payloads = ge2024_payloads(args.night)
    else:
        opened, payloads = synthetic_payloads(args.seats, args.declarations)
    if args.tune_gc:
        from tallyroom.lifecycle import tune_gc

        tune_gc(SETTINGS)
    with GcPauses() as pauses:
        rate = measure(payloads, opened, args.batch)
    print(
        f"{rate.events} declarations: worker path {rate.worker_per_second:,.0f}/s "
        f"({rate.worker_seconds:.2f}s, CPU {rate.worker_cpu_ms_per_event:.3f} ms per declaration), sink path "
        f"{rate.sink_per_second:,.0f}/s ({rate.sink_seconds:.2f}s, CPU {rate.sink_cpu_ms_per_event:.3f} ms)\n"
        f"garbage collector ({'frozen at start' if args.tune_gc else 'as Python sets it'}): "
        f"{pauses.summary() or 'no collection'}"
    )


if __name__ == "__main__":
    main()
