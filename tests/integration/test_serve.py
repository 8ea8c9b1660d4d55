"""`tallyroom serve` keeps the worker and sink running: a killed child comes back, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import cli_env, isolated_settings

pytestmark = pytest.mark.integration


def children(pid: int) -> dict[str, int]:
    found = {}
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for child in out:
        try:
            cmdline = open(f"/proc/{child}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except FileNotFoundError:
            continue
        for name in ("worker", "sink"):
            if cmdline.rstrip().endswith(f"tallyroom {name}"):
                found[name] = int(child)
    return found


def wait_for(predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_serve_restarts_a_killed_worker_and_stops_cleanly(stack):
    settings, env = isolated_settings(stack, "serve")
    serve = subprocess.Popen(
        [sys.executable, "-m", "tallyroom", "serve"],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = wait_for(lambda: (c := children(serve.pid)) and len(c) == 2 and c, 30)
        os.kill(first["worker"], signal.SIGKILL)
        again = wait_for(lambda: (c := children(serve.pid)).get("worker") not in (None, first["worker"]) and c, 30)
        assert again["sink"] == first["sink"]
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=60)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert "worker exited with -9; restarting" in output
    assert serve.returncode == 0
    for pid in (again["worker"], again["sink"]):
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
