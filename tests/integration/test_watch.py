"""`tallyroom watch` as a real process in tmux, against a real worker, sink, Kafka and Redis.

It is started mid-night (200 of 650 declared), must show what Redis already holds, then follow the
rest of the night as it lands, and leave on Ctrl-C with no traceback.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from tallyroom import processes
from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_state, wait_for_declared
from tallyroom.consumers.redis_sink import redis_client
from tallyroom.consumers.watch import PARTY_MAX_WIDTH
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tallyroom.producers.replay import replay_night
from tallyroom.schemas.parties import party_name
from tests.integration.conftest import cli_env, isolated_settings, start_worker

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
NIGHT = REPO / "data" / "ge2024"
# DB 15 is the shared pipeline fixture's (flushed per session); this file keeps to its own.
WATCH_REDIS_DB = 11
WIDTH, HEIGHT = 110, 45


@pytest.fixture(scope="module")
def watch_pipeline(stack):
    """A worker and sink of this module alone, writing to Redis DB 11 under a fresh election id."""
    settings, env = isolated_settings(stack, "watch", WATCH_REDIS_DB)
    worker = start_worker(settings, env)
    sink = processes.start("sink", settings, env=env, log_name=f"{settings.worker_id}-sink")
    processes.wait_alive(sink, 2)
    election = f"watch-{uuid.uuid4().hex[:8]}"
    client = redis_client(settings)
    yield settings, env, election, client
    for proc in (worker, sink):
        proc.stop()
    for key in client.scan_iter(f"tallyroom:{election}:*"):
        client.delete(key)


class Tmux:
    """One tmux server of this test alone (its own socket), one pane running one command."""

    def __init__(self, env: dict[str, str]):
        self.socket = f"tallyroom-watch-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=self.env, timeout=30
        )
        assert done.returncode == 0, f"tmux {args}: {done.stderr}"
        return done.stdout

    def start(self, *command: str) -> None:
        self.run(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "watch",
            "-x",
            str(WIDTH),
            "-y",
            str(HEIGHT),
            "-c",
            str(REPO),
            *command,
        )
        # Keep the pane after the process ends, to read its exit status and last output.
        self.run("set-option", "-t", "watch", "remain-on-exit", "on")

    def screen(self, history: bool = False) -> str:
        return self.run("capture-pane", "-p", "-t", "watch", *(["-S", "-"] if history else []))

    def wait_for(self, condition, what: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"pane never showed {what}; it shows:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, env=self.env)


def shown_name(party: str) -> str:
    """A party as watch names it: in full, or cut with "…" when longer than its column."""
    name = party_name(party)
    return name if len(name) < PARTY_MAX_WIDTH else name[: PARTY_MAX_WIDTH - 2] + "…"


def row(screen: str, party: str) -> str:
    name = shown_name(party)
    rows = [line for line in screen.splitlines() if re.match(rf"{re.escape(name)}\s", line)]
    assert len(rows) == 1, f"no single {party} row in:\n{screen}"
    return rows[0]


def seats_shown(screen: str, party: str) -> int:
    # seats, net, gains, losses, then share and (with figures from last time) its change
    numbers = re.search(
        r"\s(\d+)\s+([+-]?\d+)\s+(\+?\d+)\s+(-?\d+)\s+\d+\.\d%(?:\s+[+-]\d+\.\d)?\s*$", row(screen, party)
    )
    assert numbers, row(screen, party)
    return int(numbers.group(1))


def newest_headline(client, election: str) -> str:
    ((_, fields),) = client.xrevrange(ElectionKeys(election).alerts, count=1)
    return fields["headline"]


def test_watch_started_mid_night_follows_it_and_leaves_cleanly_on_ctrl_c(watch_pipeline, tmp_path):
    assert shutil.which("tmux"), "tmux is missing: bin/setup installs it"
    settings, env, election, client = watch_pipeline
    night = load_night(NIGHT, election)
    first, rest = night.declarations[:200], night.declarations[200:]
    sender = DeclarationSender(settings)
    try:
        replay_night(replace(night, declarations=first), sender, None, Console(file=io.StringIO()))
        wait_for_declared(client, election, 200, 120)
        wait_until_caught_up(settings)
        at_200 = read_state(client, election)

        # --once: one frame, for scripts.
        once = subprocess.run(
            [sys.executable, "-m", "tallyroom", "watch", "--election", election, "--once"],
            capture_output=True,
            text=True,
            env={**cli_env(env), "COLUMNS": "100"},
            cwd=REPO,
            timeout=60,
        )
        assert once.returncode == 0, once.stderr
        assert "200 of 650 declared" in once.stdout
        assert seats_shown(once.stdout, "Lab") == at_200.seats["Lab"]

        tmux = Tmux(cli_env(env))
        # The exit status is written by the shell around it: tmux's own #{pane_dead_status}
        # was seen empty in CI for a pane it reported dead.
        status_file = tmp_path / "watch-exit-status"
        # `trap : INT` keeps the shell alive through Ctrl-C; the watch itself gets it as ever.
        tmux.start(
            "sh",
            "-c",
            f'trap : INT; "{sys.executable}" -m tallyroom watch --election {election}; echo $? > "{status_file}"',
        )
        try:
            screen = tmux.wait_for(lambda s: "200 of 650 declared" in s, "200 of 650 declared")
            print(screen)  # to look at with -s
            for party, seats in at_200.seats.items():
                assert seats_shown(screen, party) == seats, party
            assert "│ 326 to win" in screen
            assert newest_headline(client, election)[:60] in screen  # the alerts already in Redis

            for declaration in rest:
                sender.send(declaration)
            acked, failures = sender.flush()
            assert acked == len(rest) and not failures
            screen = tmux.wait_for(lambda s: "650 of 650 declared" in s, "650 of 650 declared", timeout=240)
            screen = tmux.wait_for(lambda s: newest_headline(client, election)[:60] in s, "the newest alert")
            print(screen)  # to look at with -s
            assert seats_shown(screen, "Lab") == 411
            assert seats_shown(screen, "Con") == 121
            assert re.search(r"\s411\s+\+211\s", row(screen, "Lab"))

            tmux.run("send-keys", "-t", "watch", "C-c")
            deadline = time.monotonic() + 20
            while not status_file.exists() or not status_file.read_text().strip():
                assert time.monotonic() < deadline, f"watch still running after Ctrl-C:\n{tmux.screen()}"
                time.sleep(0.2)
            after = tmux.screen(history=True)
            assert status_file.read_text().strip() in {"0", "130"}, after
            assert "Traceback" not in after and "Aborted" not in after, after
            assert "650 of 650 declared" not in tmux.screen()  # the full-screen view was left: terminal restored
        finally:
            tmux.kill()
    finally:
        sender.close()
