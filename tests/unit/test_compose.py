"""Static checks of docker-compose.yml, the Dockerfile and .dockerignore.

No Docker engine is needed: the files are parsed and their values checked
against each other, against the rules the apache/kafka image and a KRaft
broker apply at start-up, and against ``tallyroom.settings.Settings``.

Each rule is a function returning a list of problems, so the negative tests at
the bottom can show that a broken configuration is caught.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
from pathlib import Path

import pytest
import typer.main
import yaml

from tallyroom.cli import app as cli_app
from tallyroom.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = ("worker", "sink", "web")
ENV_PREFIX = "TALLYROOM_"


# --- parsing helpers -------------------------------------------------------------------------


def load_compose() -> dict:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)  # safe_load resolves the `<<: *app` merge keys


def env_of(service: dict) -> dict[str, str]:
    """A service's environment as str -> str, whichever of compose's two spellings it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def image_repo(image: str) -> str:
    """'apache/kafka:4.3.1' -> 'apache/kafka'; 'docker.io/library/redis:7' -> 'redis'."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/"):
        name = name[len("library/") :]
    return name


LISTENER = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)://(?P<host>\[[^\]]*\]|[^:/]*):(?P<port>\d+)$")


def parse_listeners(value: str) -> list[tuple[str, str, int]]:
    """'PLAINTEXT://kafka:19092,CONTROLLER://:9093' -> [(name, host, port), ...]."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        match = LISTENER.match(item)
        if not match:
            raise ValueError(f"not a listener: {item!r}")
        out.append((match["name"], match["host"], int(match["port"])))
    return out


def parse_protocol_map(value: str) -> dict[str, str]:
    pairs = (part.strip().split(":", 1) for part in value.split(",") if part.strip())
    return {name: protocol for name, protocol in pairs}


def parse_voters(value: str) -> list[tuple[int, str, int]]:
    """'1@kafka:9093' -> [(1, 'kafka', 9093)]."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        node, _, address = item.partition("@")
        host, _, port = address.rpartition(":")
        out.append((int(node), host, int(port)))
    return out


def names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def host_ports(service: dict) -> set[int]:
    """Container ports published by a service's `ports:` (short or long syntax)."""
    published = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published.add(int(entry["target"]))
        else:
            published.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return published


def command_argv(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def exec_form(value: str) -> list[str]:
    value = value.strip()
    return json.loads(value) if value.startswith("[") else shlex.split(value)


# --- rules: each returns a list of problems ------------------------------------------------------


def kafka_problems(kafka: dict) -> list[str]:
    problems = []
    if image_repo(kafka.get("image", "")) != "apache/kafka":
        problems.append(f"kafka image {kafka.get('image')!r} is not the official apache/kafka")
    env = env_of(kafka)
    required = (
        "KAFKA_NODE_ID",
        "KAFKA_PROCESS_ROLES",
        "KAFKA_LISTENERS",
        "KAFKA_ADVERTISED_LISTENERS",
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
        "KAFKA_CONTROLLER_QUORUM_VOTERS",
    )
    missing = [key for key in required if not env.get(key)]
    if missing:
        return problems + [f"kafka env lacks {missing}"]

    roles = set(names(env["KAFKA_PROCESS_ROLES"]))
    if not {"broker", "controller"} <= roles:
        problems.append(f"KAFKA_PROCESS_ROLES={env['KAFKA_PROCESS_ROLES']!r}: not a combined broker,controller")

    protocol_map = parse_protocol_map(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
    listeners = parse_listeners(env["KAFKA_LISTENERS"])
    advertised = parse_listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    controller_names = names(env["KAFKA_CONTROLLER_LISTENER_NAMES"])
    listener_names = {name for name, _, _ in listeners}

    for name in [n for n, _, _ in listeners] + [n for n, _, _ in advertised] + controller_names:
        if name not in protocol_map:
            problems.append(f"listener {name} is not in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP")
    for name, _, _ in advertised:
        if name not in listener_names:
            problems.append(f"advertised listener {name} is not in KAFKA_LISTENERS")
        if name in controller_names:
            problems.append(f"controller listener {name} must not be advertised on a broker")
    for name in controller_names:
        if name not in listener_names:
            problems.append(f"controller listener {name} is not in KAFKA_LISTENERS")
    inter_broker = env.get("KAFKA_INTER_BROKER_LISTENER_NAME")
    if inter_broker and inter_broker not in {n for n, _, _ in advertised}:
        problems.append(f"inter-broker listener {inter_broker} is not advertised")
    ports = [port for _, _, port in listeners]
    if len(ports) != len(set(ports)):
        problems.append(f"two listeners share a port: {env['KAFKA_LISTENERS']}")

    controller_ports = {port for name, _, port in listeners if name in controller_names}
    reachable_as = {kafka.get("hostname"), "kafka", kafka.get("container_name")} - {None}
    for node, host, port in parse_voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]):
        if str(node) != env["KAFKA_NODE_ID"]:
            problems.append(f"quorum voter id {node} is not KAFKA_NODE_ID={env['KAFKA_NODE_ID']}")
        if port not in controller_ports:
            problems.append(f"quorum voter port {port} is not the CONTROLLER listener port {sorted(controller_ports)}")
        if host not in reachable_as | {"localhost", "127.0.0.1"}:
            problems.append(f"quorum voter host {host!r} does not name this container")

    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        if env.get(key) != "1":
            problems.append(f"{key}={env.get(key)!r}: a single broker needs 1")
    return problems


def host_listener_problems(kafka: dict) -> list[str]:
    """The host reaches the broker at localhost:9092: advertised, and published."""
    env = env_of(kafka)
    advertised = parse_listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    listeners = {name: port for name, _, port in parse_listeners(env.get("KAFKA_LISTENERS", ""))}
    host_facing = [(n, h, p) for n, h, p in advertised if h in ("localhost", "127.0.0.1")]
    if not host_facing:
        return ["no advertised listener for the host (localhost)"]
    problems = []
    for name, _, port in host_facing:
        if listeners.get(name) != port:
            problems.append(f"host listener {name} advertises :{port} but listens on :{listeners.get(name)}")
        if port not in host_ports(kafka):
            problems.append(f"host listener port {port} is not published by the kafka service")
    if ("localhost", 9092) not in {(h, p) for _, h, p in host_facing} and ("127.0.0.1", 9092) not in {
        (h, p) for _, h, p in host_facing
    }:
        problems.append("the host-facing listener is not on port 9092 (Settings' default bootstrap)")
    return problems


def healthcheck_problems(kafka: dict) -> list[str]:
    test = (kafka.get("healthcheck") or {}).get("test")
    if not test:
        return ["kafka has no healthcheck"]
    text = test if isinstance(test, str) else " ".join(test)
    problems = []
    if not re.search(r"/opt/kafka/bin/(kafka-broker-api-versions|kafka-topics)\.sh", text):
        problems.append(f"kafka healthcheck does not use the image's Kafka tools: {text!r}")
    match = re.search(r"--bootstrap-server[ =](\S+?):(\d+)", text)
    listener_ports = {port for _, _, port in parse_listeners(env_of(kafka).get("KAFKA_LISTENERS", ""))}
    if not match:
        problems.append("kafka healthcheck names no --bootstrap-server")
    elif int(match[2]) not in listener_ports:
        problems.append(f"kafka healthcheck port {match[2]} is not a listener port {sorted(listener_ports)}")
    return problems


def app_env_problems(service_name: str, service: dict) -> list[str]:
    fields = set(Settings.model_fields)
    problems = []
    env = env_of(service)
    if not env:
        problems.append(f"{service_name} sets no environment")
    for key in env:
        if not key.startswith(ENV_PREFIX):
            problems.append(f"{service_name}: {key} is not a TALLYROOM_ setting")
        elif key[len(ENV_PREFIX) :].lower() not in fields:
            problems.append(f"{service_name}: {key} is not a field of tallyroom.settings.Settings")
        elif key != key.upper():
            problems.append(f"{service_name}: {key} should be upper-case")
    return problems


def bootstrap_problems(service_name: str, service: dict, compose: dict) -> list[str]:
    env = env_of(service)
    bootstrap = env.get("TALLYROOM_KAFKA_BOOTSTRAP")
    if not bootstrap:
        return [f"{service_name} does not set TALLYROOM_KAFKA_BOOTSTRAP"]
    kafka = compose["services"]["kafka"]
    kafka_env = env_of(kafka)
    advertised = {(h, p): n for n, h, p in parse_listeners(kafka_env.get("KAFKA_ADVERTISED_LISTENERS", ""))}
    protocol_map = parse_protocol_map(kafka_env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", ""))
    container_names = {"kafka", kafka.get("hostname"), kafka.get("container_name")} - {None}
    problems = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        name = advertised.get((host, int(port)))
        if name is None:
            problems.append(f"{service_name}: bootstrap {server} is not an advertised listener {sorted(advertised)}")
            continue
        if host not in container_names:
            problems.append(f"{service_name}: bootstrap {server} is not reachable from another container")
        protocol = env.get("TALLYROOM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
        if protocol_map.get(name) != protocol:
            problems.append(f"{service_name}: listener {name} speaks {protocol_map.get(name)}, the app {protocol}")
    return problems


def redis_problems(compose: dict) -> list[str]:
    redis = compose["services"].get("redis")
    if not redis:
        return ["no redis service"]
    problems = []
    if image_repo(redis.get("image", "")) != "redis":
        problems.append(f"redis image {redis.get('image')!r} is not the official redis")
    test = (redis.get("healthcheck") or {}).get("test") or []
    text = test if isinstance(test, str) else " ".join(test)
    if "redis-cli" not in text or "ping" not in text:
        problems.append(f"redis healthcheck is not `redis-cli ping`: {text!r}")
    if "--appendonly yes" not in " ".join(command_argv(redis)):
        problems.append("redis does not run with --appendonly yes")
    if 6379 not in host_ports(redis):
        problems.append("redis does not publish 6379")
    return problems


def dependency_problems(service_name: str, service: dict) -> list[str]:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return [f"{service_name}: depends_on must wait for health, not just start"]
    problems = []
    for needed in ("kafka", "redis"):
        condition = (depends.get(needed) or {}).get("condition")
        if condition != "service_healthy":
            problems.append(f"{service_name}: depends_on {needed} condition is {condition!r}")
    return problems


# --- the compose file as written -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_kafka_is_a_combined_kraft_node_whose_listeners_agree(compose):
    assert kafka_problems(compose["services"]["kafka"]) == []


def test_kafka_image_is_apache_kafka_in_kraft_mode(compose):
    kafka = compose["services"]["kafka"]
    assert image_repo(kafka["image"]) == "apache/kafka"
    assert {"broker", "controller"} <= set(names(env_of(kafka)["KAFKA_PROCESS_ROLES"]))


def test_every_listener_name_has_a_security_protocol(compose):
    env = env_of(compose["services"]["kafka"])
    protocol_map = parse_protocol_map(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
    used = [n for n, _, _ in parse_listeners(env["KAFKA_ADVERTISED_LISTENERS"])]
    used += names(env["KAFKA_CONTROLLER_LISTENER_NAMES"])
    assert used and set(used) <= set(protocol_map), (used, protocol_map)


def test_quorum_voter_port_is_the_controller_listener_port(compose):
    env = env_of(compose["services"]["kafka"])
    controller = names(env["KAFKA_CONTROLLER_LISTENER_NAMES"])
    controller_ports = {p for n, _, p in parse_listeners(env["KAFKA_LISTENERS"]) if n in controller}
    voter_ports = {p for _, _, p in parse_voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])}
    assert controller_ports and voter_ports == controller_ports


def test_host_reaches_kafka_on_localhost_9092(compose):
    assert host_listener_problems(compose["services"]["kafka"]) == []


def test_kafka_healthcheck_uses_the_kafka_tools(compose):
    assert healthcheck_problems(compose["services"]["kafka"]) == []


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_environment_names_are_settings_fields(compose, service):
    assert app_env_problems(service, compose["services"][service]) == []


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_bootstrap_is_a_listener_the_broker_advertises(compose, service):
    assert bootstrap_problems(service, compose["services"][service], compose) == []


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_settings_load_from_the_compose_environment(compose, service, monkeypatch):
    """pydantic-settings really reads these variables: the values land in Settings."""
    env = env_of(compose["services"][service])
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.kafka_bootstrap == env["TALLYROOM_KAFKA_BOOTSTRAP"]
    assert settings.redis_url == env["TALLYROOM_REDIS_URL"]
    assert settings.redis_url.startswith("redis://redis:6379")  # the compose service, not the host


@pytest.mark.parametrize("service", APP_SERVICES + ("replay",))
def test_app_services_build_this_repo_and_wait_for_healthy_backends(compose, service):
    spec = compose["services"][service]
    assert spec.get("build") in (".", {"context": "."}), spec.get("build")
    assert dependency_problems(service, spec) == []


def test_redis_is_the_official_image_with_aof_and_a_ping_healthcheck(compose):
    assert redis_problems(compose) == []


def test_service_commands_are_tallyroom_commands(compose):
    commands = typer.main.get_command(cli_app).commands
    assert command_argv(compose["services"]["worker"]) == ["worker"]
    assert command_argv(compose["services"]["sink"]) == ["sink"]
    assert command_argv(compose["services"]["web"]) == ["web", "--host", "0.0.0.0", "--port", "8000"]
    assert {"worker", "sink", "replay", "web"} <= set(commands)
    web_opts = {o for p in commands["web"].params for o in p.opts}
    assert {"--host", "--port"} <= web_opts
    assert 8000 in host_ports(compose["services"]["web"])


def test_replay_is_a_profile_and_its_options_exist(compose):
    replay = compose["services"]["replay"]
    assert "replay" in replay.get("profiles", [])
    argv = command_argv(replay)
    assert argv[0] == "replay"
    opts = {o for p in typer.main.get_command(cli_app).commands["replay"].params for o in p.opts}
    assert {a for a in argv if a.startswith("--")} <= opts
    night = argv[argv.index("--night") + 1]
    assert (ROOT / night).is_dir(), f"{night} is not in the repo, so it cannot be in the image"


# --- the Dockerfile and .dockerignore ------------------------------------------------------------------


def test_dockerfile_entry_point_runs_tallyroom():
    instructions = dockerfile_instructions()
    entrypoints = [exec_form(rest) for kw, rest in instructions if kw == "ENTRYPOINT"]
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    argv = entrypoints[-1]
    assert argv in (["python", "-m", "tallyroom"], ["tallyroom"]), argv


def test_dockerfile_is_slim_python_311_and_installs_the_project():
    instructions = dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim", froms
    runs = " ".join(rest for kw, rest in instructions if kw == "RUN")
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), runs
    copied = {rest.split()[0].rstrip("/") for kw, rest in instructions if kw == "COPY"}
    for needed in ("pyproject.toml", "tallyroom", "schemas", "producers", "streams", "consumers", "data"):
        assert needed in copied or "." in copied, f"{needed} is not copied into the image"
    java = re.compile(r"openjdk|jdk|jre|temurin|java", re.IGNORECASE)
    assert not [rest for kw, rest in instructions if kw in ("FROM", "RUN") and java.search(rest)], "no Java needed"


def test_dockerignore_keeps_local_state_out_and_data_in():
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for excluded in (".stack", ".git", "test-artifacts"):
        assert excluded in patterns, f"{excluded} is not in .dockerignore"
    assert "__pycache__" in patterns or "**/__pycache__" in patterns
    for kept in ("data", "tallyroom", "schemas", "producers", "streams", "consumers", "pyproject.toml"):
        assert kept not in patterns, f".dockerignore excludes {kept}, which the image needs"


# --- the rules do fail on broken configurations ------------------------------------------------------


def _kafka_with(compose: dict, **env_changes) -> dict:
    kafka = copy.deepcopy(compose["services"]["kafka"])
    env = env_of(kafka)
    env.update({k: v for k, v in env_changes.items() if v is not None})
    for key in [k for k, v in env_changes.items() if v is None]:
        env.pop(key, None)
    kafka["environment"] = env
    return kafka


def test_rules_catch_a_listener_missing_from_the_protocol_map(compose):
    kafka = _kafka_with(compose, KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT")
    assert any("CONTROLLER is not in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP" in p for p in kafka_problems(kafka))


def test_rules_catch_a_voter_on_the_wrong_port(compose):
    kafka = _kafka_with(compose, KAFKA_CONTROLLER_QUORUM_VOTERS="1@kafka:29093")
    assert any("quorum voter port 29093" in p for p in kafka_problems(kafka))


def test_rules_catch_a_broker_only_node_and_a_non_apache_image(compose):
    kafka = _kafka_with(compose, KAFKA_PROCESS_ROLES="broker")
    kafka["image"] = "bitnami/kafka:4.0"
    problems = kafka_problems(kafka)
    assert any("not a combined" in p for p in problems)
    assert any("not the official apache/kafka" in p for p in problems)


def test_rules_catch_a_bootstrap_the_broker_does_not_advertise(compose):
    worker = copy.deepcopy(compose["services"]["worker"])
    worker["environment"] = env_of(worker) | {"TALLYROOM_KAFKA_BOOTSTRAP": "kafka:9092"}
    assert bootstrap_problems("worker", worker, compose)
    worker["environment"]["TALLYROOM_KAFKA_BOOTSTRAP"] = "localhost:9092"  # advertised, but not for containers
    assert any("not reachable from another container" in p for p in bootstrap_problems("worker", worker, compose))


def test_rules_catch_an_unknown_setting(compose):
    worker = copy.deepcopy(compose["services"]["worker"])
    worker["environment"] = env_of(worker) | {"TALLYROOM_KAFKA_BROKERS": "kafka:19092", "REDIS_URL": "x"}
    problems = app_env_problems("worker", worker)
    assert any("TALLYROOM_KAFKA_BROKERS is not a field" in p for p in problems)
    assert any("REDIS_URL is not a TALLYROOM_ setting" in p for p in problems)


def test_rules_catch_an_unofficial_redis(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["image"] = "bitnami/redis:7.2"
    assert any("not the official redis" in p for p in redis_problems(broken))


@pytest.mark.parametrize(
    "image, repo",
    [
        ("apache/kafka:4.3.1", "apache/kafka"),
        ("docker.io/apache/kafka", "apache/kafka"),
        ("apache/kafka-native:4.3.1", "apache/kafka-native"),
        ("redis:7", "redis"),
        ("docker.io/library/redis:8@sha256:ab", "redis"),
        ("localhost:5000/redis:7", "localhost:5000/redis"),
    ],
)
def test_image_repo(image, repo):
    assert image_repo(image) == repo


# --- published ports and passwords -------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, against ``env``; raises on a missing :? one."""

    def resolve(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return ""

    return INTERPOLATION.sub(resolve, value)


def published_addresses(service: dict, env: dict[str, str]) -> list[tuple[str, int]]:
    """(host address, host port) of each short-syntax published port; '0.0.0.0' when none is given."""
    out = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            out.append((entry.get("host_ip", "0.0.0.0"), int(entry.get("published", entry["target"]))))
            continue
        parts = interpolate(str(entry).split("/")[0], env).split(":")
        host = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host, int(parts[-2] if len(parts) >= 2 else parts[-1])))
    return out


def exposure_problems(compose: dict, env: dict[str, str]) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        for host, port in published_addresses(service, env):
            if host != "127.0.0.1":
                problems.append(f"{name} publishes {port} on {host!r}, not 127.0.0.1")
    return problems


def password_problems(compose: dict) -> list[str]:
    """Redis needs a password, taken from the environment; the apps are given the same variable."""
    problems = []
    argv = command_argv(compose["services"]["redis"])
    if "--requirepass" not in argv:
        return ["redis runs without --requirepass"]
    secret = argv[argv.index("--requirepass") + 1]
    if not INTERPOLATION.fullmatch(secret) or INTERPOLATION.fullmatch(secret)["name"] != "TALLYROOM_REDIS_PASSWORD":
        problems.append(f"redis --requirepass is {secret!r}, not ${{TALLYROOM_REDIS_PASSWORD...}}")
    for name in APP_SERVICES + ("replay",):
        given = env_of(compose["services"][name]).get("TALLYROOM_REDIS_PASSWORD", "")
        if INTERPOLATION.sub("", given) or "TALLYROOM_REDIS_PASSWORD" not in given:
            problems.append(f"{name}: TALLYROOM_REDIS_PASSWORD is {given!r}, not read from the environment")
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if re.search("PASSWORD|SECRET|AUTH", key) and value and not INTERPOLATION.fullmatch(value.strip()):
                problems.append(f"{name}: {key} holds a literal value")
    return problems


def test_published_ports_bind_loopback_by_default(compose):
    assert exposure_problems(compose, {}) == []
    # ... and the documented switch publishes them further on purpose.
    widened = exposure_problems(compose, {"TALLYROOM_PUBLISH_HOST": "0.0.0.0"})
    assert widened and all("0.0.0.0" in p for p in widened)


def test_redis_password_comes_from_the_environment(compose):
    assert password_problems(compose) == []
    argv = command_argv(compose["services"]["redis"])
    secret = argv[argv.index("--requirepass") + 1]
    with pytest.raises(KeyError, match="TALLYROOM_REDIS_PASSWORD"):
        interpolate(secret, {})  # compose refuses to start without it, rather than run without a password
    assert interpolate(secret, {"TALLYROOM_REDIS_PASSWORD": "s3cret"}) == "s3cret"


def test_rules_catch_a_port_on_every_interface_and_a_literal_password(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["redis"]["ports"] = ["6379:6379"]
    assert exposure_problems(broken, {}) == ["redis publishes 6379 on '0.0.0.0', not 127.0.0.1"]
    broken["services"]["redis"]["command"] = ["redis-server", "--appendonly", "yes", "--requirepass", "hunter2"]
    broken["services"]["worker"]["environment"] = {"TALLYROOM_REDIS_PASSWORD": "hunter2"}
    problems = password_problems(broken)
    assert any("--requirepass is 'hunter2'" in p for p in problems)
    assert any(p.startswith("worker: TALLYROOM_REDIS_PASSWORD") for p in problems)
