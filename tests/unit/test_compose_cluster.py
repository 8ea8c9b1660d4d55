"""Static checks of docker-compose.yml's `cluster` profile: three combined brokers and controllers.

Like test_compose.py, no Docker engine is needed: the file is parsed and each rule below
returns its problems, so the tests at the bottom show that a broken cluster is caught.
"""

from __future__ import annotations

import copy

import pytest

from tallyroom import stack
from tallyroom.settings import Settings
from tests.unit.test_compose import (
    env_of,
    healthcheck_problems,
    image_repo,
    load_compose,
    names,
    parse_listeners,
    parse_protocol_map,
    parse_voters,
)

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
CLUSTER_APPS = ("cluster-worker", "cluster-sink", "cluster-web", "cluster-replay")
PROFILE = "cluster"
INTERNAL_TOPICS = {
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "3",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "2",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "3",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "2",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
    "KAFKA_MIN_INSYNC_REPLICAS": "2",
}


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of each short-syntax `ports:` entry ("" when unbound)."""
    out = []
    for entry in service.get("ports") or []:
        parts = str(entry).split("/")[0].split(":")
        ip = parts[0] if len(parts) == 3 else ""
        out.append((ip, int(parts[-2]) if len(parts) > 1 else int(parts[-1]), int(parts[-1])))
    return out


def broker_problems(compose: dict) -> list[str]:
    services = compose["services"]
    missing = [name for name in BROKERS if name not in services]
    if missing:
        return [f"no {missing} service"]
    problems = []
    envs = {name: env_of(services[name]) for name in BROKERS}
    node_ids = {name: env.get("KAFKA_NODE_ID") for name, env in envs.items()}
    if len(set(node_ids.values())) != len(BROKERS):
        problems.append(f"node ids are not distinct: {node_ids}")
    for key in ("CLUSTER_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS"):
        if len({env.get(key) for env in envs.values()}) != 1:
            problems.append(f"{key} differs between the brokers: one cluster needs one")
    images = {services[name].get("image") for name in BROKERS}
    if len(images) != 1 or image_repo(next(iter(images)) or "") != "apache/kafka":
        problems.append(f"brokers' images {images}: one official apache/kafka")
    if images != {services["kafka"].get("image")}:
        problems.append("the cluster runs another Kafka than the single broker")

    # Each voter is a broker: its node id, its hostname, its CONTROLLER listener's port.
    voters = parse_voters(envs[BROKERS[0]].get("KAFKA_CONTROLLER_QUORUM_VOTERS", ""))
    expected = set()
    for name in BROKERS:
        env = envs[name]
        controller = names(env.get("KAFKA_CONTROLLER_LISTENER_NAMES", ""))
        ports = [p for n, _, p in parse_listeners(env.get("KAFKA_LISTENERS", "")) if n in controller]
        expected |= {(int(node_ids[name] or 0), services[name].get("hostname"), port) for port in ports}
    if set(voters) != expected or len(voters) != len(BROKERS):
        problems.append(f"quorum voters {sorted(voters)} are not the brokers' controllers {sorted(expected)}")

    for name in BROKERS:
        service, env = services[name], envs[name]
        if PROFILE not in (service.get("profiles") or []):
            problems.append(f"{name} is not in the {PROFILE} profile")
        if set(names(env.get("KAFKA_PROCESS_ROLES", ""))) != {"broker", "controller"}:
            problems.append(f"{name}: not a combined broker,controller")
        for key, value in INTERNAL_TOPICS.items():
            if env.get(key) != value:
                problems.append(f"{name}: {key}={env.get(key)!r}, where three brokers want {value}")
        protocol_map = parse_protocol_map(env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", ""))
        listeners = {n: p for n, _, p in parse_listeners(env.get("KAFKA_LISTENERS", ""))}
        for listener, host, port in parse_listeners(env.get("KAFKA_ADVERTISED_LISTENERS", "")):
            if listener not in protocol_map or listeners.get(listener) != port:
                problems.append(f"{name}: advertised {listener}://{host}:{port} is not one of its listeners")
            if host not in ("localhost", "127.0.0.1", service.get("hostname")):
                problems.append(f"{name}: advertises {host}, which is not itself")
            if host in ("localhost", "127.0.0.1") and ("127.0.0.1", port, port) not in published(service):
                problems.append(f"{name}: host listener :{port} is not published on 127.0.0.1:{port}")
        if (service.get("volumes") or [None])[0] in [
            (services[o].get("volumes") or [None])[0] for o in BROKERS if o != name
        ]:
            problems.append(f"{name} shares its data volume with another broker")
        problems += [f"{name}: {p}" for p in healthcheck_problems(service)]
    return problems


def host_port_problems(compose: dict) -> list[str]:
    """Every port the cluster profile publishes is bound to 127.0.0.1, and the brokers' follow the
    local stack's scheme, so one TALLYROOM_KAFKA_BOOTSTRAP serves `stack up --brokers 3` and compose."""
    problems = []
    for name in BROKERS + CLUSTER_APPS:
        for ip, host_port, _ in published(compose["services"][name]):
            if ip != "127.0.0.1":
                problems.append(f"{name} publishes :{host_port} on {ip or 'every interface'}, not 127.0.0.1")
    first = published(compose["services"][BROKERS[0]])[0][1]
    local = Settings(_env_file=None, kafka_bootstrap=f"127.0.0.1:{first}")
    scheme = [b.port for b in stack.cluster_brokers(local, len(BROKERS))]
    composed = [published(compose["services"][name])[0][1] for name in BROKERS]
    if composed != scheme:
        problems.append(f"brokers published on {composed}, the local stack's scheme gives {scheme}")
    return problems


def app_problems(compose: dict) -> list[str]:
    services = compose["services"]
    problems = []
    internal = {
        (h, p) for name in BROKERS for _, h, p in parse_listeners(env_of(services[name])["KAFKA_ADVERTISED_LISTENERS"])
    }
    for name in CLUSTER_APPS:
        service = services[name]
        if PROFILE not in (service.get("profiles") or []):
            problems.append(f"{name} is not in the {PROFILE} profile")
        bootstrap = env_of(service).get("TALLYROOM_KAFKA_BOOTSTRAP", "")
        servers = [(s.rpartition(":")[0], int(s.rpartition(":")[2])) for s in bootstrap.split(",") if s]
        if {h for h, _ in servers} != set(BROKERS) or not set(servers) <= internal:
            problems.append(f"{name}: bootstrap {bootstrap!r} does not name each broker's container listener")
        depends = service.get("depends_on") or {}
        for needed in (*BROKERS, "redis"):
            if (depends.get(needed) or {}).get("condition") != "service_healthy":
                problems.append(f"{name}: does not wait for {needed} to be healthy")
        if "kafka" in depends:
            problems.append(f"{name} waits for the single broker, which the cluster replaces")
    return problems


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_three_combined_brokers_form_one_three_voter_quorum(compose):
    assert broker_problems(compose) == []


def test_the_cluster_publishes_only_on_loopback_in_the_local_stacks_port_scheme(compose):
    assert host_port_problems(compose) == []


def test_the_cluster_apps_bootstrap_from_every_broker_and_wait_for_all(compose):
    assert app_problems(compose) == []


def test_the_cluster_is_a_profile_and_the_default_stays_one_broker(compose):
    services = compose["services"]
    defaults = {name for name, spec in services.items() if not spec.get("profiles")}
    assert {"kafka", "redis", "worker", "sink", "web"} <= defaults
    assert not defaults & set(BROKERS + CLUSTER_APPS)
    assert env_of(services["worker"])["TALLYROOM_KAFKA_BOOTSTRAP"] == "kafka:19092"


def test_the_cluster_app_settings_load_from_compose(compose, monkeypatch):
    env = env_of(compose["services"]["cluster-worker"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.kafka_python_config()["bootstrap_servers"] == ["kafka-1:19092", "kafka-2:19092", "kafka-3:19092"]


# --- the rules do fail on broken clusters -------------------------------------------------------------


def _broken(compose: dict, broker: str, **env_changes) -> dict:
    broken = copy.deepcopy(compose)
    broken["services"][broker]["environment"] = env_of(broken["services"][broker]) | env_changes
    return broken


def test_rules_catch_a_broker_with_another_voter_list(compose):
    broken = _broken(compose, "kafka-3", KAFKA_CONTROLLER_QUORUM_VOTERS="3@kafka-3:9093")
    assert any("KAFKA_CONTROLLER_QUORUM_VOTERS differs" in p for p in broker_problems(broken))


def test_rules_catch_two_brokers_with_one_node_id(compose):
    broken = _broken(compose, "kafka-2", KAFKA_NODE_ID="1")
    problems = broker_problems(broken)
    assert any("node ids are not distinct" in p for p in problems)
    assert any("quorum voters" in p for p in problems)


def test_rules_catch_internal_topics_on_one_replica(compose):
    broken = _broken(compose, "kafka-1", KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1")
    assert any("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR='1'" in p for p in broker_problems(broken))


def test_rules_catch_a_port_on_every_interface(compose):
    broken = copy.deepcopy(compose)
    broken["services"]["kafka-2"]["ports"] = ["9202:9202"]
    assert any("every interface" in p for p in host_port_problems(broken))
    assert any("not published on 127.0.0.1" in p for p in broker_problems(broken))


def test_rules_catch_an_app_that_bootstraps_from_one_broker(compose):
    broken = copy.deepcopy(compose)
    worker = broken["services"]["cluster-worker"]
    worker["environment"] = env_of(worker) | {"TALLYROOM_KAFKA_BOOTSTRAP": "kafka-1:19092"}
    assert any("does not name each broker" in p for p in app_problems(broken))
