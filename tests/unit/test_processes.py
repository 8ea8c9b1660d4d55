"""Background processes stopped together: their shutdowns overlap."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tallyroom.processes import Background, stop_together

# Leaves 1 s after SIGTERM (as a worker finishing its batch would); says "ready" once the handler is set.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(3)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
# Ignores SIGTERM altogether.
DEAF = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n"
)


def background(name: str, code: str) -> Background:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return Background(name, process, Path("/dev/null"))


def test_processes_stopped_together_take_the_longest_shutdown_not_the_sum():
    slow = [background(f"slow-{i}", SLOW_TO_STOP) for i in range(3)]
    started = time.monotonic()
    stop_together(slow)
    took = time.monotonic() - started
    assert [b.process.returncode for b in slow] == [3, 3, 3]  # each left on its SIGTERM, in its own time
    assert 1.0 <= took < 2.0, took  # one after another would take 3 s


def test_one_that_ignores_sigterm_is_killed_at_the_timeout_and_one_already_gone_is_left():
    deaf, gone = background("deaf", DEAF), background("gone", SLOW_TO_STOP)
    gone.process.kill()
    gone.process.wait()
    started = time.monotonic()
    stop_together([deaf, gone], timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert deaf.process.returncode == -9 and gone.process.returncode == -9
