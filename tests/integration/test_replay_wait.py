"""`replay --wait` fails early, saying why, when no worker counts what it sent."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import cli_env, isolated_settings

pytestmark = pytest.mark.integration
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"


def test_replay_wait_notices_a_worker_that_is_not_counting(stack):
    # Topics of this test alone and no worker on them: the declarations wait uncounted.
    settings, env = isolated_settings(stack, "stall")
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tallyroom",
            "replay",
            "--night",
            str(NIGHT),
            "--election",
            "ge2024-stall",
            "--max",
            "--wait",
            "--stall-timeout",
            "8",
            "--timeout",
            "240",
        ],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=200,
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the worker has stopped counting: 651 declaration(s) wait" in " ".join(done.stderr.split())
    assert took < 120, f"took {took:.0f}s: the stall was noticed only near the timeout"
