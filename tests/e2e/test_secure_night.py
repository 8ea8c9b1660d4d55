"""The 2024 night on credentials that are really checked: the secure stack (Kafka SASL/SCRAM, Redis ACL users).

A stack of its own (``tallyroom stack up --secure`` in ``STACK_DIR/secure``, on ports of its own:
``TALLYROOM_TEST_SECURE_PORTS=kafka,controller,redis``, else free ones the OS picks), stopped at the
end. Producer (replay), worker, sink, web and subscribe each log in as their role
(``STACK_DIR/secure/credentials/<role>.env``); then every process is tried with a wrong password,
and read-only users try to write.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tallyroom import processes, stack_secure
from tallyroom import stack as local_stack
from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_state
from tallyroom.settings import Settings, get_settings
from tests.e2e.test_night import NIGHT, candidate_votes_by_party, constituency_rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ELECTION = "ge2024"
AUTH_EXIT = 78


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SecureStack:
    settings: Settings  # as the stack's admin
    credentials: stack_secure.Credentials
    isolated: dict[str, str]  # this run's topics, groups, Redis DB, stack dir

    def env(self, role: str, **changes: str) -> dict[str, str]:
        """A process's whole environment as ``role``; ``changes`` (a wrong password, say) on top."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TALLYROOM_")}
        return inherited | self.isolated | stack_secure.role_env(self.settings, self.credentials, role) | changes

    def client(self, role: str, password: str | None = None) -> redis.Redis:
        user = stack_secure.ROLES[role]
        assert user is not None
        return redis.Redis.from_url(
            self.isolated["TALLYROOM_REDIS_URL"],
            username=user,
            password=password or self.credentials.redis[user],
            decode_responses=True,
        )

    def run(self, role: str, *args: str, timeout: float = 300, **changes: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tallyroom", *args],
            env=self.env(role, **changes),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, role: str, *args: str) -> processes.Background:
        return processes.start(name, self.settings, *args, env=self.env(role), log_name=f"secure-{name}")


@pytest.fixture(scope="module")
def secure_stack() -> Iterator[SecureStack]:
    base = get_settings()
    folder = Path(base.stack_dir) / "secure"
    for part in ("kafka-data", "redis-data", "credentials", "conf"):
        shutil.rmtree(folder / part, ignore_errors=True)  # a fresh cluster and fresh passwords each run
    folder.mkdir(parents=True, exist_ok=True)
    jars = folder / "kafka-jars"
    if not jars.exists():  # the base stack's jars: no second Maven fetch
        jars.symlink_to(local_stack.ensure_kafka_jars(base).resolve())
    given = os.environ.get("TALLYROOM_TEST_SECURE_PORTS")
    kafka, controller, redis_port = [int(p) for p in given.split(",")] if given else [free_port() for _ in "abc"]
    settings = base.model_copy(
        update={
            "stack_dir": folder,
            "stack_secure": True,
            "kafka_bootstrap": f"127.0.0.1:{kafka}",
            "kafka_controller_port": controller,
            "redis_url": f"redis://127.0.0.1:{redis_port}/0",
            "worker_data_dir": folder / "worker",
        }
    )
    local_stack.up(settings)
    credentials = stack_secure.ensure_credentials(settings)
    run = f"secure-{uuid.uuid4().hex[:8]}"
    isolated = {
        "TALLYROOM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TALLYROOM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/1",
        "TALLYROOM_STACK_DIR": str(folder),
        "TALLYROOM_WORKER_DATA_DIR": str(folder / "worker"),
        "TALLYROOM_WORKER_ID": f"tallyroom-{run}",
        "TALLYROOM_SINK_GROUP": f"tallyroom-{run}-sink",
        "TALLYROOM_TOPIC_DECLARATIONS": f"test.{run}.declarations",
        "TALLYROOM_TOPIC_ALERTS": f"test.{run}.alerts",
        "TALLYROOM_TOPIC_RESULTS": f"test.{run}.results",
        "TALLYROOM_TOPIC_DEAD_LETTERS": f"test.{run}.dead-letters",
    }
    try:
        yield SecureStack(stack_secure.admin_settings(settings, credentials), credentials, isolated)
    finally:
        local_stack.down(settings)


@pytest.fixture(scope="module")
def secure_night(secure_stack: SecureStack) -> Iterator[SecureStack]:
    worker = secure_stack.start("worker", "worker")
    sink = secure_stack.start("sink", "sink")
    try:
        processes.wait_for_log(worker, "Worker]: Ready", 180)
        done = secure_stack.run("producer", "replay", "--night", str(NIGHT), "--max", "--wait", "--timeout", "240")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "651 of 651 events acknowledged" in done.stdout
        yield secure_stack
    finally:
        for proc in (worker, sink):
            proc.stop()
        secrets = [*secure_stack.credentials.kafka.values(), *secure_stack.credentials.redis.values()]
        for proc in (worker, sink):
            log = proc.log_path.read_text(errors="replace")
            assert not [secret for secret in secrets if secret in log], f"a password is in {proc.log_path}"


def test_the_night_lands_exactly_through_scram_and_acl_users(secure_night):
    state = read_state(secure_night.client("reader"), ELECTION)
    assert state.declared == state.total == 650
    assert state.seats == dict(Counter(row["First party"] for row in constituency_rows()))
    assert state.votes == dict(candidate_votes_by_party())
    alerts = secure_night.client("reader").xrange(ElectionKeys(ELECTION).alerts)
    ids = [fields["id"] for _, fields in alerts]
    assert len(ids) == len(set(ids)) > 300


def test_web_serves_the_night_as_the_read_only_user(secure_night):
    port = free_port()
    web = secure_night.start("web", "reader", "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                assert web.process.poll() is None, web.log_tail()
                assert time.monotonic() < deadline, web.log_tail()
                time.sleep(0.3)
        assert health.status_code == 200, health.text
        state = httpx.get(f"http://127.0.0.1:{port}/api/e/{ELECTION}/state", timeout=10)
        assert state.status_code == 200, state.text
        assert state.json()["declared"] == 650
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        web.stop()


def test_subscribe_reads_the_alerts_in_a_group_as_the_subscriber_user(secure_night):
    done = secure_night.run("subscriber", "subscribe", "--group", "secure-test", "--count", "5", timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5


def test_read_only_users_cannot_write(secure_night):
    keys = ElectionKeys(ELECTION)
    for role in ("reader", "subscriber"):
        client = secure_night.client(role)
        assert client.get(keys.declared) == "650"  # it may read
        for write in (
            lambda: client.set(keys.declared, "0"),
            lambda: client.xadd(keys.alerts, {"id": "forged"}),
            lambda: client.delete(keys.tally),
            lambda: client.publish(keys.live, "forged"),
            lambda: client.flushdb(),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                write()
    assert secure_night.client("reader").get(keys.declared) == "650"
    # The sink writes only under tallyroom:, and no @dangerous command.
    sink = secure_night.client("sink")
    with pytest.raises(redis.exceptions.NoPermissionError):
        sink.set("elsewhere", "1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        sink.flushdb()


def test_redis_has_no_password_free_user(secure_night):
    anonymous = redis.Redis.from_url(secure_night.isolated["TALLYROOM_REDIS_URL"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.get("tallyroom:ge2024:declared")


def assert_refused(done: subprocess.CompletedProcess, service: str, setting: str) -> None:
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == AUTH_EXIT, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
    last = output.splitlines()[-1]
    assert last.startswith(f"tallyroom: {service} refused") and last.endswith(f"check {setting}"), last


WRONG = "not-the-password"
_KAFKA = ("Kafka", "TALLYROOM_KAFKA_SASL_PASSWORD")
_REDIS = ("Redis", "TALLYROOM_REDIS_PASSWORD")
_RIGHTS = ("Redis", "TALLYROOM_REDIS_USERNAME")
# name: (role, argv, environment changes, (service, setting) the one line must name)
REFUSALS: dict[str, tuple[str, tuple[str, ...], dict[str, str], tuple[str, str]]] = {
    "kafka-replay": ("producer", ("replay", "--night", str(NIGHT), "--max"), {}, _KAFKA),
    "kafka-worker": ("worker", ("worker",), {}, _KAFKA),
    "kafka-sink": ("sink", ("sink",), {}, _KAFKA),
    "kafka-declare": ("producer", ("declare", "--night", str(NIGHT)), {}, _KAFKA),
    "redis-sink": ("sink", ("sink",), {}, _REDIS),
    "redis-web": ("reader", ("web", "--port", "65000"), {}, _REDIS),
    "redis-watch": ("reader", ("watch", "--election", ELECTION), {}, _REDIS),
    "redis-seats": ("reader", ("seats", "--election", ELECTION), {}, _REDIS),
    "redis-history": ("reader", ("history", "--election", ELECTION), {}, _REDIS),
    "redis-subscribe": ("subscriber", ("subscribe", "--group", "wrong-password", "--count", "1"), {}, _REDIS),
    "redis-webhooks": (
        "subscriber",
        ("webhooks", "--election", ELECTION, "--drain"),
        {"TALLYROOM_WEBHOOK_URLS": "http://127.0.0.1:9/hook"},
        _REDIS,
    ),
    # A user without the right: the sink logged in as the read-only user; a group needs XGROUP/XREADGROUP.
    "rights-sink": ("reader", ("sink",), {}, _RIGHTS),
    "rights-subscribe": ("reader", ("subscribe", "--group", "as-reader", "--count", "1"), {}, _RIGHTS),
}


@pytest.fixture(scope="module")
def refusals(secure_night: SecureStack) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    """Every refusal, two at a time (the machine's cores: each is mostly Python's start-up)."""
    kafka_login = {
        k: v
        for k, v in stack_secure.role_env(secure_night.settings, secure_night.credentials, "sink").items()
        if "KAFKA" in k
    }

    def attempt(name: str) -> tuple[subprocess.CompletedProcess, float]:
        role, args, changes, _ = REFUSALS[name]
        env = secure_night.env(role, **changes)
        if name.startswith("kafka"):
            env["TALLYROOM_KAFKA_SASL_PASSWORD"] = WRONG
        elif name.startswith("redis"):
            env["TALLYROOM_REDIS_PASSWORD"] = WRONG
        else:
            env |= kafka_login  # logged in to Kafka: only the Redis right is missing
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "tallyroom", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        return done, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(REFUSALS, pool.map(attempt, REFUSALS), strict=True))


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_login_or_right_ends_the_process_with_one_line(refusals, name):
    done, seconds = refusals[name]
    service, setting = REFUSALS[name][3]
    assert_refused(done, service, setting)
    assert WRONG not in done.stdout + done.stderr  # never logged
    if name.startswith("kafka"):
        assert "SaslAuthenticationFailed" in done.stderr
        assert seconds < 60  # not retried: kafka-python alone retries its bootstrap for a while, then times out
    if name.startswith("rights"):
        assert "no permissions" in done.stderr


def test_a_missing_kafka_password_is_named(secure_night):
    env_without = secure_night.env("worker")
    del env_without["TALLYROOM_KAFKA_SASL_PASSWORD"]
    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "sink"],
        env=env_without,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert_refused(done, "Kafka", "TALLYROOM_KAFKA_SASL_PASSWORD")


def test_stack_status_asks_the_secure_stack_as_its_admin(secure_night):
    """No credentials in the environment: `stack status` logs in as the stack's admin, from its own folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLYROOM_")} | secure_night.isolated
    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "stack", "status"],
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any("kafka" in line and "answering" in line and "not answering" not in line for line in lines), done.stdout
    assert any("redis" in line and "answering PING" in line and "not" not in line for line in lines), done.stdout
    worker_lag = [line for line in lines if secure_night.isolated["TALLYROOM_WORKER_ID"] + " " in line]
    assert worker_lag and worker_lag[0].rstrip(" │").endswith(" 0"), done.stdout
