"""The `tallyroom` command: subcommands name the domain's nouns."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from tallyroom.settings import Settings, get_settings

app = typer.Typer(
    help="Tallyroom: live election results, upsets flagged, alerts pushed to subscribers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
stack_app = typer.Typer(help="The local Kafka broker and Redis server.", no_args_is_help=True)
schemas_app = typer.Typer(help="The wire contract as JSON Schema.", no_args_is_help=True)
operators_app = typer.Typer(help="Operators who may enter results, and their tokens.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(schemas_app, name="schemas")
app.add_typer(operators_app, name="operators")
console = Console()
err = Console(stderr=True)

NIGHT = typer.Option(
    Path("data/ge2024"),
    "--night",
    exists=True,
    file_okay=False,
    help="night directory in the Library's layout",
)
ELECTION = typer.Option(
    None, "--election", help="election id (default: TALLYROOM_ELECTION, else the night directory's name)"
)
# Live entry (declare, entry): what the night it is given refuses.
ENTRY_NIGHT = typer.Option(
    None,
    "--night",
    exists=True,
    file_okay=False,
    help="refuse seats (and elections) not in this night (default: none, any seat is taken)",
)
NOMINATIONS = typer.Option(
    True, "--nominations/--no-nominations", help="with --night: refuse candidates not nominated, and missing ones"
)
# Readers of Redis pick the election one way (consumers.reader.pick_election).
PICKED = typer.Option(
    None,
    "--election",
    help="election id (default: TALLYROOM_ELECTION, else the only election in Redis)",
)


def _positive(value: float | None) -> float | None:
    """An option that must be more than 0 (typer's ``min`` admits 0 itself)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"must be more than 0, not {value:g}")
    return value


DEFAULT_REPLAY_SECONDS = 60.0  # a replay with no pace chosen fits the night into a minute
STALL_TIMEOUT = typer.Option(
    60.0,
    "--stall-timeout",
    min=1,
    help="fail once nothing has moved for this many seconds while seats are still to land (default 60: "
    "a worker restarted after a crash takes its 10 s session timeout and its start-up)",
)


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a bare container)
        return "unknown"


def _settings(election: str | None = None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"election": election}) if election else settings


@app.callback()
def options(
    debug: bool = typer.Option(
        False, "--debug", help="show the traceback of a failure instead of one line (also TALLYROOM_DEBUG=1)"
    ),
) -> None:
    """Tallyroom: live election results, upsets flagged, alerts pushed to subscribers."""
    if debug:
        import os

        os.environ["TALLYROOM_DEBUG"] = "1"  # for the processes this one starts, too
        get_settings.cache_clear()


def _redis(settings: Settings | None = None):
    """A Redis client that has answered one PING: else a one-line ``ServiceUnreachable``."""
    from tallyroom.consumers.redis_sink import redis_client
    from tallyroom.lifecycle import check_redis

    settings = settings or get_settings()
    client = redis_client(settings)
    check_redis(client, settings)
    return client


def _picked(client, election: str | None, audited: bool = False) -> str:
    """The election a reader shows: the option, TALLYROOM_ELECTION, or the only one in Redis."""
    from tallyroom.consumers.reader import AUDITED, OPENED, pick_election

    return pick_election(client, election, get_settings().election, AUDITED if audited else OPENED)


# --- stack ---------------------------------------------------------------------------------


@stack_app.command("up")
def stack_up(
    brokers: int = typer.Option(
        None,
        "--brokers",
        min=1,
        max=9,
        help="Kafka brokers, each also a KRaft controller (default: what runs, else TALLYROOM_STACK_BROKERS, 1); "
        "broker i (0, 1, ...) listens on the bootstrap port + i*TALLYROOM_STACK_PORT_STEP",
    ),
    secure: bool = typer.Option(
        False,
        "--secure",
        help="Kafka SASL/SCRAM and Redis ACL users, with generated passwords in STACK_DIR/credentials/ "
        "(kept: the stack stays secure until that folder is removed)",
    ),
) -> None:
    """Fetch (once) and start Kafka and Redis; a no-op for what already runs."""
    from tallyroom import stack, stack_secure

    settings = get_settings()
    if secure:
        settings = settings.model_copy(update={"stack_secure": True})
    try:
        stack.up(settings, console, brokers=brokers)
    except stack.StackError as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    if stack_secure.secure(settings):
        folder = stack_secure.credentials_dir(settings)
        console.print(f"credentials: `source {folder}/<role>.env` (roles: {', '.join(stack_secure.ROLES)})")


@stack_app.command("down")
def stack_down() -> None:
    """Stop Kafka (every broker) and Redis."""
    from tallyroom import stack

    stack.down(get_settings())


@stack_app.command("status")
def stack_status() -> None:
    """Say what runs where: each broker (up or down, pid, address) and Redis."""
    from tallyroom import stack

    settings = get_settings()
    table = Table("service", "running", "pid", "address", "detail")
    services = stack.status(settings)
    for s in services:
        table.add_row(s.name, "[green]up[/]" if s.running else "[red]down[/]", str(s.pid or "-"), s.address, s.detail)
    console.print(table)
    if any(s.name.startswith("kafka") and s.running for s in services):
        _print_lag(stack.probe_settings(settings))  # a secure stack is asked as its admin


def _print_lag(settings: Settings) -> None:
    """How far the worker and the sink are behind: records on each topic their group has not committed."""
    from kafka.errors import KafkaError

    from tallyroom.lag import LagProbe

    probe = LagProbe(settings)
    try:
        lag = Table("consumer group", "topic", "not yet committed", title="lag")
        for group, topic in (
            (settings.worker_id, settings.topic_declarations),
            (settings.sink_group, settings.topic_results),
            (settings.sink_group, settings.topic_dead_letters),
        ):
            lag.add_row(group, topic, f"{probe.lag(group, topic):,}")
        console.print(lag)
    except KafkaError as exc:  # e.g. a cluster just started, its offsets topic not yet led
        console.print(f"lag: not known yet ({type(exc).__name__})")
    finally:
        probe.close()


# --- operators -------------------------------------------------------------------------------


def _operator_store():
    from tallyroom.producers.operators import OperatorStore

    return OperatorStore(get_settings().operators_path)


@operators_app.command("add")
def operators_add(
    name: str = typer.Argument(..., help="the operator's name, as the audit trail will show it"),
    role: str = typer.Option(
        "entry", "--role", help="entry (results, rushes, recounts) or admin (also nights, withdrawals)"
    ),
) -> None:
    """Add an operator and print their token: once, as only its hash is kept."""
    from tallyroom.producers.operators import OperatorError, Role

    try:
        token = _operator_store().add(name, Role(role))
    except ValueError as exc:  # OperatorError, or a role that is neither entry nor admin
        message = str(exc) if isinstance(exc, OperatorError) else f"--role: {role!r} is not entry or admin"
        err.print(message, style="red", markup=False)
        raise typer.Exit(2)
    err.print(f"operator {name} ({role}) added; the token is shown this once:", style="green", markup=False)
    sys.stdout.write(token + "\n")


@operators_app.command("list")
def operators_list() -> None:
    """The operators: name, role, since when, revoked or not (never a token)."""
    table = Table("name", "role", "added", "revoked", title=str(get_settings().operators_path))
    for op in _operator_store().operators().values():
        table.add_row(op.name, op.role.value, op.created_at[:19], (op.revoked_at or "")[:19])
    console.print(table)


@operators_app.command("revoke")
def operators_revoke(name: str = typer.Argument(...)) -> None:
    """Revoke an operator's token: the next request with it is refused (401)."""
    from tallyroom.producers.operators import OperatorError

    try:
        revoked = _operator_store().revoke(name)
    except OperatorError as exc:
        err.print(str(exc), style="red", markup=False)
        raise typer.Exit(2)
    console.print(f"operator {revoked.name} revoked at {revoked.revoked_at}", markup=False)


# --- schemas and nights ----------------------------------------------------------------------


@schemas_app.command("export")
def schemas_export(
    directory: Path = typer.Argument(Path("schemas/json")),
    readme: Path = typer.Option(Path("README.md"), help="redraw this README's table of alert kinds, if it exists"),
) -> None:
    """Write one JSON Schema file per event and alert, and redraw the README's table of alert kinds."""
    from tallyroom.schemas.export import json_schemas, with_kinds_table

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / f"{name}.schema.json").write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        console.print(f"wrote {directory / name}.schema.json")
    if readme.is_file():
        readme.write_text(with_kinds_table(readme.read_text()))
        console.print(f"wrote the table of alert kinds in {readme}")


@app.command()
def baseline(
    night: Path = NIGHT,
    previous: Path | None = typer.Option(
        None,
        "--previous",
        exists=True,
        file_okay=False,
        help="the previous night (Library layout): shares and turnout by ONS id (default: none, from the candidate "
        "file's Share and Change)",
    ),
) -> None:
    """Write NIGHT/baseline.csv: who held each seat (the Result column) and its previous figures:
    from --previous, else from the candidate file's Share and Change columns where it has them."""
    from tallyroom.producers.nights import NightFormatError, write_baseline

    try:
        out = write_baseline(night, previous)
    except (NightFormatError, FileNotFoundError) as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2)
    console.print(f"wrote {out}")


@app.command()
def night(night: Path = NIGHT, election: str | None = ELECTION) -> None:
    """Check a night directory: seats, candidates, first and last declaration, data flaws."""
    loaded = _load(night, election)
    d = loaded.declarations
    console.print(
        f"[bold]{loaded.election}[/]: {loaded.total_seats} seats, {sum(len(x.candidates) for x in d)} candidates, "
        f"declared {d[0].declared_at:%d %b %H:%M} to {d[-1].declared_at:%d %b %H:%M %Z}; "
        f"figures from last time for {sum(1 for s in loaded.opened.seats if s.previous)} seats"
    )
    _print_flaws(loaded.flaws)


def _load(night_dir: Path, election: str | None):
    from tallyroom.producers.nights import NightFormatError, load_night

    try:
        return load_night(night_dir, election or _settings().election)
    except (NightFormatError, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2)


def _print_flaws(flaws: list[str]) -> None:
    for flaw in flaws:
        err.print(f"[yellow]data flaw[/] {flaw} (seat kept; candidates' votes used)")


# --- the pipeline ------------------------------------------------------------------------------


@app.command()
def replay(
    night: Path = NIGHT,
    election: str | None = ELECTION,
    speed: float | None = typer.Option(
        None,
        "--speed",
        callback=_positive,
        help="divide the real gaps between declarations by N, more than 0 (default: the night fitted into "
        f"{DEFAULT_REPLAY_SECONDS:.0f} s, as --duration)",
    ),
    realtime: bool = typer.Option(False, "--realtime", help="the night's real pace"),
    fastest: bool = typer.Option(False, "--max", help="as fast as the broker takes them"),
    duration: float | None = typer.Option(
        None,
        "--duration",
        callback=_positive,
        help=f"fit the night into about S seconds (default {DEFAULT_REPLAY_SECONDS:.0f} when no pace is chosen)",
    ),
    wait: bool = typer.Option(False, "--wait", help="return when every seat has landed in Redis"),
    timeout: float = typer.Option(300, "--timeout", callback=_positive, help="seconds --wait waits"),
    stall_timeout: float = STALL_TIMEOUT,
    rushes: float | None = typer.Option(
        None,
        "--rushes",
        min=0,
        help="send each seat's rush (its winner) MINUTES of night clock before its result (default: no rushes)",
    ),
) -> None:
    """Replay a past night into Kafka with its real declaration times."""
    from tallyroom.producers.kafka import DeclarationSender, ensure_topics
    from tallyroom.producers.replay import replay_night

    settings = _settings()
    loaded = _load(night, election)
    _print_flaws(loaded.flaws)
    pace = _pace(loaded, speed, realtime, fastest, duration)
    if wait:
        _redis(settings)  # --wait reads Redis: say it is not answering before sending anything
    ensure_topics(settings)
    sender = DeclarationSender(settings)
    try:
        report = replay_night(loaded, sender, pace, console, entered_by=_login_name(), rushes_minutes=rushes)
    finally:
        sender.close()
    colour = "green" if not report.failures else "red"
    console.print(
        f"[{colour}]{report.acknowledged} of {report.sent} events acknowledged by the broker "
        f"in {report.seconds:.1f}s[/]"
    )
    if report.failures:
        err.print(f"[red]{len(report.failures)} not delivered; first: {report.failures[0]!r}")
        raise typer.Exit(1)
    if wait:
        _wait(settings, loaded.election, loaded.total_seats, timeout, stall_timeout)


def _pace(loaded, speed, realtime, fastest, duration) -> float | None:
    if sum(x is not None and x is not False for x in (speed, realtime, fastest, duration)) > 1:
        raise typer.BadParameter("choose one of --speed, --realtime, --max, --duration")
    if fastest:
        return None
    if realtime:
        return 1.0
    if speed is not None:
        return speed
    span = (loaded.declarations[-1].declared_at - loaded.declarations[0].declared_at).total_seconds()
    return max(span / (duration or DEFAULT_REPLAY_SECONDS), 1.0) if span else None


def _wait(settings: Settings, election: str, expected: int, timeout: float, stall_seconds: float):
    """Wait for the night to land in Redis; fail as soon as the pipeline has visibly stopped."""
    from tallyroom.consumers.reader import read_state
    from tallyroom.lag import LagProbe, PipelineReading, PipelineStalled, wait_for_night

    client = _redis(settings)
    probe = LagProbe(settings)

    def read() -> PipelineReading:
        state = read_state(client, election)
        return PipelineReading(
            landed=(state.declared, state.tally.version if state.tally else -1),
            results_written=probe.end(settings.topic_results) + probe.end(settings.topic_dead_letters),
            worker_lag=probe.lag(settings.worker_id, settings.topic_declarations),
            sink_lag=probe.lag(settings.sink_group, settings.topic_results),
        )

    try:
        wait_for_night(read, expected, timeout, stall_seconds)
    except (TimeoutError, PipelineStalled) as exc:
        err.print(f"[red]{election}: {exc}")
        raise typer.Exit(1)
    finally:
        probe.close()
    state = read_state(client, election)
    console.print(f"[green]{state.declared} of {state.total} seats landed in Redis[/]")
    return state


@app.command()
def declare(
    source: Path = typer.Argument(
        Path("-"), help="file of JSON declarations, one per line; - for stdin", show_default=True
    ),
    night: Path | None = ENTRY_NIGHT,
    nominations: bool = NOMINATIONS,
    operator: str | None = typer.Option(None, "--operator", help="who is entering these (default: your login name)"),
) -> None:
    """Live entry: send declarations (or recount notices) typed in during a count."""
    from tallyroom.consumers.redis_sink import redis_client
    from tallyroom.producers.audit import AuditTrail
    from tallyroom.producers.kafka import DeclarationSender, ensure_topics
    from tallyroom.producers.live import Author, NightSeats, audit_attempts, send_lines

    settings = _settings()
    if str(source) != "-" and (not source.exists() or source.is_dir()):
        raise typer.BadParameter(f"{source} is not a file", param_hint="SOURCE")
    seats = NightSeats.of(_load(night, None).opened, nominations) if night else None
    author = Author(operator or _login_name(), "cli")
    # Bytes, so that a line that is not UTF-8 is refused by number instead of ending the run.
    lines = sys.stdin.buffer if str(source) == "-" else source.open("rb")
    ensure_topics(settings)
    sender = DeclarationSender(settings)
    try:
        checked, report = send_lines(lines, sender, seats, author)
    finally:
        sender.close()
    trail = AuditTrail(redis_client(settings), seats.election if seats else settings.election)
    if not trail.record(audit_attempts(checked, author, report)):
        err.print("audit trail not written: Redis is not reachable (the events name their operator)", style="yellow")
    for problem in report.errors:
        # Messages quote the input: "[/x]" or ":smile:" in a name is text, and one record is one line.
        err.print(
            f"record {problem.record}: {problem.field}: {problem.message}",
            style="red",
            markup=False,
            emoji=False,
            soft_wrap=True,
        )
    refused = len({problem.record for problem in report.errors})  # records, not their errors
    console.print(f"{report.acknowledged} sent and acknowledged, {refused} refused")
    if report.errors or report.failures:
        raise typer.Exit(1)


@app.command()
def entry(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8081, "--port", min=1, max=65535, help="port to listen on"),
    night: Path | None = ENTRY_NIGHT,
    nominations: bool = NOMINATIONS,
) -> None:
    """Live entry over HTTP: POST the same JSON as `declare` to /declarations."""
    import uvicorn

    from tallyroom.producers.http import create_entry_app
    from tallyroom.producers.kafka import ensure_topics
    from tallyroom.producers.live import NightSeats

    settings = _settings()
    seats = NightSeats.of(_load(night, None).opened, nominations) if night else None
    ensure_topics(settings)
    uvicorn.run(create_entry_app(settings, seats=seats), host=host, port=port)


@app.command()
def web(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="port to listen on"),
    election: str | None = typer.Option(
        None,
        "--election",
        help="the election at / (default: TALLYROOM_ELECTION, else the only election in Redis at each request)",
    ),
) -> None:
    """The read-only web page: seat bars, alert feed, live over Server-Sent Events."""
    from tallyroom import lifecycle
    from tallyroom.consumers.web.app import create_web_app, serve_web

    settings = _settings(election)
    _redis(settings)  # a page that starts without Redis says so and exits; one that loses it answers 503
    web_app = create_web_app(settings)
    lifecycle.tune_gc(settings)
    serve_web(web_app, host, port)


@app.command()
def worker() -> None:
    """Run the Faust worker: tallies and upset rules (stops cleanly on SIGTERM)."""
    from faust import Worker

    from tallyroom import lifecycle
    from tallyroom.lag import serve_lag, worker_lag_checks
    from tallyroom.metrics import serve_process_metrics
    from tallyroom.producers.kafka import ensure_topics
    from tallyroom.streams import faust_compat
    from tallyroom.streams.app import build_worker, changelog_topics

    settings = get_settings()
    # One deadline for the whole start-up: a broker down or an election in progress is waited out.
    start_deadline = time.monotonic() + settings.kafka_start_timeout
    # Faust subscribes only to topics that exist when it starts, and creates the changelogs it
    # lacks with one replica and no compaction: both are made here first, replicated for the cluster.
    specs = ensure_topics(settings, changelog_topics(settings), deadline=start_deadline)
    replicated = settings.model_copy(update={"topic_replication_factor": specs[0].replication_factor})
    counting = build_worker(replicated)
    faust_compat.retry_topic_creation(counting.app, start_deadline)
    serve_process_metrics(counting.tallier.metrics, settings.worker_metrics_port)
    if settings.worker_metrics_port:
        serve_lag(counting.tallier.metrics, settings, worker_lag_checks(settings))
    lifecycle.tune_gc(settings)
    try:
        Worker(counting.app, loglevel="info").execute_from_commandline()
    except SystemExit as exited:
        # Faust has logged the error and its traceback; one still named in one line (an unreachable
        # cluster once the start-up deadline passed: 69; a refused login: 78) exits with its status.
        error = faust_compat.exited_on(exited)
        if error is not None and (failure := lifecycle.one_line_failure(error, settings)) is not None:
            raise failure from error
        raise


@app.command()
def sink() -> None:
    """Run the Redis sink: alerts, tallies and seat results into Redis (stops on SIGTERM)."""
    import logging

    from tallyroom import lifecycle
    from tallyroom.consumers.redis_sink import run_sink
    from tallyroom.producers.kafka import ensure_topics

    ensure_topics(get_settings())
    _redis()  # at start, Redis must answer; later, an outage is waited out
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    lifecycle.tune_gc(get_settings())
    counts = run_sink(get_settings())
    console.print(f"sink stopped: {counts}")


@app.command()
def serve(
    web: bool = typer.Option(False, "--web/--no-web", help="also serve the web page"),
    webhooks: bool = typer.Option(False, "--webhooks/--no-webhooks", help="also deliver webhooks"),
) -> None:
    """Run the worker and the sink (and the web page, webhooks) together, restarting any that dies."""
    from tallyroom import processes

    names = ["worker", "sink"] + (["web"] if web else []) + (["webhooks"] if webhooks else [])
    console.print(f"supervising {', '.join(names)}; logs in {get_settings().stack_dir / 'logs'}")
    if code := processes.supervise(names, get_settings(), console):
        raise typer.Exit(code)


@app.command()
def audit(
    election: str | None = typer.Option(
        None,
        "--election",
        help="election id (default: TALLYROOM_ELECTION, else the only election in Redis with a night or an audit)",
    ),
    operator: str | None = typer.Option(None, "--operator", help="only this operator's attempts (default: all)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line instead of a table"),
) -> None:
    """Every write attempt of live entry: who, what, accepted or refused, and why."""
    from tallyroom.producers.audit import audit_key, read_audit

    client = _redis()
    election = _picked(client, election, audited=True)
    entries = read_audit(client, election, operator)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    table = Table("at", "operator", "source", "action", "seat", "outcome", "why / where", title=audit_key(election))
    for e in entries:
        seat = f"{e.get('ons_id', '')} r{e['revision']}" if e.get("revision") else e.get("ons_id", "")
        where = f"{e['topic']}/{e['partition']}@{e['offset']}" if e.get("offset") else ""
        table.add_row(
            e.get("at", "")[:19],
            e.get("operator") or "(none)",
            e.get("source", ""),
            e.get("action", ""),
            seat,
            e.get("outcome", ""),
            e.get("reason") or where,
        )
    console.print(table)


@app.command()
def seats(election: str | None = PICKED) -> None:
    """Print the tally held in Redis: seats, votes, share, gains and losses."""
    from tallyroom.consumers.reader import read_state

    client = _redis()
    _print_tally(read_state(client, _picked(client, election)))


@app.command()
def watch(
    election: str | None = PICKED,
    once: bool = typer.Option(False, "--once", help="print one frame and exit (for scripts)"),
) -> None:
    """The night live in the terminal: seat bars against the majority line, declared n of N, latest alerts."""
    from tallyroom.consumers import watch as watch_view

    client = _redis()  # at start Redis must answer; later, watch says it is retrying
    chosen = _picked(client, election)
    if once:
        follower = watch_view.Follower(client, chosen)
        follower.start()
        console.print(follower.frame())
    else:
        watch_view.watch(client, chosen, console)


def _print_tally(state) -> None:
    from tallyroom.schemas.parties import party_name

    table = Table(title=f"{state.election}: {state.declared} of {state.total} declared")
    for column in ("party", "seats", "votes", "share", "change", "gains", "losses", "net"):
        table.add_column(column, justify="left" if column == "party" else "right")
    parties = state.tally.parties.values() if state.tally else []
    for p in sorted(parties, key=lambda t: (-t.seats, -t.votes)):
        if p.seats or p.votes:
            change = "" if p.share_change is None else f"{p.share_change * 100:+.1f}"
            table.add_row(
                party_name(p.party),
                str(p.seats),
                f"{p.votes:,}",
                f"{p.share:.1%}",
                change,
                str(p.gains),
                str(p.losses),
                f"{p.net:+d}",
            )
    console.print(table)
    if state.tally and state.tally.swing:
        from tallyroom.streams.change import swing_phrase

        console.print(
            f"swing {swing_phrase(state.tally.swing, party_name)} (share change over the "
            f"{state.tally.compared} declared seats with figures from last time)"
        )


# --- subscribers: history, subscribe, webhooks ------------------------------------------------------


def _kinds_option(text: str | None, option: str):
    from tallyroom.consumers.subscribe import parse_kinds

    try:
        return parse_kinds(text, option)
    except ValueError as exc:
        raise typer.BadParameter(str(exc))


@app.command()
def history(
    election: str | None = PICKED,
    kind: str | None = typer.Option(None, "--kind", help="only this kind (or several, comma-separated; default: all)"),
    as_json: bool = typer.Option(False, "--json", help="one alert JSON per line instead of a table"),
) -> None:
    """The night's alerts in the order they landed."""
    from zoneinfo import ZoneInfo

    from tallyroom.consumers.reader import read_alerts

    kinds = _kinds_option(kind, "--kind")
    client = _redis()
    election = _picked(client, election)
    alerts = read_alerts(client, election, kinds)
    if as_json:
        for alert in alerts:
            sys.stdout.write(alert.model_dump_json() + "\n")
        return
    uk = ZoneInfo("Europe/London")
    table = Table("time", "kind", "constituency", "headline", title=f"{election}: {len(alerts)} alerts")
    for alert in alerts:
        table.add_row(
            f"{alert.occurred_at.astimezone(uk):%d %b %H:%M}",
            alert.kind.value,
            alert.constituency or "",
            alert.headline,
        )
    console.print(table)


@app.command()
def subscribe(
    group: str = typer.Option(..., "--group", help="consumer group; a new one starts at the night's first alert"),
    election: str | None = PICKED,
    kinds: str | None = typer.Option(None, "--kinds", help="comma-separated alert kinds to print (default: all)"),
    consumer: str | None = typer.Option(
        None, "--consumer", help="this subscriber's name in the group (default: host name)"
    ),
    count: int | None = typer.Option(None, "--count", min=1, help="exit after printing N alerts (default: never)"),
    claim_idle: float = typer.Option(
        60, "--claim-idle", min=0, help="take over alerts another consumer has left unacknowledged this many seconds"
    ),
    crash_after: int | None = typer.Option(
        None, "--crash-after", min=1, hidden=True, help="debug: die after writing the Nth line, before its XACK"
    ),
) -> None:
    """Print each alert as one JSON line, acknowledging it in the group only once written."""
    import os

    from tallyroom.consumers.subscribe import default_consumer_name
    from tallyroom.consumers.subscribe import subscribe as run_subscriber

    wanted = _kinds_option(kinds, "--kinds")
    client = _redis()
    chosen = _picked(client, election)
    try:
        run_subscriber(
            client,
            chosen,
            group,
            consumer or default_consumer_name(),
            wanted,
            limit=count,
            claim_idle_ms=int(claim_idle * 1000),
            crash_after=crash_after,
        )
    except BrokenPipeError:
        # The reader went away (`| head`): the unwritten alert stays unacknowledged, for next time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command()
def webhooks(
    election: str | None = PICKED,
    failures: bool = typer.Option(False, "--failures", help="list the alerts that exhausted their attempts"),
    as_json: bool = typer.Option(False, "--json", help="with --failures: one JSON object per line"),
    drain: bool = typer.Option(False, "--drain", help="deliver what is in the stream, then exit"),
) -> None:
    """POST each alert to every TALLYROOM_WEBHOOK_URLS endpoint, signed, with retries (stops on SIGTERM)."""
    client = _redis()
    election = _picked(client, election)
    if failures:
        _print_webhook_failures(client, election, as_json)
        return
    import asyncio
    import logging

    from tallyroom.consumers.webhooks import deliver_webhooks
    from tallyroom.lifecycle import Stop
    from tallyroom.metrics import serve_process_metrics, webhook_metrics

    settings = get_settings()
    if not settings.webhook_urls:
        err.print("[red]webhook_urls: none configured; set TALLYROOM_WEBHOOK_URLS (comma-separated or a JSON list)")
        raise typer.Exit(2)
    if settings.webhook_secret is None:
        err.print("[yellow]webhook_secret is not set: deliveries go out without X-Tallyroom-Signature")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    metrics = webhook_metrics()
    serve_process_metrics(metrics, settings.webhooks_metrics_port)
    with Stop().on_signals() as stop:
        reports = asyncio.run(deliver_webhooks(settings, election, stop, drain=drain, metrics=metrics))
    for report in reports:
        console.print(f"{report.url}: {report.delivered} delivered, {report.failed} failed, {report.requests} requests")


def _print_webhook_failures(client, election: str, as_json: bool) -> None:
    from tallyroom.consumers.webhooks import failures_key, read_failures

    entries = read_failures(client, election)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    table = Table(
        "entry", "url", "alert id", "attempts", "last error", title=f"{failures_key(election)}: {len(entries)}"
    )
    for entry in entries:
        table.add_row(
            entry["entry_id"],
            entry.get("url", ""),
            entry.get("alert_id", ""),
            entry.get("attempts", ""),
            entry.get("last_error", ""),
        )
    console.print(table)


@app.command()
def run(
    night: Path = NIGHT,
    election: str | None = ELECTION,
    duration: float = typer.Option(
        DEFAULT_REPLAY_SECONDS, "--duration", callback=_positive, help="seconds the replay should take"
    ),
    timeout: float = typer.Option(300, "--timeout", callback=_positive, help="seconds to wait for every seat"),
    keep_running: bool = typer.Option(False, "--keep-running", help="leave worker and sink running"),
    stall_timeout: float = STALL_TIMEOUT,
) -> None:
    """The main job: stack up, worker and sink started, the night replayed, a summary printed."""
    from tallyroom import processes, stack
    from tallyroom.consumers.reader import alert_counts
    from tallyroom.consumers.redis_sink import redis_client
    from tallyroom.producers.kafka import DeclarationSender, ensure_topics
    from tallyroom.producers.replay import replay_night

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
            pace = _pace(loaded, None, False, False, duration)
            report = replay_night(loaded, sender, pace, console, entered_by=_login_name())
        finally:
            sender.close()
        console.print(f"{report.acknowledged} of {report.sent} events acknowledged by the broker")
        state = _wait(settings, loaded.election, loaded.total_seats, timeout, stall_timeout)
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


# --- the benchmark -------------------------------------------------------------------------------


@app.command()
def bench(
    seats: int = typer.Option(5_000, "--seats", min=1, help="seats in the synthetic night"),
    declarations: int = typer.Option(100_000, "--declarations", min=1, help="declarations, corrections included"),
    rates: str = typer.Option(
        "500,2000,max", "--rates", help="declarations per second, comma-separated; max = unpaced"
    ),
    out: Path = typer.Option(Path("bench-results"), "--out", help="folder for the JSON and the PNG"),
    rate_seconds: float = typer.Option(
        60, "--rate-seconds", callback=_positive, help="a fixed-rate load offers at most RATE x this"
    ),
    night_dir: str = typer.Option("data/ge2024", "--night", help="a past night run at max; '' for none"),
    soak_events: int = typer.Option(
        0, "--events", min=0, help="then keep the worker counting up to N more (memory soak; 0: no soak)"
    ),
    soak_seconds: float = typer.Option(300, "--soak-seconds", callback=_positive, help="time limit of the soak"),
    kafka_records: int | None = typer.Option(
        None, "--kafka-records", min=1, help="records for Kafka's perf tools (default: as many as the declarations)"
    ),
    e2e_messages: int = typer.Option(2000, "--e2e-messages", min=1, help="round trips for Kafka's EndToEndLatency"),
    redis_db: int = typer.Option(13, "--redis-db", min=0, help="Redis database the bench writes to"),
) -> None:
    """Load benchmark on the real stack: throughput, latency, worker memory, against Kafka's own tools."""
    from tallyroom.bench import BenchOptions, parse_rates
    from tallyroom.bench import run as run_bench

    try:
        options = BenchOptions(
            seats=seats,
            declarations=declarations,
            rates=parse_rates(rates),
            out=out,
            rate_seconds=rate_seconds,
            night=Path(night_dir) if night_dir else None,
            soak_events=soak_events,
            soak_seconds=soak_seconds,
            kafka_records=kafka_records,
            e2e_messages=e2e_messages,
            redis_db=redis_db,
        )
        run_bench(get_settings(), options, console)
    except ValueError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2)


def main() -> None:
    """The console script: ``app``, with a refused password, a service that does not answer and an
    election that is not there each reported in one line (and its exit status), no traceback
    unless ``--debug``."""
    from tallyroom.lifecycle import one_line_failure

    try:
        app(prog_name="tallyroom")
    except Exception as exc:
        settings = get_settings()
        failure = one_line_failure(exc, settings)
        if failure is None or settings.debug:
            raise
        print(f"tallyroom: {failure}", file=sys.stderr)
        raise SystemExit(failure.exit_status) from None
