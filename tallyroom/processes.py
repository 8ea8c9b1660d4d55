"""Start and stop Tallyroom's own long-running processes (worker, sink) in the background."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tallyroom.lifecycle import AUTH_EXIT_STATUS, Stop
from tallyroom.settings import Settings


@dataclass
class Background:
    name: str
    process: subprocess.Popen
    log_path: Path
    log_start: int = 0  # this run's output begins here; the log file is appended to

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it has not left within ``timeout``; its exit status."""
        stop_together([self], timeout)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up, no final commit."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def this_run_log(self) -> str:
        """What this run of the process has logged (the log file holds earlier runs too)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.log_start)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def stop_together(backgrounds: list[Background], timeout: float = 30) -> None:
    """``stop`` each of ``backgrounds``, SIGTERMed at once and then waited for: each takes its own
    seconds to leave (Faust's shutdown, a consumer's final commit), which then overlap."""
    running = [b for b in backgrounds if b.process.poll() is None]
    for background in running:
        background.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for background in running:
        try:
            background.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            background.process.kill()
            background.process.wait()


def start(
    name: str, settings: Settings, *args: str, env: dict[str, str] | None = None, log_name: str | None = None
) -> Background:
    """Run ``python -m tallyroom <name> args`` with its output in the stack's log folder."""
    logs = settings.stack_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{log_name or name}.log"
    handle = log_path.open("ab")
    log_start = handle.tell()
    process = subprocess.Popen(
        [sys.executable, "-m", "tallyroom", name, *args],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    handle.close()
    return Background(name, process, log_path, log_start)


def wait_for_log(background: Background, text: str, seconds: float) -> None:
    """Wait until the process has written ``text`` to its log (e.g. Faust's "Worker: Ready")."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if background.process.poll() is not None:
            raise RuntimeError(
                f"{background.name} exited with {background.process.returncode}:\n{background.log_tail()}"
            )
        if text in background.this_run_log():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{background.name} did not log {text!r} within {seconds:.0f}s:\n{background.log_tail()}")


def wait_alive(background: Background, seconds: float) -> None:
    """Fail early, with the log, if a process dies during start-up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if background.process.poll() is not None:
            raise RuntimeError(
                f"{background.name} exited with {background.process.returncode}:\n{background.log_tail()}"
            )
        time.sleep(0.2)


def supervise(names: list[str], settings: Settings, console=None, poll: float = 1.0, stop: Stop | None = None) -> int:
    """Run each ``tallyroom <name>`` in the background and restart any that dies, until SIGTERM/SIGINT.

    A restart waits a little longer each time a process keeps dying (up to 30 s),
    so a broker outage does not turn into a tight restart loop. A process that exits
    because a password was refused (``AUTH_EXIT_STATUS``) is not restarted: everything
    stops, and that status is returned.
    """
    stop = stop or Stop()
    children = {name: start(name, settings) for name in names}
    delays = {name: 1.0 for name in names}
    try:
        with stop.on_signals():
            while not stop.wait(poll):
                for name, child in list(children.items()):
                    code = child.process.poll()
                    if code is None or stop:
                        continue
                    if code == AUTH_EXIT_STATUS:
                        if console:
                            console.print(f"[red]{name}: {child.log_tail(1)}; not restarting")
                        return code
                    if console:
                        console.print(f"[yellow]{name} exited with {code}; restarting in {delays[name]:.0f}s[/]")
                    if stop.wait(delays[name]):
                        break
                    delays[name] = min(delays[name] * 2, 30.0)
                    children[name] = start(name, settings)
    finally:
        stop_together(list(children.values()))
    return 0
