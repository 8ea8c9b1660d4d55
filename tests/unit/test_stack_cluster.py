"""The local cluster's layout and broker configs, without starting anything."""

from __future__ import annotations

import pytest

from tallyroom import stack
from tallyroom.settings import Settings


def settings(tmp_path, **values) -> Settings:
    base = {"kafka_bootstrap": "127.0.0.1:29192", "kafka_controller_port": 29193, "stack_dir": tmp_path}
    return Settings(_env_file=None, **(base | values))


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_broker_i_listens_on_the_bootstrap_port_plus_i_steps(tmp_path):
    cluster = stack.cluster_brokers(settings(tmp_path, stack_port_step=2), 3)
    assert [(b.node, b.port, b.controller_port) for b in cluster] == [
        (1, 29192, 29193),
        (2, 29194, 29195),
        (3, 29196, 29197),
    ]
    assert [b.name for b in cluster] == ["kafka-1", "kafka-2", "kafka-3"]
    assert stack.cluster_bootstrap(settings(tmp_path), 3) == "127.0.0.1:29192,127.0.0.1:29202,127.0.0.1:29212"


def test_ports_that_collide_are_refused_naming_the_step(tmp_path):
    with pytest.raises(stack.StackError, match="TALLYROOM_STACK_PORT_STEP"):
        stack.cluster_brokers(settings(tmp_path, stack_port_step=1), 3)  # 29193 is broker 2 and controller 1


def test_each_broker_is_a_voter_of_one_three_voter_quorum_with_its_own_data(tmp_path):
    own = settings(tmp_path, stack_port_step=2)
    services = stack.kafka_services(own, 3)
    assert [s.name for s in services] == ["kafka-1", "kafka-2", "kafka-3"]
    assert len({s.pid_file for s in services}) == len({s.log_file for s in services}) == 3
    configs = []
    cluster = stack.cluster_brokers(own, 3)
    for broker in cluster:
        text = stack.broker_properties(
            node=broker.node,
            host=broker.host,
            port=broker.port,
            controller_port=broker.controller_port,
            quorum="controller.quorum.voters=" + ",".join(f"{b.node}@{b.host}:{b.controller_port}" for b in cluster),
            data_dir=tmp_path / f"{broker.name}-data",
            brokers=3,
        )
        configs.append(properties(text))
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert {c["controller.quorum.voters"] for c in configs} == {"1@127.0.0.1:29193,2@127.0.0.1:29195,3@127.0.0.1:29197"}
    assert [c["listeners"] for c in configs][1] == "PLAINTEXT://127.0.0.1:29194,CONTROLLER://127.0.0.1:29195"
    assert len({c["log.dirs"] for c in configs}) == 3
    for c in configs:
        assert c["process.roles"] == "broker,controller"
        # The cluster's own topics survive a broker: three replicas, two in sync for a write.
        assert c["offsets.topic.replication.factor"] == c["transaction.state.log.replication.factor"] == "3"
        assert c["default.replication.factor"] == "3"
        assert c["min.insync.replicas"] == c["transaction.state.log.min.isr"] == "2"


def test_one_broker_stays_the_single_standalone_node(tmp_path):
    own = settings(tmp_path)
    (service,) = stack.kafka_services(own, 1)
    assert service.name == "kafka" and service.address == "127.0.0.1:29192"
    config = properties(stack._server_properties(own).read_text())
    assert config["controller.quorum.bootstrap.servers"] == "127.0.0.1:29193"
    assert config["offsets.topic.replication.factor"] == "1"
    assert "default.replication.factor" not in config and "min.insync.replicas" not in config


def test_status_and_down_follow_the_layout_the_last_up_started(tmp_path):
    own = settings(tmp_path, stack_brokers=1)
    assert [s.name for s in stack.services(own)] == ["redis", "kafka"]
    assert [s.name for s in stack.services(own, 3)] == ["redis", "kafka-1", "kafka-2", "kafka-3"]
    # Nothing runs: a record of three brokers alone does not make the layout three.
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / "kafka-brokers").write_text("3\n")
    assert stack.recorded_brokers(own) == 3
    assert [s.name for s in stack.services(own)] == ["redis", "kafka"]
