"""How Tallyroom's topics are created for the cluster they are on (producers.kafka.topic_spec). No Kafka."""

from __future__ import annotations

import pytest
from kafka.errors import LeaderNotAvailableError

from tallyroom.producers.kafka import replication_warning, tallyroom_topics, topic_spec, wait_until_led
from tallyroom.settings import Settings


@pytest.mark.parametrize(("brokers", "replicas", "min_insync"), [(1, 1, None), (2, 2, None), (3, 3, "2"), (5, 3, "2")])
def test_replicas_are_min_of_three_and_the_brokers_with_two_in_sync_at_three(brokers, replicas, min_insync):
    spec = topic_spec("t", partitions=4, brokers=brokers)
    assert (spec.partitions, spec.replication_factor) == (4, replicas)
    assert spec.configs.get("min.insync.replicas") == min_insync


def test_a_set_replication_factor_wins_but_cannot_exceed_the_brokers():
    assert topic_spec("t", 1, brokers=3, replication_factor=1).replication_factor == 1
    assert "min.insync.replicas" not in topic_spec("t", 1, brokers=3, replication_factor=2).configs
    with pytest.raises(ValueError, match="topic_replication_factor: 3 for t, but the cluster has 2 broker"):
        topic_spec("t", 1, brokers=2, replication_factor=3)


def test_a_changelog_is_compacted_and_replicated_the_same_way():
    spec = topic_spec("tallyroom-seats-changelog", 1, brokers=3, compacted=True)
    assert spec.configs == {"cleanup.policy": "compact", "min.insync.replicas": "2"}
    new = spec.new_topic()
    assert (new.name, new.num_partitions, new.replication_factor) == ("tallyroom-seats-changelog", 1, 3)
    assert new.topic_configs == spec.configs


def test_declarations_and_results_are_kept_and_the_others_use_the_broker_default():
    specs = {spec.name: spec for spec in tallyroom_topics(Settings(), brokers=3)}
    assert specs["tallyroom.declarations"].configs["retention.ms"] == "-1"
    assert specs["tallyroom.results"].configs["retention.ms"] == "-1"
    assert "retention.ms" not in specs["tallyroom.alerts"].configs
    assert "retention.ms" not in specs["tallyroom.dead-letters"].configs
    assert {spec.replication_factor for spec in specs.values()} == {3}
    week = {spec.name: spec for spec in tallyroom_topics(Settings(topic_retention_ms=604_800_000), brokers=1)}
    assert week["tallyroom.declarations"].configs == {"retention.ms": "604800000"}


def test_one_replica_warns_on_a_cluster_or_off_loopback_only():
    assert replication_warning(1, 1, "127.0.0.1:9092") is None
    assert replication_warning(1, 1, "localhost:9092,[::1]:9093") is None
    assert replication_warning(3, 3, "kafka-1.example:9092") is None
    cluster = replication_warning(1, 3, "127.0.0.1:9092")
    assert cluster and "3 brokers" in cluster and "TALLYROOM_TOPIC_REPLICATION_FACTOR" in cluster
    remote = replication_warning(1, 1, "kafka:19092")
    assert remote and "(kafka) is not on this machine's loopback" in remote


class Metadata:
    """An admin client whose broker learns of topics over successive answers."""

    def __init__(self, *answers: dict[str, list[int] | None]):
        self.answers, self.asked = list(answers), 0

    def describe_topics(self, names: list[str]) -> list[dict]:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [
            {
                "name": name,
                "error_code": 3 if answer.get(name) is None else 0,
                "partitions": described(answer.get(name)),
            }
            for name in names
        ]


def described(leaders: list[int] | None) -> list[dict]:
    return [{"partition_index": i, "leader_id": leader} for i, leader in enumerate(leaders or [])]


def test_topics_are_waited_for_until_every_partition_has_a_leader():
    admin = Metadata(
        {"results": None, "alerts": [1]}, {"results": [1, -1], "alerts": [1]}, {"results": [1, 2], "alerts": [1]}
    )
    wait_until_led(admin, ["results", "alerts"])
    assert admin.asked == 3


def test_a_topic_never_led_is_a_transient_error_naming_it():
    admin = Metadata({"results": [1], "alerts": [-1]})
    with pytest.raises(LeaderNotAvailableError, match="alerts") as raised:
        wait_until_led(admin, ["results", "alerts"], seconds=0.3)
    assert raised.value.retriable and "results" not in str(raised.value)
