"""The sink writes each part of a results record to Redis as the worker wrote it (``WrittenParts``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tallyroom.bench.hotpath import SETTINGS, ge2024_payloads, worker_pass
from tallyroom.consumers.redis_sink import RedisSink, Steps
from tallyroom.schemas import ResultUpdate

NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"


@pytest.fixture(scope="module")
def results_records() -> list[bytes]:
    return worker_pass(*ge2024_payloads(NIGHT))


def queued(value: bytes) -> Steps:
    steps = Steps()
    RedisSink(SETTINGS)._queue_record(None, [], steps, SETTINGS.topic_results, value)  # no Redis call is made
    return steps


def serialised_again(value: bytes) -> Steps:
    """The steps as the sink built them before it forwarded bytes: each part serialised from the model."""
    steps = Steps()
    RedisSink(SETTINGS)._queue_update(steps, ResultUpdate.model_validate_json(value))
    return steps


def as_text(args: list) -> list:
    return [a.decode() if isinstance(a, bytes) else a for a in args]


def test_the_2024_nights_records_reach_redis_byte_for_byte_as_serialised_from_their_models(results_records):
    assert len(results_records) >= 650
    alerts = 0
    for value in results_records:
        forwarded, again = queued(value), serialised_again(value)
        assert (forwarded.keys, forwarded.kinds) == (again.keys, again.kinds)
        assert as_text(forwarded.args) == as_text(again.args)
        alerts += forwarded.kinds.count("alert")
    assert alerts > 0


def test_a_record_with_a_field_this_release_does_not_know_is_written_without_it(results_records):
    seat_record = next(v for v in results_records if json.loads(v).get("seat"))
    newer = json.loads(seat_record)
    newer["seat"]["added_by_a_newer_release"] = 1
    steps = queued(json.dumps(newer).encode())
    seat_json = as_text(steps.args)[steps.args.index("s") + 2]
    assert "added_by_a_newer_release" not in seat_json
    assert json.loads(seat_json) == json.loads(seat_record)["seat"]
