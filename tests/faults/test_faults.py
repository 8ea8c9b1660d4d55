"""Faults on the real stack: the delivery guarantee (at-least-once, made idempotent) under crashes.

Each test replays the 2024 night into an election of its own on a broker and Redis of
this module alone (see conftest.py), breaks something mid-night, and then checks the
books: 650 declared, seats and votes exactly those of the published result, and every
alert the pure ``Count`` raises for the night exactly once in Redis, and no other.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from tallyroom import stack as local_stack
from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys
from tallyroom.consumers.reader import read_alerts, read_state, wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import Night, load_night
from tallyroom.producers.replay import ReplayReport, replay_night
from tallyroom.schemas import Alert, Declaration
from tallyroom.settings import Settings
from tallyroom.streams.count import Count
from tallyroom.streams.rules import RuleConfig
from tests.e2e.test_night import NIGHT, candidate_votes_by_party, constituency_rows
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.faults

KILL_POINTS = (50, 200, 325, 326, 600)  # declarations sent (and seen in Redis) before each SIGKILL
STREAMING_KILLS = 3
BULK_OF_NIGHT = 640  # the last ten seats declare hours (one days) later; paced replays squeeze them


# ------------------------------------------------------------------ what the night should give


def expected_alerts(night: Night, settings: Settings) -> list[Alert]:
    """The alerts of the night from the pure count, in-process, with no Kafka and no crash."""
    count = Count(RuleConfig(settings.marginal_votes, settings.marginal_share))
    count.open_night(night.opened)
    alerts: list[Alert] = []
    for declaration in night.declarations:
        alerts += count.declare(declaration).alerts
    return alerts


def alert_signature(alert: Alert) -> tuple[str, str | None, str | None]:
    return alert.kind.value, alert.ons_id, alert.facts.get("defeated")


def assert_books_balance(pipe, night: Night) -> None:
    """650 declared, exact seats and votes, and each expected alert exactly once."""
    election = night.election
    try:
        wait_for_declared(pipe.redis, election, len(night.declarations), 240)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{where_the_missing_seats_went(pipe, night)}") from None
    wait_until_caught_up(pipe.settings, timeout=240)

    state = read_state(pipe.redis, election)
    assert state.declared == state.total == 650
    assert state.seats == dict(Counter(row["First party"] for row in constituency_rows()))
    assert state.votes == dict(candidate_votes_by_party())

    assert_each_alert_once(pipe, election, expected_alerts(night, pipe.settings))


def assert_each_alert_once(pipe, election: str, expected: list[Alert]) -> None:
    """Redis holds each of ``expected`` exactly once, the very same alert, and no other."""
    landed = read_alerts(pipe.redis, election)
    keys = ElectionKeys(election)
    assert Counter(map(alert_signature, landed)) == Counter(map(alert_signature, expected))
    assert pipe.redis.xlen(keys.alerts) == pipe.redis.scard(keys.alert_ids) == len(expected)
    assert len({a.id for a in landed}) == len(landed)
    # Same ids and the same content: a re-counted seat raised the very same alerts. The pure
    # count knows no Kafka record, so provenance is compared apart: each landed alert names one.
    assert {a.id: a.model_copy(update={"provenance": None}) for a in landed} == {a.id: a for a in expected}
    assert {a.provenance.topic for a in landed} == {pipe.settings.topic_declarations}


def where_the_missing_seats_went(pipe, night: Night) -> str:
    """For a failed run: each seat Redis lacks, traced through the declarations and results topics,
    with the worker's committed offset, the tally Redis holds, and the worker's warnings."""
    keys = ElectionKeys(night.election)
    missing = {d.ons_id for d in night.declarations if not pipe.redis.exists(keys.seat(d.ons_id))}
    lines = [f"seats missing in Redis: {sorted(missing)}"]
    declared = [r for r in read_topic(pipe.settings, pipe.settings.topic_declarations) if r.value]
    for record in declared:
        event = json.loads(record.value)
        if event.get("ons_id") in missing:
            lines.append(f"  declarations@{record.offset}: {event['ons_id']} revision {event.get('revision')}")
    results = [json.loads(r.value) for r in read_topic(pipe.settings, pipe.settings.topic_results)]
    for offset, update in enumerate(results):
        seat = update.get("seat") or {}
        if seat.get("ons_id") in missing:
            lines.append(f"  results@{offset}: {seat['ons_id']} revision {seat.get('revision')}")
    tallies = [(u["tally"]["version"], u["tally"]["declared"]) for u in results if u.get("tally")]
    lines.append(f"results: {len(results)} records; last tallies (version, declared): {tallies[-5:]}")
    lines.append(f"highest tally version sent: {max(tallies, default=None)}")
    state = read_state(pipe.redis, night.election)
    lines.append(f"Redis: declared {state.declared}, tally version {state.tally.version if state.tally else None}")
    lines.append(f"worker's committed offset: {committed_offset(pipe.settings)} of {len(declared)} records")
    log = pipe.worker.log_path.read_text(errors="replace")  # every run of the worker in this test
    marks = ("WARN", "ERROR", "CRIT", "rebuilt", "Ready", "generation")
    lines += [line for line in log.splitlines() if any(mark in line for mark in marks)][-40:]
    return "\n".join(lines)


def recounted_seats(settings: Settings, election: str) -> int:
    """Seat results the worker sent more than once: each is a crash between broker ack and table write.

    A figure for the report, not an assertion: whether a SIGKILL lands in that
    window is a matter of timing.
    """
    consumer = KafkaConsumer(enable_auto_commit=False, **settings.kafka_python_config())
    try:
        partitions = [
            TopicPartition(settings.topic_results, p)
            for p in consumer.partitions_for_topic(settings.topic_results) or ()
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        sent: Counter = Counter()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    update = json.loads(record.value)
                    if update["election"] == election and update.get("seat"):
                        sent[update["seat"]["ons_id"], update["seat"]["revision"]] += 1
        return sum(n - 1 for n in sent.values())
    finally:
        consumer.close()


# ----------------------------------------------------------------------------- sending


def send_all(sender: DeclarationSender, declarations: list[Declaration]) -> None:
    """Send and wait for the broker (with whatever else the sender holds, e.g. the night's opening)."""
    for declaration in declarations:
        sender.send(declaration)
    pending = len(sender.futures)
    acked, failures = sender.flush()
    assert not failures and acked == pending, failures[:3]


class ReplayInBackground:
    """``replay_night`` in a thread, so that the test can break things while it sends."""

    def __init__(self, night: Night, sender: DeclarationSender, speed: float | None, max_gap: float | None = None):
        self.report: ReplayReport | None = None
        self.error: BaseException | None = None
        # Sleeping at most max_gap per declaration squeezes the night's long tail
        # (the last seats declared a day later) into a few seconds.
        sleep = (lambda s: time.sleep(min(s, max_gap))) if max_gap else time.sleep
        self._thread = threading.Thread(target=self._run, args=(night, sender, speed, sleep), daemon=True)
        self._thread.start()

    def _run(self, night, sender, speed, sleep) -> None:
        try:
            self.report = replay_night(night, sender, speed, console=Console(quiet=True), sleep=sleep)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by join()
            self.error = exc

    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float = 300) -> ReplayReport:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"replay still sending after {timeout:.0f}s"
        if self.error is not None:
            raise self.error
        return self.report


def paced(night: Night, seconds: float) -> float:
    """The replay speed at which the bulk of the night takes ``seconds``."""
    declarations = night.declarations
    span = (declarations[BULK_OF_NIGHT].declared_at - declarations[0].declared_at).total_seconds()
    return span / seconds


def assert_running(pipe: Pipeline) -> None:
    """The worker and sink both run (a worker that stopped on a hole counts once it is started again)."""
    for proc in pipe.running_now():
        assert proc.process.poll() is None, f"{proc.name} died (exit {proc.process.returncode}):\n{proc.log_tail(60)}"


def this_run_log(proc) -> str:
    return proc.this_run_log()


# ------------------------------------------------------------------------------- tests


def test_worker_sigkilled_at_five_points_still_counts_every_seat_and_alert_once(fault_pipeline):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-kill")
    declarations = night.declarations
    sender = DeclarationSender(pipe.settings)
    sender.open_night(night.opened)
    sent = 0
    for point in KILL_POINTS:
        # A few already-counted seats again, to a worker that has just been restarted.
        send_all(sender, declarations[sent:point] + declarations[max(0, sent - 5) : sent])
        wait_for_declared(pipe.redis, night.election, point, 240)
        pipe.worker.kill()
        pipe.restart_worker()
        sent = point
    send_all(sender, declarations[sent:] + declarations[:25])
    sender.close()

    assert_books_balance(pipe, night)
    print(f"\nkills at {KILL_POINTS}: {recounted_seats(pipe.settings, night.election)} seat(s) re-counted")


def test_worker_sigkilled_while_a_max_replay_streams_still_counts_every_seat_and_alert_once(fault_pipeline):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-streaming")
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    sender = DeclarationSender(pipe.settings)
    size = -(-len(night.declarations) // STREAMING_KILLS)
    pauses = []
    for start in range(0, len(night.declarations), size):
        part = replace(night, declarations=night.declarations[start : start + size])
        replay = ReplayInBackground(part, sender, None)
        pauses.append(rng.uniform(0.2, 1.5))
        time.sleep(pauses[-1])
        pipe.worker.kill()
        pipe.restart_worker()
        report = replay.join()
        assert report.acknowledged == report.sent and not report.failures, report.failures[:3]
    sender.close()

    assert_books_balance(pipe, night)
    print(
        f"\nseed {seed}, kills {', '.join(f'{p:.2f}' for p in pauses)} s into each third: "
        f"{recounted_seats(pipe.settings, night.election)} seat(s) re-counted"
    )


def test_sink_rides_out_a_30s_redis_outage_with_no_alert_lost_or_doubled(fault_pipeline, fault_stack):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-redis")
    sender = DeclarationSender(pipe.settings)
    started = time.monotonic()
    replay = ReplayInBackground(night, sender, paced(night, 55), max_gap=1.0)
    time.sleep(15)
    declared_before = read_state(pipe.redis, night.election).declared
    assert declared_before < 650, "the night was over before Redis went away: nothing was tested"
    local_stack.redis_down(fault_stack)
    time.sleep(30)
    local_stack.redis_up(fault_stack)
    back_at = time.monotonic() - started
    report = replay.join()
    sender.close()
    assert report.acknowledged == report.sent == 651 and not report.failures, report.failures[:3]

    assert_running(pipe)
    assert "Redis unavailable" in this_run_log(pipe.sink), "the sink never noticed the outage"
    assert_books_balance(pipe, night)
    print(
        f"\nRedis down at 15 s with {declared_before} declared, back at {back_at:.0f} s; "
        f"replay took {report.seconds:.0f} s; books balanced at {time.monotonic() - started:.0f} s"
    )


def test_broker_restart_mid_night_loses_nothing_and_doubles_nothing(fault_pipeline, fault_stack):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-broker")
    sender = DeclarationSender(pipe.settings)
    started = time.monotonic()
    replay = ReplayInBackground(night, sender, paced(night, 40), max_gap=1.0)
    time.sleep(10)
    declared_before = read_state(pipe.redis, night.election).declared
    assert declared_before < 650, "the night was over before the broker went away: nothing was tested"
    local_stack.kafka_down(fault_stack)
    down_at = time.monotonic() - started
    time.sleep(10)
    local_stack.kafka_up(fault_stack)
    up_at = time.monotonic() - started
    report = replay.join()
    sender.close()
    assert report.acknowledged == report.sent == 651 and not report.failures, report.failures[:3]

    assert_running(pipe)
    assert_books_balance(pipe, night)
    print(
        f"\nbroker stopped at {down_at:.0f} s with {declared_before} declared, answering again at "
        f"{up_at:.0f} s; replay took {report.seconds:.0f} s; books balanced at "
        f"{time.monotonic() - started:.0f} s; {recounted_seats(pipe.settings, night.election)} seat(s) re-counted"
    )


# ----------------------------------------------------------- a worker that fails never skips


def pure_count(night: Night, declarations: list[Declaration], settings: Settings) -> tuple[dict, dict, list[Alert]]:
    """Seats, votes and alerts of ``declarations`` alone, from the pure count."""
    count = Count(RuleConfig(settings.marginal_votes, settings.marginal_share))
    count.open_night(night.opened)
    alerts: list[Alert] = []
    for declaration in declarations:
        alerts += count.declare(declaration).alerts
    snapshot = count.snapshot(night.election)
    seats = {p: t.seats for p, t in snapshot.parties.items() if t.seats}
    votes = {p: t.votes for p, t in snapshot.parties.items() if t.votes}
    return seats, votes, alerts


def assert_exactly(
    pipe, night: Night, declarations: list[Declaration], version: int | None = None, alerts: bool = True
) -> None:
    """Redis holds exactly what the pure count makes of ``declarations``: seats, votes, each alert once."""
    declared = len({d.ons_id for d in declarations})
    wait_for_declared(pipe.redis, night.election, declared, 240, version=version)
    wait_until_caught_up(pipe.settings, timeout=240)
    seats, votes, expected = pure_count(night, declarations, pipe.settings)
    state = read_state(pipe.redis, night.election)
    assert state.declared == declared
    assert (state.seats, state.votes) == (seats, votes)
    if alerts:
        landed = read_alerts(pipe.redis, night.election)
        assert Counter(a.id for a in landed) == Counter(a.id for a in expected)


def dead_letters(pipe) -> list[dict]:
    return [json.loads(fields["json"]) for _, fields in pipe.redis.xrange(DEAD_LETTERS)]


def wait_for_exit(proc, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while proc.process.poll() is None:
        assert time.monotonic() < deadline, f"{proc.name} still running after {seconds:.0f}s:\n{proc.log_tail(40)}"
        time.sleep(0.2)
    return proc.process.returncode


def read_topic(settings: Settings, topic: str, end: int | None = None) -> list:
    """Every record of partition 0 of ``topic`` (up to offset ``end``)."""
    consumer = KafkaConsumer(enable_auto_commit=False, **settings.kafka_python_config())
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        stop = consumer.end_offsets([tp])[tp] if end is None else end
        records = []
        while consumer.position(tp) < stop:
            for batch in consumer.poll(timeout_ms=1000).values():
                records += [r for r in batch if r.offset < stop]
        return records
    finally:
        consumer.close()


def committed_offset(settings: Settings) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        offsets = admin.list_group_offsets({settings.worker_id: [TopicPartition(settings.topic_declarations, 0)]})
        held = offsets.get(settings.worker_id, {}).get(TopicPartition(settings.topic_declarations, 0))
        return held.offset if held is not None and held.offset >= 0 else 0
    finally:
        admin.close()


def test_a_rule_that_raises_for_one_seat_dead_letters_it_and_counts_the_rest(fault_pipeline):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-rule")
    poisoned = night.declarations[300]
    pipe.worker.kill()
    pipe.env = {**pipe.env, "TALLYROOM_FAULT_RULE_SEAT": poisoned.ons_id}
    pipe.restart_worker()
    sender = DeclarationSender(pipe.settings)
    sender.open_night(night.opened)
    send_all(sender, night.declarations)
    sender.close()

    others = [d for d in night.declarations if d.ons_id != poisoned.ons_id]
    assert_exactly(pipe, night, others)
    assert_running(pipe)
    refused = [d for d in dead_letters(pipe) if d["key"] == night.election]
    assert len(refused) == 1, refused
    assert "InjectedFault" in refused[0]["reason"] and poisoned.ons_id in refused[0]["reason"]
    assert refused[0]["topic"] == pipe.settings.topic_declarations
    # The operator's notice for this election (web page, watch), from the sink.
    assert read_state(pipe.redis, night.election).refused == 1
    assert "could not count" in this_run_log(pipe.worker)


def test_a_failed_flush_stops_the_worker_without_a_commit_and_the_restart_counts_it(fault_pipeline, tmp_path):
    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-flush")
    trigger = tmp_path / "fail-the-next-flush"
    pipe.worker.kill()
    pipe.env = {**pipe.env, "TALLYROOM_FAULT_FLUSH_TRIGGER": str(trigger)}
    pipe.restart_worker()
    sender = DeclarationSender(pipe.settings)
    replay = ReplayInBackground(night, sender, paced(night, 30), max_gap=1.0)
    time.sleep(8)
    declared_before = read_state(pipe.redis, night.election).declared
    assert 0 < declared_before < 600, "the night was not under way when the flush failed: nothing was tested"
    trigger.touch()
    code = wait_for_exit(pipe.worker, 30)
    from tallyroom.streams.app import EXIT_WORKER_FAULT

    assert code == EXIT_WORKER_FAULT, this_run_log(pipe.worker)[-3000:]
    assert "cannot go on" in this_run_log(pipe.worker)

    # Nothing past an uncounted event was committed: every declaration below the committed
    # offset has its result on the results topic.
    committed = committed_offset(pipe.settings)
    below = [json.loads(r.value) for r in read_topic(pipe.settings, pipe.settings.topic_declarations, committed)]
    counted = {
        (u["seat"]["ons_id"], u["seat"]["revision"])
        for u in map(lambda r: json.loads(r.value), read_topic(pipe.settings, pipe.settings.topic_results))
        if u.get("seat") and u["election"] == night.election
    }
    uncounted = [
        (d["ons_id"], d["revision"])
        for d in below
        if d.get("kind") == "declaration" and (d["ons_id"], d["revision"]) not in counted
    ]
    assert uncounted == [], f"committed offset {committed} is past uncounted declarations {uncounted[:5]}"

    pipe.restart_worker()  # what `tallyroom serve` does for a worker that exits
    report = replay.join()
    sender.close()
    assert report.acknowledged == report.sent == 651 and not report.failures, report.failures[:3]
    assert_books_balance(pipe, night)
    print(f"\nflush failed with {declared_before} declared; committed offset then {committed}")


def test_a_last_record_lost_before_the_agent_is_found_and_counted_by_the_restarted_worker(fault_pipeline, tmp_path):
    """Faust can lose a fetched record on its way to the agent. With no record after it, no hole
    shows in the offsets the agent is handed: the worker's stall check finds it (streams.app.StallWatch)."""
    from tallyroom.streams.app import EXIT_WORKER_FAULT

    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-lost")
    trigger = tmp_path / "lose-the-next-record"
    pipe.worker.kill()
    pipe.env = {**pipe.env, "TALLYROOM_FAULT_LOSE_TRIGGER": str(trigger), "TALLYROOM_WORKER_STALL_CHECK_SECONDS": "2"}
    pipe.restart_worker()
    sender = DeclarationSender(pipe.settings)
    sender.open_night(night.opened)
    send_all(sender, night.declarations[:-1])
    wait_for_declared(pipe.redis, night.election, len(night.declarations) - 1, 240)
    stalled = pipe.worker
    trigger.touch()
    send_all(sender, night.declarations[-1:])  # lost, and nothing comes after it
    sender.close()
    started = time.monotonic()
    code = wait_for_exit(stalled, 60)
    found_after = time.monotonic() - started
    log = this_run_log(stalled)
    assert "lost on its way to the agent" in log, log[-3000:]
    assert code == EXIT_WORKER_FAULT, log[-3000:]
    assert "are in Kafka but never reached the worker, and no later record came" in log
    # The worker that the watcher starts in its place (as `tallyroom serve` would) is handed it.
    assert_books_balance(pipe, night)
    print(f"\nthe lost last record was found {found_after:.1f} s after it was sent")


def test_an_unreadable_stored_seat_is_quarantined_and_the_rest_and_the_next_election_are_exact(fault_pipeline):
    from kafka import KafkaProducer

    from tallyroom.streams.faust_compat import changelog_key

    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-poison")
    sender = DeclarationSender(pipe.settings)
    sender.open_night(night.opened)
    send_all(sender, night.declarations)
    wait_for_declared(pipe.redis, night.election, 650, 240)
    wait_until_caught_up(pipe.settings, timeout=240)
    pipe.worker.stop()

    # What a release with other rules might have stored: today's schema refuses it.
    poisoned = night.declarations[100]
    stored = json.loads(pipe.redis.get(ElectionKeys(night.election).seat(poisoned.ons_id)))
    stored.update(revision=2, candidates="not a list of candidates")
    producer = KafkaProducer(**pipe.settings.kafka_python_config())
    changelog = f"{pipe.settings.worker_id}-seats-changelog"
    written = producer.send(
        changelog,
        key=changelog_key(f"{night.election}/{poisoned.ons_id}"),
        value=json.dumps(stored).encode(),
        partition=0,
    ).get(timeout=30)
    producer.close()

    pipe.restart_worker()
    # A correction elsewhere makes the worker publish the election's rebuilt tally.
    corrected = night.declarations[200].model_copy(update={"revision": 2})
    second = load_night(NIGHT, "ge2024-faults-after-poison")
    sender.open_night(second.opened)
    send_all(sender, [corrected, *second.declarations])
    sender.close()

    others = [d for d in night.declarations if d.ons_id != poisoned.ons_id]
    # The tally's version is the sum of its seats' revisions, the quarantined one's included
    # (so that it never goes back): 649 seats, one of them now at revision 2, and revision 2 held.
    version = sum(d.revision for d in others) + (corrected.revision - 1) + stored["revision"]
    # Its alerts landed before the poisoning: only the figures are checked for this election.
    assert_exactly(pipe, night, [*others, corrected], version=version, alerts=False)
    assert_exactly(pipe, second, second.declarations)
    assert_running(pipe)
    quarantined = [d for d in dead_letters(pipe) if d["topic"] == changelog]
    assert quarantined, "the unreadable stored seat was not dead-lettered"
    assert (quarantined[0]["partition"], quarantined[0]["offset"]) == (0, written.offset)
    assert quarantined[0]["key"] == night.election and "candidates" in quarantined[0]["reason"]
    assert "quarantined the stored seats record" in this_run_log(pipe.worker)
    assert read_state(pipe.redis, night.election).refused == 1  # once, however often it was quarantined
    assert read_state(pipe.redis, second.election).refused == 0


def test_redis_sigkilled_mid_night_comes_back_with_its_data_and_the_books_balance(fault_pipeline, fault_stack):
    import os
    import signal

    pipe = fault_pipeline
    night = load_night(NIGHT, "ge2024-faults-redis-kill")
    sender = DeclarationSender(pipe.settings)
    replay = ReplayInBackground(night, sender, paced(night, 40), max_gap=1.0)
    time.sleep(12)
    before = read_state(pipe.redis, night.election)
    assert 0 < before.declared < 650, "the night was not under way when Redis was killed: nothing was tested"
    (redis_status,) = [s for s in local_stack.status(fault_stack) if s.name == "redis"]
    os.kill(redis_status.pid, signal.SIGKILL)
    time.sleep(3)
    local_stack.redis_up(fault_stack)
    # The append-only file brought the night back (all but, at most, its last second of writes).
    after = read_state(pipe.redis, night.election)
    assert after.declared >= before.declared * 0.5, (before.declared, after.declared)
    assert pipe.redis.xlen(ElectionKeys(night.election).alerts) > 0
    report = replay.join()
    sender.close()
    assert report.acknowledged == report.sent == 651 and not report.failures, report.failures[:3]

    assert_running(pipe)
    assert_books_balance(pipe, night)
    assert "Redis restarted" in this_run_log(pipe.sink), "the sink never noticed the restart"
    print(f"\nRedis SIGKILLed with {before.declared} declared; {after.declared} there on its restart")
