"""The `tallyroom` command: subcommands name the domain's nouns."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from tallyroom.settings import Settings, get_settings

app = typer.Typer(help="Tallyroom: live election results, upsets flagged, alerts pushed to subscribers.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
stack_app = typer.Typer(help="The local Kafka broker and Redis server.", no_args_is_help=True)
schemas_app = typer.Typer(help="The wire contract as JSON Schema.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(schemas_app, name="schemas")
console = Console()
err = Console(stderr=True)

NIGHT = typer.Option(Path("data/ge2024"), "--night", help="night directory in the Library's layout")
ELECTION = typer.Option(None, "--election", help="election id (default: the night directory's name)")


def _settings(election: str | None = None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"election": election}) if election else settings


# --- stack ---------------------------------------------------------------------------------

@stack_app.command("up")
def stack_up() -> None:
    """Fetch (once) and start Kafka and Redis; a no-op for what already runs."""
    from tallyroom import stack
    stack.up(get_settings(), console)


@stack_app.command("down")
def stack_down() -> None:
    """Stop Kafka and Redis."""
    from tallyroom import stack
    stack.down(get_settings())


@stack_app.command("status")
def stack_status() -> None:
    """Say what runs where."""
    from tallyroom import stack
    table = Table("service", "running", "pid", "address", "detail")
    for s in stack.status(get_settings()):
        table.add_row(s.name, "[green]up[/]" if s.running else "[red]down[/]", str(s.pid or "-"), s.address, s.detail)
    console.print(table)


# --- schemas and nights ----------------------------------------------------------------------

@schemas_app.command("export")
def schemas_export(directory: Path = typer.Argument(Path("schemas/json"))) -> None:
    """Write one JSON Schema file per event and alert."""
    from schemas.export import json_schemas
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        console.print(f"wrote {directory / name}.schema.json")


@app.command()
def baseline(night: Path = NIGHT) -> None:
    """Write NIGHT/baseline.csv: who held each seat before the night, from the Result column."""
    from tallyroom.nights import NightFormatError, write_baseline
    try:
        out = write_baseline(night)
    except (NightFormatError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2)
    console.print(f"wrote {out}")


@app.command()
def night(night: Path = NIGHT, election: Optional[str] = ELECTION) -> None:
    """Check a night directory: seats, candidates, first and last declaration, data flaws."""
    loaded = _load(night, election)
    d = loaded.declarations
    console.print(f"[bold]{loaded.election}[/]: {loaded.total_seats} seats, {sum(len(x.candidates) for x in d)} candidates, "
                  f"declared {d[0].declared_at:%d %b %H:%M} to {d[-1].declared_at:%d %b %H:%M %Z}")
    _print_flaws(loaded.flaws)


def _load(night_dir: Path, election: str | None):
    from tallyroom.nights import NightFormatError, load_night
    try:
        return load_night(night_dir, election or _settings().election)
    except (NightFormatError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2)


def _print_flaws(flaws: list[str]) -> None:
    for flaw in flaws:
        err.print(f"[yellow]data flaw[/] {flaw} (seat kept; candidates' votes used)")


# --- the pipeline ------------------------------------------------------------------------------

@app.command()
def replay(
    night: Path = NIGHT,
    election: Optional[str] = ELECTION,
    speed: Optional[float] = typer.Option(None, "--speed", help="divide the real gaps between declarations by N"),
    realtime: bool = typer.Option(False, "--realtime", help="the night's real pace"),
    fastest: bool = typer.Option(False, "--max", help="as fast as the broker takes them"),
    duration: Optional[float] = typer.Option(None, "--duration", help="fit the night into about S seconds"),
    wait: bool = typer.Option(False, "--wait", help="return when every seat has landed in Redis"),
    timeout: float = typer.Option(300, "--timeout", help="seconds --wait waits"),
) -> None:
    """Replay a past night into Kafka with its real declaration times."""
    from producers.kafka import DeclarationSender, ensure_topics
    from producers.replay import replay_night
    settings = _settings()
    loaded = _load(night, election)
    _print_flaws(loaded.flaws)
    pace = _pace(loaded, speed, realtime, fastest, duration)
    ensure_topics(settings)
    sender = DeclarationSender(settings)
    try:
        report = replay_night(loaded, sender, pace, console)
    finally:
        sender.close()
    colour = "green" if not report.failures else "red"
    console.print(f"[{colour}]{report.acknowledged} of {report.sent} events acknowledged by the broker "
                  f"in {report.seconds:.1f}s[/]")
    if report.failures:
        err.print(f"[red]{len(report.failures)} not delivered; first: {report.failures[0]!r}")
        raise typer.Exit(1)
    if wait:
        _wait(settings, loaded.election, loaded.total_seats, timeout)


def _pace(loaded, speed, realtime, fastest, duration) -> float | None:
    if sum(bool(x) for x in (speed, realtime, fastest, duration)) > 1:
        raise typer.BadParameter("choose one of --speed, --realtime, --max, --duration")
    if fastest:
        return None
    if realtime:
        return 1.0
    if speed:
        return speed
    span = (loaded.declarations[-1].declared_at - loaded.declarations[0].declared_at).total_seconds()
    return max(span / (duration or 60.0), 1.0) if span else None


def _wait(settings: Settings, election: str, expected: int, timeout: float):
    from consumers.reader import wait_for_declared
    from consumers.redis_sink import redis_client
    try:
        state = wait_for_declared(redis_client(settings), election, expected, timeout)
    except TimeoutError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(1)
    console.print(f"[green]{state.declared} of {state.total} seats landed in Redis[/]")
    return state


@app.command()
def declare(
    source: Path = typer.Argument(Path("-"), help="file of JSON declarations, one per line; - for stdin"),
) -> None:
    """Live entry: send declarations (or recount notices) typed in during a count."""
    from producers.kafka import DeclarationSender, ensure_topics
    from producers.live import send_lines
    settings = _settings()
    lines = sys.stdin if str(source) == "-" else source.open(encoding="utf-8")
    ensure_topics(settings)
    sender = DeclarationSender(settings)
    try:
        report = send_lines(lines, sender)
    finally:
        sender.close()
    for problem in report.errors:
        err.print(f"[red]record {problem.record}: {problem.field}: {problem.message}")
    console.print(f"{report.acknowledged} sent and acknowledged, {len(report.errors)} refused")
    if report.errors or report.failures:
        raise typer.Exit(1)


@app.command()
def entry(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8081, "--port", help="port to listen on"),
) -> None:
    """Live entry over HTTP: POST the same JSON as `declare` to /declarations."""
    import uvicorn
    from producers.http import create_entry_app
    from producers.kafka import ensure_topics
    settings = _settings()
    ensure_topics(settings)
    uvicorn.run(create_entry_app(settings), host=host, port=port)


@app.command()
def worker() -> None:
    """Run the Faust worker: tallies and upset rules (stops cleanly on SIGTERM)."""
    from faust import Worker
    from producers.kafka import ensure_topics
    from streams.app import app as faust_app
    # Faust subscribes only to topics that exist when it starts.
    ensure_topics(get_settings())
    Worker(faust_app, loglevel="info").execute_from_commandline()


@app.command()
def sink() -> None:
    """Run the Redis sink: alerts, tallies and seat results into Redis (stops on SIGTERM)."""
    import logging
    from consumers.redis_sink import run_sink
    from producers.kafka import ensure_topics
    ensure_topics(get_settings())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    counts = run_sink(get_settings())
    console.print(f"sink stopped: {counts}")


@app.command()
def serve(
    web: bool = typer.Option(False, "--web/--no-web", help="also serve the web page"),
) -> None:
    """Run the worker and the sink (and the web page) together, restarting any that dies."""
    from tallyroom import processes
    names = ["worker", "sink"] + (["web"] if web else [])
    console.print(f"supervising {', '.join(names)}; logs in {get_settings().stack_dir / 'logs'}")
    processes.supervise(names, get_settings(), console)


@app.command()
def seats(election: str = typer.Option("ge2024", "--election")) -> None:
    """Print the tally held in Redis: seats, votes, share, gains and losses."""
    from consumers.reader import read_state
    from consumers.redis_sink import redis_client
    state = read_state(redis_client(get_settings()), election)
    _print_tally(state)


def _print_tally(state) -> None:
    table = Table(title=f"{state.election}: {state.declared} of {state.total} declared")
    for column in ("party", "seats", "votes", "share", "gains", "losses", "net"):
        table.add_column(column, justify="left" if column == "party" else "right")
    parties = state.tally.parties.values() if state.tally else []
    for p in sorted(parties, key=lambda t: (-t.seats, -t.votes)):
        if p.seats or p.votes:
            table.add_row(p.party, str(p.seats), f"{p.votes:,}", f"{p.share:.1%}", str(p.gains), str(p.losses), f"{p.net:+d}")
    console.print(table)


@app.command()
def run(
    night: Path = NIGHT,
    election: Optional[str] = ELECTION,
    duration: float = typer.Option(60, "--duration", help="seconds the replay should take"),
    timeout: float = typer.Option(300, "--timeout"),
    keep_running: bool = typer.Option(False, "--keep-running", help="leave worker and sink running"),
) -> None:
    """The main job: stack up, worker and sink started, the night replayed, a summary printed."""
    from consumers.reader import alert_counts
    from consumers.redis_sink import redis_client
    from producers.kafka import DeclarationSender, ensure_topics
    from producers.replay import replay_night
    from tallyroom import processes, stack
    settings = _settings()
    # SIGTERM must unwind through `finally` so the worker and sink are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stack.up(settings, console)
    loaded = _load(night, election)
    _print_flaws(loaded.flaws)
    ensure_topics(settings)
    worker_proc = processes.start("worker", settings)
    sink_proc = processes.start("sink", settings)
    try:
        processes.wait_alive(worker_proc, 3)
        processes.wait_alive(sink_proc, 1)
        sender = DeclarationSender(settings)
        try:
            report = replay_night(loaded, sender, _pace(loaded, None, False, False, duration), console)
        finally:
            sender.close()
        console.print(f"{report.acknowledged} of {report.sent} events acknowledged by the broker")
        state = _wait(settings, loaded.election, loaded.total_seats, timeout)
        _print_tally(state)
        counts = alert_counts(redis_client(settings), loaded.election)
        table = Table("alert", "count", title="alerts by kind")
        for kind, n in counts.most_common():
            table.add_row(kind, str(n))
        console.print(table)
    finally:
        if not keep_running:
            for proc in (worker_proc, sink_proc):
                proc.stop()
    console.print(f"logs in {settings.stack_dir / 'logs'}; `tallyroom stack down` stops Kafka and Redis")
