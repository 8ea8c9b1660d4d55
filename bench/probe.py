"""Watch an election's tally version land in Redis, from a process of its own.

Why a separate process: at full speed the producer keeps the bench process's
GIL busy, and a watcher thread there would see landings late. Why polling: a
Redis write cannot be observed for free without keyspace notifications, which
are a server-wide setting (``CONFIG SET``) of a Redis that others share. A GET
of one small string every ``interval`` seconds costs little, and a landing is
seen at most ``interval`` plus one round trip late (latencies are upper bounds).

The version key is the sink's ``tallyroom:E:tally-version``, written in the same
atomic Lua script as the tally, ``declared`` and the seat and vote hashes, after
the alerts and the seats of the declarations it counts.

The child is ``python -m bench.probe`` (not multiprocessing: no re-import of
whatever script started the bench). It prints ``ready``, then, when the target
is reached, stdin closes or its budget runs out, the trace as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass

import redis

DEFAULT_INTERVAL = 0.001


def watch(
    client: redis.Redis, key: str, target: int, interval: float, budget: float, stopped=lambda: False
) -> list[tuple[float, int]]:
    """(monotonic time, version) at each change, until ``target``, ``stopped()`` or ``budget`` seconds."""
    trace: list[tuple[float, int]] = []
    last = int(client.get(key) or 0)
    deadline = time.monotonic() + budget
    while last < target and not stopped() and time.monotonic() < deadline:
        value = int(client.get(key) or 0)
        if value != last:
            trace.append((time.monotonic(), value))
            last = value
        time.sleep(interval)
    return trace


def _stdin_closed() -> bool:
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable) and not sys.stdin.readline()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="watch a Redis counter; print (time, value) changes as JSON")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL)
    args = parser.parse_args(argv)
    password = os.environ.get("TALLYROOM_BENCH_REDIS_PASSWORD") or None
    client = redis.Redis.from_url(args.url, password=password)
    client.ping()
    print("ready", flush=True)
    trace = watch(client, args.key, args.target, args.interval, args.budget, _stdin_closed)
    print(json.dumps(trace), flush=True)


@dataclass
class LandingProbe:
    """Starts the watcher, then hands back its trace."""

    process: subprocess.Popen

    @classmethod
    def start(
        cls,
        redis_url: str,
        redis_password: str | None,
        key: str,
        target: int,
        budget: float,
        interval: float = DEFAULT_INTERVAL,
    ) -> LandingProbe:
        env = {**os.environ, "TALLYROOM_BENCH_REDIS_PASSWORD": redis_password or ""}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tallyroom.bench.probe",
                "--url",
                redis_url,
                "--key",
                key,
                "--target",
                str(target),
                "--budget",
                str(budget),
                "--interval",
                str(interval),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None and process.stdin is not None  # both PIPE
        first = process.stdout.readline().strip()
        if first != "ready":
            process.kill()
            raise RuntimeError(f"the Redis probe did not start (exit code {process.wait()}): {first!r}")
        return cls(process)

    def finish(self, timeout: float) -> list[tuple[float, int]]:
        """Wait for the target (or ``timeout`` seconds), then collect the trace."""
        stdout, stdin = self.process.stdout, self.process.stdin
        assert stdout is not None and stdin is not None  # both PIPE
        readable, _, _ = select.select([stdout], [], [], max(timeout, 0))
        if not readable:
            stdin.close()  # asks the probe to stop and report what it saw
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return []
        finally:
            if not stdin.closed:
                stdin.close()
        line = out.strip().splitlines()[-1] if out.strip() else "[]"
        return [(float(t), int(v)) for t, v in json.loads(line)]


if __name__ == "__main__":
    main()
