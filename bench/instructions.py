"""Instructions per declaration of the worker's and the sink's own work, counted by valgrind.

CPU time on a shared 2-core machine moves by ±15-20% between identical runs; the number of
instructions a build executes does not. This runs the worker path of ``bench.hotpath`` (parse,
count, rules, serialise, table value) and the sink's real queueing of each results record
(``RedisSink._queue_record``: parse, seat summary, each part serialised for Redis; no Redis call)
under ``valgrind --tool=callgrind``, once with one pass over a night and once with two, and
takes the difference: start-up, imports and loading the night cancel out. The runs go two at a time.

    python -m bench.instructions [--night data/ge2024] [--path worker|sink|both]
    python -m bench.instructions --synthetic 800:4800 --path worker

It takes about three minutes per path for the 2024 night. ``--synthetic SEATS:DECLARATIONS`` runs
the bench's synthetic night instead, whose declarations beyond the seats are corrections, as in
``tallyroom bench`` (5,000:30,000 there; 800:4,800 keeps its share of corrections in a few minutes).
Compare two builds by these figures (bench/README.md's lever tables).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PATHS = ("worker", "sink")


def night_payloads(night: Path | str) -> tuple[Any, list[bytes]]:
    """A real night's directory, or ``synthetic:SEATS:DECLARATIONS``: its opening and its declarations' JSON."""
    from tallyroom.bench.hotpath import ge2024_payloads, synthetic_payloads

    if str(night).startswith("synthetic:"):
        seats, declarations = (int(n) for n in str(night).split(":")[1:])
        return synthetic_payloads(seats, declarations)
    return ge2024_payloads(Path(night))


def run_passes(night: Path | str, path: str, passes: int) -> None:
    """The measured work itself: ``passes`` passes of one path over the night (run under valgrind)."""
    from tallyroom.bench.hotpath import SETTINGS, worker_pass
    from tallyroom.consumers.redis_sink import RedisSink, Steps

    opened, payloads = night_payloads(night)
    if path == "worker":
        for _ in range(passes):
            worker_pass(opened, payloads)
        return
    updates = worker_pass(opened, payloads)
    sink = RedisSink(SETTINGS)  # no connection is made: only the steps are built
    for _ in range(passes):
        for raw in updates:
            sink._queue_record(None, [], Steps(), SETTINGS.topic_results, raw)


def instructions(night: Path | str, path: str, passes: list[int]) -> list[int]:
    """Each count of passes' total instructions, the runs side by side (one core each)."""
    with tempfile.TemporaryDirectory() as scratch:
        outs = [Path(scratch) / f"callgrind.{n}.out" for n in passes]
        runs = []
        for n, out in zip(passes, outs):
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m"]
            command += ["tallyroom.bench.instructions", "--night", str(night), "--path", path, "--passes", str(n)]
            runs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        totals = []
        for run, out in zip(runs, outs):
            _, stderr = run.communicate()
            if run.returncode:
                raise RuntimeError(f"valgrind failed ({run.returncode}): {stderr.decode()[-2000:]}")
            found = re.search(rb"^(?:summary|totals): (\d+)", out.read_bytes(), re.MULTILINE)
            if found is None:
                raise RuntimeError(f"no instruction total in {out}")
            totals.append(int(found.group(1)))
        return totals


def declarations(night: Path | str) -> int:
    return len(night_payloads(night)[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--night", default="data/ge2024", help="a real night's directory")
    parser.add_argument("--synthetic", metavar="SEATS:DECLARATIONS", help="the bench's synthetic night instead")
    parser.add_argument("--path", choices=(*PATHS, "both"), default="both")
    parser.add_argument("--passes", type=int, default=None, help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args(argv)
    night = f"synthetic:{args.synthetic}" if args.synthetic else args.night
    if args.passes is not None:
        run_passes(night, args.path, args.passes)
        return
    n = declarations(night)
    for path in PATHS if args.path == "both" else (args.path,):
        one, two = instructions(night, path, [1, 2])
        print(f"{path}: {(two - one) / n:,.0f} instructions per declaration ({n} declarations, {night})")


if __name__ == "__main__":
    main()
