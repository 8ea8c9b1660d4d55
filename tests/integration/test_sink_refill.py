"""A Redis that loses its data is refilled from Kafka by the sink, each alert once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tallyroom import processes
from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.reader import read_state, wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import load_night
from tallyroom.producers.replay import replay_night
from tests.integration.conftest import isolated_settings, running_pipeline

pytestmark = pytest.mark.integration
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"
REDIS_DB = 7  # its own: this test flushes it on purpose
ELECTION = "ge2024-refill"
SEATS = 120


@pytest.fixture(scope="module")
def refill_pipeline(stack):
    settings, env = isolated_settings(stack, "refill", REDIS_DB)
    with running_pipeline(settings, env) as pipe:
        night = load_night(NIGHT, ELECTION)
        sender = DeclarationSender(settings)
        replay_night(replace(night, declarations=night.declarations[:SEATS]), sender, None)
        sender.close()
        wait_for_declared(pipe.redis, ELECTION, SEATS, 120)
        wait_until_caught_up(settings)
        yield pipe, night


def snapshot(pipe) -> dict:
    keys = ElectionKeys(ELECTION)
    state = read_state(pipe.redis, ELECTION)
    alert_ids = [fields["id"] for _, fields in pipe.redis.xrange(keys.alerts)]
    seat_keys = sorted(pipe.redis.scan_iter(match=keys.seat("*"), count=1000))
    return {
        "declared": state.declared,
        "seats": state.seats,
        "votes": state.votes,
        "alerts": sorted(alert_ids),
        "alerts_once": len(alert_ids) == len(set(alert_ids)),
        "seat_keys": seat_keys,
        "tally": pipe.redis.get(keys.tally),
    }


def test_redis_flushed_under_a_running_sink_is_refilled(refill_pipeline):
    pipe, _ = refill_pipeline
    before = snapshot(pipe)
    assert before["declared"] == SEATS and before["alerts"] and before["alerts_once"]
    pipe.redis.flushdb()
    wait_for_declared(pipe.redis, ELECTION, SEATS, 60)
    wait_until_caught_up(pipe.settings)
    assert snapshot(pipe) == before


def test_redis_flushed_while_the_sink_is_down_is_refilled_on_start(refill_pipeline):
    pipe, night = refill_pipeline
    before = snapshot(pipe)
    pipe.sink.stop()
    pipe.redis.flushdb()
    pipe.sink = processes.start("sink", pipe.settings, env=pipe.env, log_name=f"{pipe.settings.worker_id}-sink")
    wait_for_declared(pipe.redis, ELECTION, SEATS, 60)
    wait_until_caught_up(pipe.settings)
    assert snapshot(pipe) == before

    # And it carries on with what comes next, as before.
    sender = DeclarationSender(pipe.settings)
    sender.send(night.declarations[SEATS])
    sender.flush()
    sender.close()
    wait_for_declared(pipe.redis, ELECTION, SEATS + 1, 60)


def test_a_restarted_sink_with_redis_intact_does_not_read_everything_again(refill_pipeline):
    pipe, _ = refill_pipeline
    pipe.sink.stop()
    pipe.sink = processes.start("sink", pipe.settings, env=pipe.env, log_name=f"{pipe.settings.worker_id}-sink")
    processes.wait_alive(pipe.sink, 5)
    wait_until_caught_up(pipe.settings)
    log = pipe.sink.log_path.read_bytes()[pipe.sink.log_start :].decode(errors="replace")
    assert "reading them from the start" not in log and "refilling" not in log, log
