"""The local stack, development tooling: one real Apache Kafka broker (KRaft) and one real
redis-server on this machine, for `run`, the tests and the bench. A deployment points
``TALLYROOM_KAFKA_BOOTSTRAP`` and ``TALLYROOM_REDIS_URL`` at its own services instead.

Each service is described once (``Service``: name, command, readiness probe, pid and
log files, the ports it binds); ``up``, ``down`` and ``status`` are one loop over them.

Everything the stack writes (jars, data, logs, pid files, generated configs)
lives under ``settings.stack_dir`` so a checkout can be reset with ``rm -rf .stack``.
Services run detached in their own session, so they outlive the Python process
that started them; pid files are how later calls find them again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from tallyroom import stack_secure
from tallyroom.settings import Settings, get_settings

# Package data (tallyroom/stack_files/), so an installed wheel can start the stack too.
STACK_FILES = Path(__file__).resolve().with_name("stack_files")
POM = STACK_FILES / "pom.xml"
LOG4J2_CONFIG = STACK_FILES / "log4j2.properties"

KAFKA_START_TIMEOUT = 90.0
REDIS_START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
LOG_TAIL_LINES = 40

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Popen handles of services started by this process. Holding them keeps
# Python from warning that a child is "still running" when the handle is
# collected, and lets us reap our own children so they don't linger as zombies
# (a zombie still answers os.kill(pid, 0) and would look alive).
_children: dict[int, subprocess.Popen] = {}


class StackError(RuntimeError):
    """A local service could not be prepared, started or stopped."""


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    detail: str = ""


# --------------------------------------------------------------------------- paths


def _dir(settings: Settings, *parts: str) -> Path:
    path = Path(settings.stack_dir).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _jars_dir(settings: Settings) -> Path:
    return Path(settings.stack_dir) / "kafka-jars"


def _log_file(settings: Settings, service: str) -> Path:
    return _dir(settings, "logs") / f"{service}.log"


def _pid_file(settings: Settings, service: str) -> Path:
    return _dir(settings, "run") / f"{service}.pid"


# ----------------------------------------------------------------------- processes


def _clear_stale_pid(name: str, pid_file: Path, console: Console) -> None:
    stale = _read_pid(pid_file)
    if stale is not None:
        console.print(f"[yellow]{name}: pid {stale} from {pid_file.name} is gone; starting fresh[/]")
    pid_file.unlink(missing_ok=True)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def _pid_alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and its command line contains ``marker``.

    Checking the command line guards against pid reuse: after a reboot the pid
    in a stale file may belong to an unrelated process we must not signal.
    """
    _reap(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def _started_process_alive(pid: int, marker: str) -> bool:
    """Liveness of a process we just spawned.

    Right after the fork /proc/<pid>/cmdline is still the parent's (Python),
    so the marker check of ``_pid_alive`` would call a starting broker dead;
    for our own child the Popen handle is the truth.
    """
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    return _pid_alive(pid, marker)


def _port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _spawn(cmd: list[str], log_file: Path, pid_file: Path, cwd: Path) -> int:
    with open(log_file, "ab") as log:
        # New session: the service must survive Ctrl-C in the terminal that ran `up`.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _wait_until_ready(
    name: str,
    pid: int,
    marker: str,
    ready: Callable[[], bool],
    timeout: float,
    log_file: Path,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _started_process_alive(pid, marker):
            raise StackError(
                f"{name} (pid {pid}) exited during start-up. Last log lines from {log_file}:\n{_tail(log_file)}"
            )
        if ready():
            return
        time.sleep(0.5)
    raise StackError(
        f"{name} (pid {pid}) did not answer within {timeout:.0f}s; it is left "
        f"running for inspection. Last log lines from {log_file}:\n{_tail(log_file)}"
    )


def _stop(name: str, pid_file: Path, marker: str, console: Console) -> None:
    _stop_together([(name, pid_file, marker)], console)


def _stop_together(items: list[tuple[str, Path, str]], console: Console) -> None:
    """SIGTERM each of ``(name, pid file, marker)`` at once, then wait for all: a cluster's
    brokers stopped one after another would each wait on a quorum the last ones lost."""
    stopping = []
    for name, pid_file, marker in items:
        pid = _read_pid(pid_file)
        if pid is None or not _pid_alive(pid, marker):
            pid_file.unlink(missing_ok=True)
            console.print(f"[dim]{name}: not running[/]")
            continue
        console.print(f"{name}: stopping pid {pid}")
        os.kill(pid, signal.SIGTERM)
        stopping.append((name, pid_file, marker, pid))
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(_pid_alive(pid, marker) for _, _, marker, pid in stopping) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name, pid_file, marker, pid in stopping:
        if _pid_alive(pid, marker):
            console.print(f"[yellow]{name}: still alive after {STOP_TIMEOUT:.0f}s, sending SIGKILL[/]")
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid, marker):
                time.sleep(0.1)
        pid_file.unlink(missing_ok=True)
        console.print(f"{name}: stopped")


def _refuse_foreign_port(name: str, host: str, port: int, setting: str) -> None:
    # Without this check a second server would die on "address in use" and the
    # readiness probe could be answered by whatever already holds the port.
    if _port_open(host, port):
        raise StackError(
            f"{name}: {host}:{port} is already in use by a process this stack did "
            f"not start. Stop it or point {setting} at a free port."
        )


def _require_local(name: str, host: str, setting: str) -> None:
    if host not in _LOCAL_HOSTS:
        raise StackError(
            f"{name}: {setting} points at {host}, not this machine; the local stack only runs services on 127.0.0.1."
        )


# --------------------------------------------------------------------------- kafka

KAFKA = "kafka"
_KAFKA_MARKER = "kafka.Kafka"
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # base64url of a 16-byte UUID


def _pom_hash() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_kafka_jars(settings: Settings, console: Console | None = None) -> Path:
    """Copy the broker's jars from Maven Central once per version of ``stack_files/pom.xml``."""
    jars = _jars_dir(settings)
    marker = jars / ".pom-sha256"
    wanted = _pom_hash()
    if marker.is_file() and marker.read_text().strip() == wanted:
        return jars
    if shutil.which("mvn") is None:
        raise StackError("mvn is not on PATH; it is needed once to fetch the Kafka jars.")
    # Copy into a scratch directory and swap it in, so an interrupted download
    # never leaves a half-filled jar directory that looks complete.
    staging = Path(settings.stack_dir) / "kafka-jars.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    (console or Console()).print(f"kafka: fetching jars with maven into {jars} (once, ~30s)")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not any(staging.glob("kafka_*.jar")):
        raise StackError(f"maven could not fetch the Kafka jars:\n{done.stdout}\n{done.stderr}")
    (staging / ".pom-sha256").write_text(wanted + "\n")
    shutil.rmtree(jars, ignore_errors=True)
    staging.rename(jars)
    return jars


def kafka_classpath(settings: Settings | None = None) -> str:
    """A ``java -cp`` value holding the broker and Kafka's command-line tools."""
    settings = settings or get_settings()
    return str(ensure_kafka_jars(settings) / "*")


def _kafka_data_dir(settings: Settings) -> Path:
    return _dir(settings, "kafka-data")


def broker_properties(
    *,
    node: int,
    host: str,
    port: int,
    controller_port: int,
    quorum: str,
    data_dir: Path,
    brokers: int,
    client: str = "PLAINTEXT",
) -> str:
    """server.properties of one combined broker and controller. ``quorum`` is the line naming the
    controllers; ``brokers`` sizes the internal topics (offsets, transactions) as Tallyroom's own;
    ``client`` is the client listener's protocol (SASL_PLAINTEXT on the secure stack; the controller's stays local)."""
    from tallyroom.producers.kafka import default_replication, min_insync_replicas  # deferred: kafka-python

    replicas = default_replication(brokers)
    in_sync = min_insync_replicas(replicas)
    cluster = f"default.replication.factor={replicas}\nmin.insync.replicas={in_sync}\n" if brokers > 1 else ""
    return f"""\
# Generated by tallyroom.stack from settings; edits are overwritten on `up`.
process.roles=broker,controller
node.id={node}
{quorum}
listeners={client}://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners={client}://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,{client}:{client}
log.dirs={data_dir}
num.partitions=1
auto.create.topics.enable=true
{cluster}offsets.topic.replication.factor={replicas}
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={in_sync}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={in_sync}
group.initial.rebalance.delay.ms=0
"""


def _server_properties(settings: Settings) -> Path:
    host, port = settings.kafka_host_port
    ctrl = settings.kafka_controller_port
    # The secure stack's client listener is SASL/SCRAM (tallyroom/stack_secure.py).
    client = stack_secure.KAFKA_PROTOCOL if stack_secure.secure(settings) else "PLAINTEXT"
    body = broker_properties(
        node=1,
        host=host,
        port=port,
        controller_port=ctrl,
        quorum=f"controller.quorum.bootstrap.servers={host}:{ctrl}",
        data_dir=_kafka_data_dir(settings),
        brokers=1,
        client=client,
    )
    if client != "PLAINTEXT":
        body += stack_secure.kafka_properties(stack_secure.ensure_credentials(settings), client)
    path = _dir(settings, "conf") / "server.properties"
    path.write_text(body)
    path.chmod(0o600)  # it may hold the broker's password
    return path


def _java(settings: Settings, main: str, *args: str, heap: str | None = None) -> list[str]:
    cmd = ["java"]
    if heap:
        cmd += [f"-Xms{heap}", f"-Xmx{heap}"]
    return cmd + [
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        kafka_classpath(settings),
        main,
        *args,
    ]


def _format_kafka_storage(settings: Settings, props: Path, console: Console) -> None:
    # Formatting writes a fresh cluster id; doing it again over existing data
    # would make the broker refuse to start, so it only happens on an empty dir.
    scram_marker = _kafka_data_dir(settings) / ".tallyroom-scram"
    secure = stack_secure.secure(settings)
    if (_kafka_data_dir(settings) / "meta.properties").exists():
        if secure and not scram_marker.exists():
            raise StackError(
                f"kafka: {_kafka_data_dir(settings)} was formatted without SCRAM users, so a secure broker would "
                "refuse every login; `tallyroom stack down` and remove that folder to start afresh"
            )
        return
    tool = "kafka.tools.StorageTool"
    uuid = subprocess.run(_java(settings, tool, "random-uuid"), capture_output=True, text=True, check=False)
    # Log lines share stdout with the id, so pick the line shaped like one.
    ids = [line for line in uuid.stdout.split() if _CLUSTER_ID.fullmatch(line)]
    cluster_id = ids[-1] if ids else ""
    if uuid.returncode != 0 or not cluster_id:
        raise StackError(f"kafka: StorageTool random-uuid failed:\n{uuid.stdout}\n{uuid.stderr}")
    console.print(f"kafka: formatting KRaft storage (cluster id {cluster_id})")
    # The SCRAM users are created with the storage, by Kafka's own tool (KIP-900: `format --add-scram`).
    scram = stack_secure.storage_scram_args(stack_secure.ensure_credentials(settings)) if secure else []
    fmt = subprocess.run(
        _java(settings, tool, "format", "-t", cluster_id, "-c", str(props), "--standalone", *scram),
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise StackError(f"kafka: StorageTool format failed:\n{fmt.stdout}\n{fmt.stderr}")
    if secure:
        scram_marker.write_text(f"{stack_secure.KAFKA_MECHANISM} users: {', '.join(stack_secure.KAFKA_USERS)}\n")


def _kafka_answers(settings: Settings, address: tuple[str, int] | None = None, node: int | None = None) -> bool:
    """A real metadata round trip, not just an open port: the socket accepts
    connections well before the broker has a controller and can serve requests.
    With ``address`` (one broker of a cluster), asked of that broker alone, and it
    answers once the cluster lists ``node`` among its (unfenced) brokers."""
    host, port = address or settings.kafka_host_port
    if not _port_open(host, port):
        return False
    from kafka.admin import KafkaAdminClient  # deferred: pulls in the whole client

    config = settings.kafka_python_config()
    if address is not None:
        config["bootstrap_servers"] = [f"{host}:{port}"]
    try:
        admin = KafkaAdminClient(
            **config,
            client_id="tallyroom-stack",
            bootstrap_timeout_ms=3000,
            request_timeout_ms=5000,
        )
    except Exception:
        return False
    try:
        brokers = admin.describe_cluster().get("brokers") or []
        return bool(brokers) if node is None else node in {b["broker_id"] for b in brokers if not b.get("is_fenced")}
    except Exception:
        return False
    finally:
        admin.close()


# --------------------------------------------------------------------------- redis

REDIS = "redis"
_REDIS_MARKER = "redis-server"


def _redis_host_port(settings: Settings) -> tuple[str, int]:
    url = urlsplit(settings.redis_url)
    return url.hostname or "127.0.0.1", url.port or 6379


def _ensure_redis_server(console: Console) -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    console.print("redis: redis-server not found; running apt-get update && apt-get install -y redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise StackError(f"redis: {' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise StackError("redis: apt-get install finished but redis-server is still not on PATH")
    return found


def _redis_conf(settings: Settings) -> Path:
    host, port = _redis_host_port(settings)
    lines = [
        "# Generated by tallyroom.stack from settings; edits are overwritten on `up`.",
        f"bind {host}",
        f"port {port}",
        "daemonize no",
        f"dir {_dir(settings, 'redis-data')}",
        f"pidfile {_pid_file(settings, REDIS)}",
        "appendonly yes",
        'save ""',
        "loglevel notice",
        'logfile ""',
    ]
    if stack_secure.secure(settings):
        lines += stack_secure.redis_acl_lines(stack_secure.ensure_credentials(settings))
    elif settings.redis_password:
        # Quoted so a password with spaces or '#' stays one token.
        secret = settings.redis_password.get_secret_value().replace('"', '\\"')
        lines.append(f'requirepass "{secret}"')
    path = _dir(settings, "conf") / "redis.conf"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)  # it may hold the password
    return path


def _redis_answers(settings: Settings) -> bool:
    import redis  # deferred: only the stack commands need it here

    client = redis.Redis.from_url(
        settings.redis_url, **(settings.redis_kwargs() | {"socket_timeout": 2, "socket_connect_timeout": 2})
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# -------------------------------------------------------------------- the services


@dataclass(frozen=True)
class Service:
    """One local service, described once; ``up``, ``down`` and ``status`` are the same loop for each."""

    name: str
    marker: str  # in its command line: a pid from a stale file that lacks it is not ours
    host: str
    port: int
    location_setting: str  # the setting that says where it runs, named in errors
    ports: tuple[tuple[int, str], ...]  # every port it binds, with the setting that chooses it
    command: Callable[[Console], list[str]]  # writes its config (and storage) and returns its argv
    answers: Callable[[], bool]  # the readiness probe: a real round trip, not just an open port
    probe: str  # what ``answers`` checks, for messages: "a metadata reply", "PING"
    start_timeout: float
    pid_file: Path
    log_file: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def pid(self) -> int | None:
        pid = _read_pid(self.pid_file)
        return pid if pid is not None and _pid_alive(pid, self.marker) else None


def probe_settings(settings: Settings) -> Settings:
    """Who the readiness probes log in as: the secure stack's admin, else the environment's credentials."""
    if stack_secure.secure(settings):
        return stack_secure.admin_settings(settings, stack_secure.ensure_credentials(settings))
    return settings


def kafka_service(settings: Settings) -> Service:
    host, port = settings.kafka_host_port
    probe = probe_settings(settings)

    def command(console: Console) -> list[str]:
        props = _server_properties(settings)
        _format_kafka_storage(settings, props, console)
        return _java(settings, "kafka.Kafka", str(props), heap=settings.kafka_heap)

    return Service(
        name=KAFKA,
        marker=_KAFKA_MARKER,
        host=host,
        port=port,
        location_setting="TALLYROOM_KAFKA_BOOTSTRAP",
        ports=(
            (port, "TALLYROOM_KAFKA_BOOTSTRAP"),
            (settings.kafka_controller_port, "TALLYROOM_KAFKA_CONTROLLER_PORT"),
        ),
        command=command,
        answers=lambda: _kafka_answers(probe),
        probe="answering",
        start_timeout=KAFKA_START_TIMEOUT,
        pid_file=_pid_file(settings, KAFKA),
        log_file=_log_file(settings, KAFKA),
    )


def redis_service(settings: Settings) -> Service:
    host, port = _redis_host_port(settings)
    probe = probe_settings(settings)

    def command(console: Console) -> list[str]:
        # Not daemonized: the pid we spawn is the server itself, so the pid file is
        # right immediately (redis rewrites the same pid into it once it boots).
        return [_ensure_redis_server(console), str(_redis_conf(settings))]

    return Service(
        name=REDIS,
        marker=_REDIS_MARKER,
        host=host,
        port=port,
        location_setting="TALLYROOM_REDIS_URL",
        ports=((port, "TALLYROOM_REDIS_URL"),),
        command=command,
        answers=lambda: _redis_answers(probe),
        probe="answering PING",
        start_timeout=REDIS_START_TIMEOUT,
        pid_file=_pid_file(settings, REDIS),
        log_file=_log_file(settings, REDIS),
    )


# ---------------------------------------------------------------- a local cluster

CLUSTER_START_TIMEOUT = 240.0  # three JVMs starting at once on a small, shared machine (120 s seen)
_BROKERS_FILE = "kafka-brokers"  # in run/: how many brokers the last `up` started


@dataclass(frozen=True)
class Broker:
    """One broker of a local cluster: node ``node`` (1, 2, ...), also a KRaft controller (a voter)."""

    node: int
    host: str
    port: int
    controller_port: int

    @property
    def name(self) -> str:
        return f"{KAFKA}-{self.node}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def cluster_brokers(settings: Settings, brokers: int) -> list[Broker]:
    """Broker i (0, 1, ...) is node i+1 on the bootstrap's first port + i*step, its controller
    on ``kafka_controller_port`` + i*step (``TALLYROOM_STACK_PORT_STEP``)."""
    host, port = settings.kafka_host_port
    step, ctrl = settings.stack_port_step, settings.kafka_controller_port
    cluster = [Broker(i + 1, host, port + i * step, ctrl + i * step) for i in range(brokers)]
    ports = [b.port for b in cluster] + [b.controller_port for b in cluster]
    if len(set(ports)) != len(ports) or max(ports) > 65535:
        raise StackError(
            f"kafka: {brokers} brokers from port {port} and controllers from {ctrl}, "
            f"{step} apart (TALLYROOM_STACK_PORT_STEP), give ports {sorted(ports)}: "
            "they must be distinct and below 65536"
        )
    return cluster


def cluster_bootstrap(settings: Settings, brokers: int) -> str:
    """The ``TALLYROOM_KAFKA_BOOTSTRAP`` naming every broker: a client then starts while any one is up."""
    return ",".join(b.address for b in cluster_brokers(settings, brokers))


def _cluster_id(settings: Settings, cluster: list[Broker]) -> str:
    """The cluster's id: the one a broker's storage already holds, else the one kept in conf/, else new."""
    for broker in cluster:
        meta = Path(settings.stack_dir) / f"{broker.name}-data" / "meta.properties"
        if meta.is_file():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.partition("=")[2].strip()
    kept = _dir(settings, "conf") / "kafka-cluster-id"
    if kept.is_file() and _CLUSTER_ID.fullmatch(kept.read_text().strip()):
        return kept.read_text().strip()
    while True:  # Kafka's own random-uuid: base64url of 16 random bytes, never starting with "-"
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            break
    kept.write_text(cluster_id + "\n")
    return cluster_id


def _format_broker_storage(settings: Settings, broker: Broker, cluster: list[Broker], props: Path, console) -> None:
    # The static quorum (controller.quorum.voters) lists every voter, so no --standalone or
    # --initial-controllers: each broker's storage only needs the cluster's one id.
    if (Path(settings.stack_dir) / f"{broker.name}-data" / "meta.properties").exists():
        return
    cluster_id = _cluster_id(settings, cluster)
    console.print(f"{broker.name}: formatting KRaft storage (cluster id {cluster_id})")
    fmt = subprocess.run(
        _java(settings, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)),
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise StackError(f"{broker.name}: StorageTool format failed:\n{fmt.stdout}\n{fmt.stderr}")


def broker_service(settings: Settings, broker: Broker, cluster: list[Broker]) -> Service:
    """One broker of a local cluster, with its own config, data dir, log and pid file."""
    props = _dir(settings, "conf") / f"{broker.name}.properties"
    voters = ",".join(f"{b.node}@{b.host}:{b.controller_port}" for b in cluster)

    def command(console: Console) -> list[str]:
        props.write_text(
            broker_properties(
                node=broker.node,
                host=broker.host,
                port=broker.port,
                controller_port=broker.controller_port,
                quorum=f"controller.quorum.voters={voters}",
                data_dir=_dir(settings, f"{broker.name}-data"),
                brokers=len(cluster),
            )
        )
        _format_broker_storage(settings, broker, cluster, props, console)
        return _java(settings, "kafka.Kafka", str(props), heap=settings.kafka_heap)

    where = "TALLYROOM_STACK_PORT_STEP"
    return Service(
        name=broker.name,
        marker=str(props),  # its own config file: tells this broker from its neighbours and from others' brokers
        host=broker.host,
        port=broker.port,
        location_setting="TALLYROOM_KAFKA_BOOTSTRAP",
        ports=(
            (broker.port, f"TALLYROOM_KAFKA_BOOTSTRAP or {where}"),
            (broker.controller_port, f"TALLYROOM_KAFKA_CONTROLLER_PORT or {where}"),
        ),
        command=command,
        answers=lambda: _kafka_answers(settings, (broker.host, broker.port), broker.node),
        probe="answering",
        start_timeout=CLUSTER_START_TIMEOUT,
        pid_file=_pid_file(settings, broker.name),
        log_file=_log_file(settings, broker.name),
    )


def kafka_services(settings: Settings, brokers: int) -> list[Service]:
    """The single broker (``kafka``), or a cluster's brokers ``kafka-1`` .. ``kafka-N``."""
    if brokers == 1:
        return [kafka_service(settings)]
    cluster = cluster_brokers(settings, brokers)
    return [broker_service(settings, broker, cluster) for broker in cluster]


def recorded_brokers(settings: Settings) -> int | None:
    """How many brokers the last ``up`` started (None: no record, as before clusters)."""
    try:
        return int((Path(settings.stack_dir) / "run" / _BROKERS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _running_kafka(settings: Settings) -> dict[str, Path]:
    """Every broker of this stack dir with a live pid, whatever layout started it: name -> pid file."""
    running = {}
    for pid_file in sorted(_dir(settings, "run").glob(f"{KAFKA}*.pid")):
        pid = _read_pid(pid_file)
        if pid is not None and _pid_alive(pid, _KAFKA_MARKER):
            running[pid_file.stem] = pid_file
    return running


def _layout(settings: Settings, brokers: int | None) -> int:
    """``brokers`` if given, else what runs (the last ``up``'s), else ``TALLYROOM_STACK_BROKERS``."""
    if brokers is not None:
        return brokers
    recorded = recorded_brokers(settings)
    return recorded if recorded is not None and _running_kafka(settings) else settings.stack_brokers


def services(settings: Settings, brokers: int | None = None) -> list[Service]:
    """In start order: Redis first, it is quick, and a port clash there fails before the slow broker start."""
    return [redis_service(settings), *kafka_services(settings, _layout(settings, brokers))]


def _launch(service: Service, settings: Settings, console: Console) -> float | None:
    """Spawn ``service`` unless it runs; when it started (to wait for), or None when it already answers."""
    _require_local(service.name, service.host, service.location_setting)
    pid = service.pid()
    if pid is not None and service.answers():
        console.print(f"{service.name}: already running (pid {pid}) on {service.address}")
        return None
    if pid is not None:
        # Running but not answering: probably still starting from an earlier `up`.
        console.print(f"{service.name}: pid {pid} is running but not answering yet; waiting")
        return time.monotonic()
    _clear_stale_pid(service.name, service.pid_file, console)
    for port, setting in service.ports:
        _refuse_foreign_port(service.name, service.host, port, setting)
    command = service.command(console)
    pid = _spawn(command, service.log_file, service.pid_file, cwd=Path(settings.stack_dir))
    console.print(f"{service.name}: started pid {pid}, waiting for {service.address} (log: {service.log_file})")
    return time.monotonic()


def start_together(services: list[Service], settings: Settings, console: Console) -> None:
    """Start each of ``services`` that does not run, all before waiting for any: a cluster's
    first broker cannot answer before a majority of the controller quorum runs."""
    launched = [(service, _launch(service, settings, console)) for service in services]
    for service, started in launched:
        if started is None:
            continue
        pid = _read_pid(service.pid_file)
        assert pid is not None, f"{service.name}: launched without a pid file"
        _wait_until_ready(service.name, pid, service.marker, service.answers, service.start_timeout, service.log_file)
        console.print(f"[green]{service.name}: ready on {service.address} after {time.monotonic() - started:.1f}s[/]")


def start(service: Service, settings: Settings, console: Console) -> None:
    """Start ``service`` unless it already runs; return once it answers."""
    start_together([service], settings, console)


def stop(service: Service, console: Console) -> None:
    _stop(service.name, service.pid_file, service.marker, console)


def service_status(service: Service) -> ServiceStatus:
    pid = service.pid()
    if pid is None:
        return ServiceStatus(service.name, False, None, service.address, "not running")
    detail = service.probe if service.answers() else f"process alive, not {service.probe}"
    return ServiceStatus(service.name, True, pid, service.address, detail)


# ------------------------------------------------------------------------- the lot


def up(settings: Settings | None = None, console: Console | None = None, brokers: int | None = None) -> None:
    """Start Redis and ``brokers`` Kafka brokers (default: what runs, else ``TALLYROOM_STACK_BROKERS``)
    unless they already run; return once all answer."""
    settings = settings or get_settings()
    console = console or Console()
    layout = _layout(settings, brokers)
    if not 1 <= layout <= 9:
        raise StackError(f"--brokers: {layout}; a local cluster has 1 to 9 brokers")
    wanted = services(settings, layout)
    others = sorted(set(_running_kafka(settings)) - {s.name for s in wanted})
    if others:
        raise StackError(
            f"kafka: {', '.join(others)} run from an earlier `stack up` with another number of brokers; "
            "`tallyroom stack down` first"
        )
    redis, *kafka = wanted
    start(redis, settings, console)
    (_dir(settings, "run") / _BROKERS_FILE).write_text(f"{layout}\n")
    start_together(kafka, settings, console)
    if layout > 1 and len(settings.kafka_bootstrap.split(",")) < layout:
        console.print(
            f"clients reach every broker with TALLYROOM_KAFKA_BOOTSTRAP={cluster_bootstrap(settings, layout)} "
            "(the first address alone works while that broker is up)"
        )


def down(settings: Settings | None = None, console: Console | None = None) -> None:
    """Stop every service, the brokers first (all of them, whatever layout started them); a
    no-op for whatever is not running."""
    settings = settings or get_settings()
    console = console or Console()
    redis, *kafka = services(settings)
    stray = [pid_file for name, pid_file in _running_kafka(settings).items() if name not in {s.name for s in kafka}]
    _stop_together(
        [(s.name, s.pid_file, s.marker) for s in kafka] + [(p.stem, p, _KAFKA_MARKER) for p in stray], console
    )
    (_dir(settings, "run") / _BROKERS_FILE).unlink(missing_ok=True)
    stop(redis, console)


def status(settings: Settings | None = None, brokers: int | None = None) -> list[ServiceStatus]:
    """Each broker, then Redis."""
    settings = settings or get_settings()
    redis, *kafka = services(settings, brokers)
    return [service_status(service) for service in [*kafka, redis]]


def kafka_up(settings: Settings | None = None, console: Console | None = None) -> None:
    settings = settings or get_settings()
    start(kafka_service(settings), settings, console or Console())


def kafka_down(settings: Settings | None = None, console: Console | None = None) -> None:
    stop(kafka_service(settings or get_settings()), console or Console())


def redis_up(settings: Settings | None = None, console: Console | None = None) -> None:
    settings = settings or get_settings()
    start(redis_service(settings), settings, console or Console())


def redis_down(settings: Settings | None = None, console: Console | None = None) -> None:
    stop(redis_service(settings or get_settings()), console or Console())
