"""The failure report's process logs (tests/conftest.py): each process once, this run's lines only."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tallyroom.processes import Background
from tests.conftest import LOG_LINES, log_sections


@dataclass
class Pipe:
    worker: Background
    sink: Background


def background(tmp_path: Path, name: str, earlier: str, now: str) -> Background:
    log = tmp_path / f"{name}.log"
    log.write_text(earlier + now)
    return Background(name, cast(subprocess.Popen, None), log, log_start=len(earlier.encode()))


def test_a_pipeline_shows_its_worker_and_sink_logs_of_this_run_only(tmp_path):
    worker = background(tmp_path, "worker", "killed run\n", "Worker]: Ready\nstalled\n")
    sink = background(tmp_path, "sink", "", "sink line\n")
    sections = log_sections({"fault_pipeline": Pipe(worker, sink), "same_worker": worker, "night": "ge2024"})
    assert [title.split(" (")[0] for title, _ in sections] == ["fault_pipeline: worker log", "fault_pipeline: sink log"]
    assert sections[0][1] == "Worker]: Ready\nstalled"
    assert sections[1][1] == "sink line"


def test_a_long_log_is_cut_to_its_last_lines(tmp_path):
    lines = [f"line {n}" for n in range(LOG_LINES + 50)]
    worker = background(tmp_path, "worker", "", "\n".join(lines) + "\n")
    [(_, text)] = log_sections({"workers": [worker]})
    assert text.splitlines() == lines[-LOG_LINES:]


def test_a_tuple_of_a_pipeline_and_a_second_worker_shows_all_three(tmp_path):
    worker, sink = background(tmp_path, "worker", "", "a\n"), background(tmp_path, "sink", "", "b\n")
    second = background(tmp_path, "worker-b", "", "c\n")
    sections = log_sections({"two_workers": (Pipe(worker, sink), second)})
    assert [text for _, text in sections] == ["a", "b", "c"]
