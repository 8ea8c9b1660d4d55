"""Thousands of viewers on one ``tallyroom web`` process while a night replays at full speed.

    python -m tallyroom.bench.viewers --clients 5000 [--procs 2] [--night data/ge2024] [--out bench-results]

One run: a worker and a sink of its own (topics ``bench.<run>.*``, Redis DB ``--redis-db``), one
``tallyroom web`` process on 127.0.0.1, and ``--procs`` load processes holding ``--clients`` SSE
streams between them (raw asyncio connections on uvloop, HTTP parsed by httptools: the clients
share the two cores with the server, so they are kept lean). Once every stream is live, the
night is replayed at max speed.
Each load process checks that each of its streams got every alert of the stream exactly once, in
order, and times each alert from its arrival in Redis (the stream entry id is Redis's clock in
milliseconds, on this same machine) to the moment the client read it. The web process's CPU and
memory come from /proc. A stream the server closes is reopened with ``Last-Event-ID`` after the
server's ``retry:`` hint, as a browser does; those reconnects are counted.

This is a benchmark: it prints figures and writes them to a JSON file; nothing is asserted.
Loopback only, and bounded: at most ``MAX_CLIENTS`` streams, every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tallyroom.bench import loopback
from tallyroom.settings import REPO_ROOT, Settings

MAX_CLIENTS = 20_000
MAX_PROCS = 8
HISTOGRAM_MS = 60_000  # delays are counted per millisecond up to a minute (later ones in the last bucket)
LOOPBACK = "127.0.0.1"
# An SSE frame's id line (a stream entry id) and its milliseconds part (Redis's clock at the XADD).
# Searched after a newline, a literal prefix re finds fast; ``^`` with MULTILINE made re try every
# position (the load processes spent their whole CPU in it with 2,500 streams each).
ID_LINE = re.compile(rb"\nid: ([0-9]+-[0-9]+)\r")
ID_MS = re.compile(rb"\nid: ([0-9]+)-")
FIRST_ID = re.compile(rb"id: (([0-9]+)-[0-9]+)\r")
CONNECT_SECONDS = 30.0


@dataclass(frozen=True)
class ViewerOptions:
    clients: int = 5_000
    procs: int = 2  # load processes; the clients are split between them
    night: Path = REPO_ROOT / "data" / "ge2024"
    ramp_per_s: float = 1_000.0  # new streams opened per second, all processes together
    timeout: float = 300.0  # for each phase: holding the clients, the replay landing, the last alert arriving
    redis_db: int = 9
    out: Path = Path("bench-results")
    probe_interval: float = 0.2  # the state API and the page are fetched this often during the replay
    keep: bool = False  # leave the run's topics and Redis keys behind
    floor: bool = True  # then move the bytes the clients read over raw loopback (bench.loopback): the machine's floor

    def check(self) -> None:
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"clients: {self.clients} is outside 1..{MAX_CLIENTS}")
        if not 1 <= self.procs <= MAX_PROCS:
            raise ValueError(f"procs: {self.procs} is outside 1..{MAX_PROCS}")
        if not self.ramp_per_s > 0:
            raise ValueError(f"ramp_per_s: {self.ramp_per_s} must be positive")


# --- a load process: N streams -------------------------------------------------------------------


@dataclass
class Stream:
    """One client's view of its event stream."""

    last_id: bytes = b""
    alerts: int = 0
    tallies: int = 0
    bytes_read: int = 0
    digest: Any = field(default_factory=hashlib.blake2b)  # hashlib's blake2b object
    live: bool = False  # its first chunk has arrived
    done: bool = False  # it has read the night's last alert
    reconnects: int = 0
    failed: str = ""  # why it gave up, if it did
    tail: bytes = b""
    retry_ms: int = 2000


class LoadProcess:
    """Holds ``count`` SSE streams on ``url`` and reads each line of them."""

    def __init__(self, url: str, count: int, ramp_per_s: float):
        self.url = url
        self.streams = [Stream() for _ in range(count)]
        self.ramp_per_s = ramp_per_s
        self.histogram = [0] * (HISTOGRAM_MS + 1)
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.expected_last: bytes | None = None
        self.settled = 0  # streams live (or failed) before the replay; done (or failed) after it
        self.progress = asyncio.Event()  # set when ``settled`` reaches every stream

    def read(self, stream: Stream, chunk: bytes) -> None:
        """Count the chunk's alerts by their ``id:`` lines: whole lines only, per chunk, found by regex.

        The per-alert work is all in C (``findall``, ``Counter``, one ``update`` of the digest
        per chunk): a Python loop per alert per client was most of the clients' CPU.
        """
        now_ms = int(time.time() * 1000)
        stream.bytes_read += len(chunk)
        data = stream.tail + chunk if stream.tail else chunk
        cut = data.rfind(b"\n") + 1
        stream.tail = data[cut:]
        if not cut:
            return
        at = data.rfind(b"retry: ", 0, cut)
        if at >= 0:
            stream.retry_ms = int(data[at + 7 : data.index(b"\r", at, cut)])
        stream.tallies += data.count(b"event: tally", 0, cut)
        ids = ID_LINE.findall(data, 0, cut)
        stamps = ID_MS.findall(data, 0, cut)
        first = FIRST_ID.match(data, 0, cut)  # the chunk starts with a frame's id line
        if first:
            ids.insert(0, first[1])
            stamps.insert(0, first[2])
        if ids:
            stream.alerts += len(ids)
            stream.last_id = ids[-1]
            stream.digest.update(b"\n".join(ids) + b"\n")
            histogram = self.histogram
            for ms, n in Counter(stamps).items():
                histogram[min(max(now_ms - int(ms), 0), HISTOGRAM_MS)] += n
        if not stream.live:
            stream.live = True
            self._settle()
        if not stream.done and self.expected_last is not None and stream.last_id == self.expected_last:
            stream.done = True
            self._settle()

    def _settle(self) -> None:
        self.settled += 1
        if self.settled >= len(self.streams):
            self.progress.set()

    async def hold(self, stream: Stream, start_delay: float) -> None:
        """One client: open the stream, read it until the server ends it, come back as a browser does."""
        loop = asyncio.get_running_loop()
        host, port, path = _split_url(self.url)
        await asyncio.sleep(start_delay)
        while True:
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            if stream.last_id:
                request += f"Last-Event-ID: {stream.last_id.decode()}\r\n"
            connection = SseConnection(self, stream, (request + "\r\n").encode())
            try:
                await asyncio.wait_for(loop.create_connection(lambda: connection, host, port), CONNECT_SECONDS)
                error = await connection.finished
            except (OSError, TimeoutError) as exc:
                error = type(exc).__name__
            if connection.status is not None:
                if connection.status != 200:
                    stream.failed = f"HTTP {connection.status}"
                    self._settle()
                    return
            if error:
                self.errors[error] += 1
                if not stream.live:
                    stream.failed = error
                    self._settle()
                    return
            # The server ended the stream (dropped as too slow, or shutting down): come back as a browser does.
            stream.reconnects += 1
            stream.tail = b""
            await asyncio.sleep(stream.retry_ms / 1000)

    def held(self) -> dict:
        return {
            "held": sum(s.live for s in self.streams),
            "failed": sum(bool(s.failed) for s in self.streams),
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
        }

    def report(self, expected: dict) -> dict:
        def complete(s: Stream) -> bool:
            return s.alerts == expected["count"] and s.digest.hexdigest() == expected["digest"] and not s.failed

        short = [s for s in self.streams if not complete(s)]
        return {
            **self.held(),
            "clients": len(self.streams),
            "complete": len(self.streams) - len(short),
            "alerts_received": sum(s.alerts for s in self.streams),
            "tallies_received": sum(s.tallies for s in self.streams),
            "bytes_received": sum(s.bytes_read for s in self.streams),
            "reconnects": sum(s.reconnects for s in self.streams),
            "incomplete_sample": [
                {"alerts": s.alerts, "last_id": s.last_id.decode(), "failed": s.failed} for s in short[:5]
            ],
            "histogram": {str(ms): n for ms, n in enumerate(self.histogram) if n},
            "cpu_seconds": round(sum(os.times()[:2]), 2),
        }

    async def run(self, control) -> None:
        tasks = [asyncio.create_task(self.hold(stream, i / self.ramp_per_s)) for i, stream in enumerate(self.streams)]
        await self.progress.wait()
        control.send(self.held())
        order = await control.receive()
        expected = order["expect"]
        self.progress.clear()
        self.settled = sum(bool(s.failed) for s in self.streams)
        if expected["count"]:
            self.expected_last = expected["last"].encode()
            for stream in self.streams:
                if not stream.failed and stream.last_id == self.expected_last:
                    stream.done = True
                    self.settled += 1
        if self.settled >= len(self.streams) or not expected["count"]:
            self.progress.set()
        try:
            await asyncio.wait_for(self.progress.wait(), order["timeout"])
        except TimeoutError:
            pass  # reported: the streams that did not get every alert
        control.send(self.report(expected))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _split_url(url: str) -> tuple[str, int, str]:
    """``http://host:port/path`` as (host, port, path)."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    return host, int(port), "/" + path


class SseConnection(asyncio.Protocol):
    """One HTTP/1.1 request for an event stream; the response body is handed to ``LoadProcess.read``."""

    def __init__(self, load: LoadProcess, stream: Stream, request: bytes):
        import httptools

        self.load = load
        self.stream = stream
        self.request = request
        self.parser = httptools.HttpResponseParser(self)
        self.status: int | None = None
        self.complete = False
        self.finished: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # noqa: BLE001 - httptools' parse errors: counted, the connection closed
            self._finish(type(exc).__name__)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.load.statuses[str(self.status)] += 1

    def on_body(self, body: bytes) -> None:
        if self.status == 200:
            self.load.read(self.stream, body)

    def on_message_complete(self) -> None:
        self.complete = True
        self._finish("")

    def connection_lost(self, exc) -> None:
        self._finish("" if self.complete else "ConnectionClosedMidStream")

    def _finish(self, error: str) -> None:
        if not self.finished.done():
            self.finished.set_result(error)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Pipes:
    """A load process's side of its JSON-lines conversation with the bench (stdin and stdout)."""

    def send(self, message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def receive(self) -> dict:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            raise SystemExit("the bench went away")
        return json.loads(line)


def _raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def load_process_main(url: str, count: int, ramp_per_s: float) -> None:
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise SystemExit(f"url: {url!r} is not on {LOOPBACK}: the load runs on loopback only")
    _raise_open_files_limit(count + 100)
    import uvloop  # as under `tallyroom web`: the clients should not be the slow side

    uvloop.run(LoadProcess(url, count, ramp_per_s).run(_Pipes()))


# --- the bench ------------------------------------------------------------------------------------


def percentile_ms(histogram: Counter[int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for ms in sorted(histogram):
        seen += histogram[ms]
        if seen > rank:
            return float(ms)
    return float(max(histogram))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class PageProbe(threading.Thread):
    """Fetches the state API and the dashboard every ``interval`` during the replay: their statuses."""

    def __init__(self, base_url: str, election: str, interval: float):
        super().__init__(daemon=True)
        self.urls = [f"{base_url}/api/e/{election}/state", f"{base_url}/e/{election}"]
        self.interval = interval
        self.statuses: Counter[str] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as client:
            while not self.stopping.is_set():
                for url in self.urls:
                    try:
                        self.statuses[str(client.get(url).status_code)] += 1
                    except httpx.HTTPError as exc:
                        self.statuses[type(exc).__name__] += 1
                self.stopping.wait(self.interval)

    def stop(self) -> dict:
        self.stopping.set()
        self.join(60)
        return dict(self.statuses)


def _start_load_processes(url: str, options: ViewerOptions) -> list[subprocess.Popen]:
    shares = [options.clients // options.procs + (i < options.clients % options.procs) for i in range(options.procs)]
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tallyroom.bench.viewers",
                "load-process",
                "--url",
                url,
                "--clients",
                str(share),
                "--ramp-per-s",
                str(options.ramp_per_s / options.procs),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        for share in shares
        if share
    ]


def _read_line(process: subprocess.Popen, seconds: float) -> dict:
    """One JSON line from a load process, or an error naming it."""
    answer: list[str] = []
    assert process.stdout is not None  # started with stdout=PIPE
    out = process.stdout
    reader = threading.Thread(target=lambda: answer.append(out.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if not answer or not answer[0]:
        raise RuntimeError(f"load process {process.pid} said nothing within {seconds:.0f}s (exit {process.poll()})")
    return json.loads(answer[0])


def _wait_for_web(url: str, web, seconds: float) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise RuntimeError(f"tallyroom web exited with {web.process.returncode}:\n{web.log_tail()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"tallyroom web did not answer /healthz within {seconds:.0f}s:\n{web.log_tail()}")


def measure(settings: Settings, env: dict[str, str], election: str, options: ViewerOptions, console) -> dict:
    """The load itself, on a worker and sink already running on ``settings``."""
    from tallyroom import processes
    from tallyroom.bench.load import expected_version
    from tallyroom.bench.runner import cpu_seconds, memory_mb
    from tallyroom.consumers.keys import ElectionKeys, stream_entries
    from tallyroom.consumers.reader import wait_for_declared
    from tallyroom.consumers.redis_sink import redis_client
    from tallyroom.producers.kafka import DeclarationSender
    from tallyroom.producers.nights import load_night

    options.check()
    night = load_night(options.night, election)
    port = free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    _raise_open_files_limit(options.clients + 1_000)  # the web process inherits it
    web = processes.start("web", settings, "--host", LOOPBACK, "--port", str(port), env=env, log_name=f"{election}-web")
    loads: list[subprocess.Popen] = []
    try:
        # The night opens first: an election is known (and its event stream served) from its opening.
        opener = DeclarationSender(settings)
        opener.open_night(night.opened)
        _, failures = opener.flush()
        opener.close()
        if failures:
            raise RuntimeError(f"the night's opening was not acknowledged: {failures[0]}")
        wait_for_declared(redis_client(settings), election, 0, options.timeout, version=0)
        _wait_for_web(base_url, web, 60)
        pid = web.process.pid
        idle = {"cpu_seconds": cpu_seconds(pid), **memory_mb(pid)}
        console.print(f"web on {base_url} (pid {pid}): {idle['rss_mb']} MB; opening {options.clients:,} streams ...")
        opened = time.monotonic()
        loads = _start_load_processes(f"{base_url}/e/{election}/events", options)
        held_reports = [_read_line(p, options.timeout + options.clients / options.ramp_per_s) for p in loads]
        held = sum(r["held"] for r in held_reports)
        at_held = {"cpu_seconds": cpu_seconds(pid), **memory_mb(pid), "seconds_to_hold": time.monotonic() - opened}
        console.print(f"  {held:,} of {options.clients:,} streams live; web RSS {at_held['rss_mb']} MB")

        probe = PageProbe(base_url, election, options.probe_interval)
        probe.start()
        sender = DeclarationSender(settings)
        replay_start = time.monotonic()
        cpu_start = cpu_seconds(pid)
        for declaration in night.declarations:
            sender.send(declaration)
        acked, failures = sender.flush()
        sender.close()
        if failures:
            raise RuntimeError(f"replay: {len(failures)} declarations not acknowledged: {failures[0]}")
        client = redis_client(settings)
        wait_for_declared(
            client, election, len(night.opened.seats), options.timeout, version=expected_version(night.declarations)
        )
        landed = time.monotonic()
        ids = [str(sid) for sid, _ in stream_entries(client.xrange(ElectionKeys(election).alerts))]
        expected = {
            "count": len(ids),
            "last": ids[-1] if ids else "",
            "digest": hashlib.blake2b("".join(f"{sid}\n" for sid in ids).encode()).hexdigest(),
        }
        console.print(f"  night landed in {landed - replay_start:.2f}s: {len(ids)} alerts; waiting for every client")
        for process in loads:
            assert process.stdin is not None  # started with stdin=PIPE
            process.stdin.write(json.dumps({"expect": expected, "timeout": options.timeout}) + "\n")
            process.stdin.flush()
        reports = [_read_line(p, options.timeout + 60) for p in loads]
        delivered = time.monotonic()
        cpu_end = cpu_seconds(pid)
        end = memory_mb(pid)
        page_statuses = probe.stop()
        load_cpu = [r["cpu_seconds"] for r in reports]
    finally:
        for process in loads:
            if process.poll() is None:
                process.kill()
            process.wait()
        web.stop()
    histogram: Counter[int] = Counter()
    for report in reports:
        histogram.update({int(ms): n for ms, n in report["histogram"].items()})
    statuses = sum((Counter(r["statuses"]) for r in reports), Counter())
    window = delivered - replay_start
    return {
        "election": election,
        "clients": options.clients,
        "load_processes": len(loads),
        "held": held,
        "failed_to_hold": sum(r["failed"] for r in held_reports),
        "seconds_to_hold": round(at_held["seconds_to_hold"], 1),
        "alerts_in_stream": expected["count"],
        "clients_with_every_alert": sum(r["complete"] for r in reports),
        "deliveries": sum(r["alerts_received"] for r in reports),
        "tally_events": sum(r["tallies_received"] for r in reports),
        "megabytes_received": round(sum(r["bytes_received"] for r in reports) / 1e6, 1),
        "reconnects": sum(r["reconnects"] for r in reports),
        "incomplete_sample": [s for r in reports for s in r["incomplete_sample"]][:5],
        "stream_statuses": dict(statuses),
        "stream_errors": dict(sum((Counter(r["errors"]) for r in reports), Counter())),
        "page_statuses": page_statuses,
        "delay_ms": {
            "from": "the alert's XADD in Redis (its stream id) to the client reading it",
            "p50": percentile_ms(histogram, 0.50),
            "p90": percentile_ms(histogram, 0.90),
            "p99": percentile_ms(histogram, 0.99),
            "max": float(max(histogram)) if histogram else None,
        },
        "seconds": {
            "night_landed": round(landed - replay_start, 2),
            "last_alert_delivered": round(delivered - replay_start, 2),
        },
        "web": {
            "rss_mb_idle": idle["rss_mb"],
            "rss_mb_held": at_held["rss_mb"],
            "rss_mb_end": end["rss_mb"],
            "peak_rss_mb": end["hwm_mb"],
            "cpu_seconds_opening_streams": round(at_held["cpu_seconds"] - idle["cpu_seconds"], 2),
            "cpu_seconds_replay": round(cpu_end - cpu_start, 2),
            "cpu_percent_of_one_core_replay": round(100 * (cpu_end - cpu_start) / window, 1) if window else None,
            "log": str(web.log_path),
        },
        "load_process_cpu_seconds": load_cpu,
    }


def run(base: Settings, options: ViewerOptions, console=None) -> dict:
    """The whole bench: its own worker and sink, the load, its topics and keys removed afterwards."""
    from rich.console import Console

    from tallyroom import stack as local_stack
    from tallyroom.bench.runner import _clean_up, bench_settings, start_pipeline
    from tallyroom.producers.kafka import ensure_topics

    console = console or Console()
    options.check()
    run_id = uuid.uuid4().hex[:6]
    settings, env = bench_settings(base, run_id, options.redis_db)
    election = f"bench-{run_id}-viewers"
    console.print(
        f"[bold]viewers bench {run_id}[/]: {options.clients:,} SSE clients in {options.procs} load processes, "
        f"{options.night.name} at max speed; Redis {settings.redis_url}"
    )
    local_stack.up(settings, console)
    started = time.time()
    try:
        ensure_topics(settings)
        pipeline = start_pipeline(settings, env)
        try:
            figures = measure(settings, env, election, options, console)
        finally:
            pipeline.stop()
    finally:
        if not options.keep:
            _clean_up(settings, run_id)
    if options.floor and figures["megabytes_received"]:
        # With the pipeline and the web process stopped: the same bytes, nothing else on the cores.
        floor = asdict(loopback.measure(figures["megabytes_received"], figures["held"] or 1))
        # The night's last alert lands ``night_landed`` s after the first; every client's bytes take at
        # least ``floor.seconds`` to move from the first: the last alert's delay can be no shorter than that.
        floor["last_alert_delay_at_least_s"] = round(max(0.0, floor["seconds"] - figures["seconds"]["night_landed"]), 2)
        figures["loopback_floor"] = floor
    results = {
        "run_id": run_id,
        "started_at": started,
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        **figures,
    }
    options.out.mkdir(parents=True, exist_ok=True)
    path = options.out / f"viewers-{run_id}.json"
    results["file"] = str(path)
    path.write_text(json.dumps(results, indent=2) + "\n")
    _print(results, console)
    return results


def _print(results: dict, console) -> None:
    delay, web = results["delay_ms"], results["web"]
    console.print(
        f"  held {results['held']:,} of {results['clients']:,}; every alert ({results['alerts_in_stream']}) "
        f"reached {results['clients_with_every_alert']:,} clients; reconnects {results['reconnects']}; "
        f"{results['megabytes_received']:,} MB read by the clients\n"
        f"  delay from Redis to client: p50 {delay['p50']} p90 {delay['p90']} p99 {delay['p99']} "
        f"max {delay['max']} ms\n"
        f"  web: RSS {web['rss_mb_idle']} MB idle, {web['rss_mb_held']} MB holding, peak {web['peak_rss_mb']} MB; "
        f"CPU {web['cpu_seconds_replay']} s over the replay ({web['cpu_percent_of_one_core_replay']}% of a core)\n"
        f"  streams answered {results['stream_statuses']}; state API and page answered {results['page_statuses']}\n"
        + (
            f"  floor: the same {floor['megabytes']:,} MB over {floor['connections']:,} raw loopback sockets "
            f"(no HTTP, no parsing) took {floor['seconds']} s ({floor['gigabytes_per_second']} GB/s; CPU "
            f"{floor['sender_cpu_seconds']} s sending + {floor['receiver_cpu_seconds']} s receiving): the night's "
            f"last alert could reach every client no sooner than {floor['last_alert_delay_at_least_s']} s "
            "after it landed\n"
            if (floor := results.get("loopback_floor"))
            else ""
        )
        + f"  wrote {results['file']}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode")
    load = sub.add_parser("load-process", help="(internal) one load process, driven over stdin/stdout")
    load.add_argument("--url", required=True)
    load.add_argument("--clients", type=int, required=True)
    load.add_argument("--ramp-per-s", type=float, required=True)
    defaults = ViewerOptions()
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--procs", type=int, default=defaults.procs, help="load processes to split the clients over")
    parser.add_argument("--night", type=Path, default=defaults.night)
    parser.add_argument("--ramp-per-s", type=float, default=defaults.ramp_per_s, help="streams opened per second")
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="seconds allowed for each phase")
    parser.add_argument("--redis-db", type=int, default=defaults.redis_db)
    parser.add_argument("--out", type=Path, default=defaults.out)
    parser.add_argument("--keep", action="store_true", help="leave the run's topics and Redis keys")
    parser.add_argument("--no-floor", action="store_true", help="skip the raw loopback reference (bench.loopback)")
    args = parser.parse_args(argv)
    if args.mode == "load-process":
        load_process_main(args.url, args.clients, args.ramp_per_s)
        return
    from tallyroom.settings import get_settings

    options = ViewerOptions(
        clients=args.clients,
        procs=args.procs,
        night=args.night,
        ramp_per_s=args.ramp_per_s,
        timeout=args.timeout,
        redis_db=args.redis_db,
        out=args.out,
        keep=args.keep,
        floor=not args.no_floor,
    )
    try:
        options.check()
    except ValueError as exc:
        parser.error(str(exc))
    run(get_settings(), options)


if __name__ == "__main__":
    main()
