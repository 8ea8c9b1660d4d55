"""For every suite: a test that fails with a worker or a sink in its fixtures shows their logs.

A CI run keeps nothing but its printed output. A pipeline that stalled (0 seats in Redis after
240 s, stop 27's fault lane) said only that it timed out; the worker's and the sink's own lines
of that run are what tell a stall in Faust's recovery from a sink that never saw its topic.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tallyroom.processes import Background

LOG_LINES = 150


def backgrounds_of(value: object) -> list[Background]:
    """The processes a fixture value holds: itself, or its ``worker`` and ``sink``, or those of
    each item of a list or tuple (the partition test's fixture is a pipeline and a second worker)."""
    if isinstance(value, Background):
        return [value]
    if isinstance(value, list | tuple):
        return [background for item in value for background in backgrounds_of(item)]
    return [b for b in (getattr(value, name, None) for name in ("worker", "sink")) if isinstance(b, Background)]


def log_sections(funcargs: dict[str, object]) -> list[tuple[str, str]]:
    """(title, the last ``LOG_LINES`` lines of this run's log) for each process in ``funcargs``."""
    sections, seen = [], set()
    for name, value in funcargs.items():
        for background in backgrounds_of(value):
            if id(background) in seen:
                continue
            seen.add(id(background))
            tail = background.this_run_log().splitlines()[-LOG_LINES:]
            sections.append((f"{name}: {background.name} log ({background.log_path})", "\n".join(tail)))
    return sections


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        report.sections += log_sections(getattr(item, "funcargs", {}))
