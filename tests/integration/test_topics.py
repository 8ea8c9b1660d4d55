"""Topics as ensure_topics creates them on the real broker: declarations and results kept for ever."""

from __future__ import annotations

import logging
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tallyroom.producers.kafka import ensure_topics
from tests.integration.conftest import stack  # noqa: F401  (the real stack)

pytestmark = pytest.mark.integration


def topic_configs(admin: KafkaAdminClient, topic: str) -> dict[str, str]:
    """The configs set on the topic itself (kafka-python 3 leaves out the broker's defaults).

    The broker answers a DescribeConfigs for a topic its metadata does not hold yet with an
    error that kafka-python drops, leaving no configs: a CI run read a changelog made a moment
    before as having no ``cleanup.policy``. ``ensure_topics`` now returns only once the broker's
    metadata (the same cache the describe reads) has each topic led, so this reads at once.
    """
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
    return {name: entry["value"] for name, entry in described.items()}


def test_declarations_and_results_have_no_time_based_deletion(stack, caplog):  # noqa: F811
    run = uuid.uuid4().hex[:8]
    names = {role: f"test.topics-{run}.{role}" for role in ("declarations", "alerts", "results", "dead-letters")}
    settings = stack.model_copy(
        update={
            "topic_declarations": names["declarations"],
            "topic_alerts": names["alerts"],
            "topic_results": names["results"],
            "topic_dead_letters": names["dead-letters"],
        }
    )
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        with caplog.at_level(logging.WARNING, logger="tallyroom.kafka"):
            specs = ensure_topics(settings)
            ensure_topics(settings)  # again: they exist now
        # One broker on loopback: the local stack, nothing of Tallyroom's to warn about. Only its own
        # records count: kafka-python's warnings of a slow event loop come with a busy machine.
        assert [r.getMessage() for r in caplog.records if r.name.startswith("tallyroom")] == []
        assert [spec.replication_factor for spec in specs] == [1, 1, 1, 1]
        configs = {role: topic_configs(admin, name) for role, name in names.items()}
        assert configs["declarations"]["retention.ms"] == configs["results"]["retention.ms"] == "-1"
        assert "retention.ms" not in configs["alerts"]  # the broker's default (a week): alerts are not the record
        assert "retention.ms" not in configs["dead-letters"]
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()


def test_the_worker_changelogs_are_created_compacted(stack):  # noqa: F811
    from tallyroom.streams.app import changelog_topics

    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(
        update={
            "worker_id": f"test-changelogs-{run}",
            **{f"topic_{role}": f"test.changelogs-{run}.{role}" for role in ("declarations", "alerts", "results")},
            "topic_dead_letters": f"test.changelogs-{run}.dead-letters",
        }
    )
    admin = KafkaAdminClient(**settings.kafka_python_config())
    created = [s.name for s in ensure_topics(settings, changelog_topics(settings))]
    try:
        for name in changelog_topics(settings):
            assert topic_configs(admin, name)["cleanup.policy"] == "compact", name
    finally:
        admin.delete_topics(created)
        admin.close()
