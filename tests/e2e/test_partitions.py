"""Two workers, two partitions, two elections: each election's tally stays exact.

Events are keyed by election, so each election lives on one partition and its
tally on the one worker that owns it. When one worker stops, the other takes its
partition over, rebuilds that election's tally from the recovered tables and
carries on exactly. An event found on the wrong partition is dead-lettered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from tallyroom import processes
from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys
from tallyroom.consumers.reader import read_alerts, read_state, wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender, ensure_topics
from tallyroom.producers.nights import Night, load_night
from tallyroom.streams.count import Count
from tallyroom.streams.partitioning import election_partition
from tallyroom.streams.rules import RuleConfig
from tests.integration.conftest import cli_env, isolated_settings, running_pipeline

pytestmark = pytest.mark.e2e
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"
PARTITIONS = 2
REDIS_DB = 8  # apart from the other suites' databases (see tests/integration/conftest.py)


def one_election_per_partition() -> list[str]:
    """Election ids that Kafka's default partitioner puts on partitions 0 and 1."""
    found: dict[int, str] = {}
    for n in range(100):
        found.setdefault(election_partition(f"ge2024-p{n}", PARTITIONS), f"ge2024-p{n}")
    return [found[p] for p in range(PARTITIONS)]


def expected(night: Night, settings) -> tuple[dict, dict, int]:
    count = Count(RuleConfig(settings.marginal_votes, settings.marginal_share))
    count.open_night(night.opened)
    alerts = sum(len(count.declare(d).alerts) for d in night.declarations)
    tally = count.snapshot(night.opened.election)
    seats = {p: t.seats for p, t in tally.parties.items() if t.seats}
    votes = {p: t.votes for p, t in tally.parties.items() if t.votes}
    return seats, votes, alerts


def wait_for_members(settings, members: int, timeout: float) -> None:
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        deadline = time.monotonic() + timeout
        while True:
            group = admin.describe_groups([settings.worker_id])[settings.worker_id]
            if group["group_state"] == "Stable" and len(group["members"]) == members:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{settings.worker_id}: {len(group['members'])} members ({group['group_state']}), not {members}"
                )
            time.sleep(0.5)
    finally:
        admin.close()


@pytest.fixture(scope="module")
def two_workers(stack):
    settings, env = isolated_settings(stack, "partitions")
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    settings = settings.model_copy(update={"topic_partitions": PARTITIONS, "redis_url": redis_url})
    env = {**env, "TALLYROOM_TOPIC_PARTITIONS": str(PARTITIONS), "TALLYROOM_REDIS_URL": redis_url}
    ensure_topics(settings)
    with running_pipeline(settings, {**env, "TALLYROOM_WORKER_DATA_DIR": str(stack.stack_dir / "w-a")}) as pipe:
        second_env = {**env, "TALLYROOM_WORKER_DATA_DIR": str(stack.stack_dir / "w-b")}
        second = processes.start("worker", settings, env=second_env, log_name=f"{settings.worker_id}-worker-b")
        processes.wait_for_log(second, "Worker]: Ready", 120)
        # Both in the group before any event, so that each worker owns one partition.
        wait_for_members(settings, 2, 90)
        try:
            yield pipe, second
        finally:
            second.stop()


def test_each_election_exact_with_two_workers_and_after_one_stops(two_workers):
    pipe, second = two_workers
    elections = one_election_per_partition()
    nights = {election: load_night(NIGHT, election) for election in elections}
    for election in elections:
        done = subprocess.run(
            [sys.executable, "-m", "tallyroom", "replay", "--night", str(NIGHT), "--election", election, "--max"],
            capture_output=True,
            text=True,
            env=cli_env(pipe.env),
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    for election in elections:
        wait_for_declared(pipe.redis, election, 650, 240)
    wait_until_caught_up(pipe.settings)
    for election, night in nights.items():
        seats, votes, alert_count = expected(night, pipe.settings)
        state = read_state(pipe.redis, election)
        assert (state.declared, state.seats, state.votes) == (650, seats, votes), election
        assert pipe.redis.xlen(ElectionKeys(election).alerts) == alert_count, election

    # One worker goes; the other takes its partition and rebuilds that election's tally.
    second.stop()
    versions = {election: read_state(pipe.redis, election).tally.version for election in elections}
    corrected = {}
    sender = DeclarationSender(pipe.settings)
    for election, night in nights.items():
        first = night.declarations[0]
        top = max(first.candidates, key=lambda c: c.votes)
        candidates = [c.model_copy(update={"votes": c.votes + 100}) if c is top else c for c in first.candidates]
        corrected[election] = first.model_copy(update={"revision": 2, "candidates": candidates, "valid_votes": None})
        sender.send(corrected[election])
    assert sender.flush()[0] == len(nights)
    sender.close()
    for election in elections:
        wait_for_declared(pipe.redis, election, 650, 120, version=versions[election] + 1)
    wait_until_caught_up(pipe.settings)
    for election, night in nights.items():
        seats, votes, _ = expected(night, pipe.settings)
        party = max(night.declarations[0].candidates, key=lambda c: c.votes).party
        state = read_state(pipe.redis, election)
        assert state.seats == seats, election
        assert state.votes == dict(Counter(votes) + Counter({party: 100})), election
        assert [a.facts["revision"] for a in read_alerts(pipe.redis, election, {"correction"})] == [2]


def test_an_event_on_another_partition_than_its_elections_is_dead_lettered(two_workers):
    pipe, _ = two_workers
    election = one_election_per_partition()[0]
    night = load_night(NIGHT, election)
    producer = KafkaProducer(**pipe.settings.kafka_python_config())
    wrong = 1 - election_partition(election, PARTITIONS)
    producer.send(
        pipe.settings.topic_declarations,
        key=b"by-seat",
        partition=wrong,
        value=night.declarations[1].model_copy(update={"revision": 9}).model_dump_json().encode(),
    )
    producer.flush()
    producer.close()
    wait_until_caught_up(pipe.settings)
    reasons = [json.loads(f["json"])["reason"] for _, f in pipe.redis.xrange(DEAD_LETTERS)]
    assert any(f"arrived on partition {wrong}" in r and "key events by election" in r for r in reasons), reasons
    held = json.loads(pipe.redis.get(ElectionKeys(election).seat(night.declarations[1].ons_id)))
    assert held["revision"] == 1
