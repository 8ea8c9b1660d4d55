"""The sink lists each dead letter once, however often the worker sends it (a real Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys
from tallyroom.consumers.redis_sink import RedisSink, redis_client
from tallyroom.schemas import DeadLetter
from tests.integration.conftest import (
    isolated_settings,
    stack,  # noqa: F401  (the real stack)
)

pytestmark = pytest.mark.integration

DEAD_LETTERS_REDIS_DB = 5  # its own: flushed here


@pytest.fixture
def sink(stack):  # noqa: F811
    settings, _ = isolated_settings(stack, "dead-letters", DEAD_LETTERS_REDIS_DB)
    client = redis_client(settings)
    client.flushdb()
    yield RedisSink(settings, client)
    client.flushdb()


def letter(offset: int, reason: str, minutes: int = 0) -> bytes:
    return (
        DeadLetter(
            topic="tallyroom.declarations",
            partition=0,
            offset=offset,
            key="night-dl",
            raw='{"kind": "declaration"}',
            reason=reason,
            received_at=datetime(2024, 7, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes),
        )
        .model_dump_json()
        .encode()
    )


def test_a_record_refused_again_after_a_restart_is_listed_once(sink):
    topic = sink.settings.topic_dead_letters
    sink.write_records([(topic, letter(7, "candidates: field required"))])
    # The worker re-read what it had not committed: the same record, refused again a minute later.
    sink.write_records([(topic, letter(7, "candidates: field required", minutes=1))])
    sink.write_records([(topic, letter(8, "candidates: field required"))])  # another record
    sink.write_records([(topic, letter(7, "a rule failed"))])  # the same record, refused for another reason

    listed = sink.redis.xrange(DEAD_LETTERS)
    assert [DeadLetter.model_validate_json(fields["json"]).offset for _, fields in listed] == [7, 8, 7]
    assert sink.counted()["dead_letter"] == 3 and sink.counted()["dead_letter_duplicate"] == 1
    assert sink.redis.hlen(ElectionKeys("night-dl").refused) == 2  # by record: offsets 7 and 8


def test_an_unreadable_dead_letter_is_listed_once_as_it_came(sink):
    topic = sink.settings.topic_dead_letters
    sink.write_records([(topic, b"not a dead letter"), (topic, b"not a dead letter")])
    assert [fields["json"] for _, fields in sink.redis.xrange(DEAD_LETTERS)] == ["not a dead letter"]
    assert sink.counted()["dead_letter_duplicate"] == 1
