"""Faults on a three-broker cluster: nothing lost and nothing doubled when a broker dies.

Each fault meets two loads at once, each into an election of its own: the 2024 night
replayed at pace (checked against the published result: 650 seats, exact seats and votes,
every alert of the night once), and a sustained synthetic load of 500 declarations/s from
the bench's night generator (checked against the pure count of exactly what was sent:
seats, votes, tally version, every alert once). Both at once, not one after the other:
a broker restart is a JVM start of 20-40 s, and each fault's restarts are paid once.

The producers use acks=all and idempotence; the topics have three replicas and
``min.insync.replicas`` 2, so a write acknowledged before a broker dies is on another
broker too.

- the leader of the declarations partition SIGKILLed (no controlled shutdown) and restarted;
- each broker restarted in turn, waiting for every replica to be in sync before the next
  (a rolling restart, as an upgrade does it);
- the worker SIGKILLed while the leadership of a dead broker's partitions is being moved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import pytest

from tallyroom.bench.load import Payload, offer, payloads
from tallyroom.bench.night import NightSpec, SyntheticNight
from tallyroom.consumers.reader import read_state, wait_for_declared
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.nights import Night, load_night
from tallyroom.producers.replay import ReplayReport
from tallyroom.schemas import Declaration
from tallyroom.settings import Settings
from tallyroom.streams.count import Count
from tallyroom.streams.rules import RuleConfig
from tests.cluster.conftest import Cluster
from tests.e2e.test_night import NIGHT
from tests.faults.test_faults import (
    ReplayInBackground,
    assert_books_balance,
    assert_each_alert_once,
    assert_running,
    paced,
    recounted_seats,
)

pytestmark = [pytest.mark.faults, pytest.mark.cluster, pytest.mark.slow]

R = TypeVar("R")

RATE = 500  # declarations per second, offered open-loop (bench.load.offer)
SYNTHETIC_SEATS = 2000
# The bulk of the 2024 night paced over this: its 150th seat lands ~17 s in, the kill then and the
# election after it (up to 9 s) while the rest of the night streams.
NIGHT_SECONDS = 30
PART_SECONDS = 15  # one part of the 2024 night, when it is streamed in parts
SYNTHETIC_SECONDS = 20  # the synthetic load of a kill: 10,000 declarations at RATE, the election within it
# One part of the synthetic load per broker of a rolling restart: 5,000 declarations at RATE, still
# streaming when its broker goes down (a restart then takes 20-40 s: the part is over before it ends).
ROLLING_PART_SECONDS = 10
KILLED_FOR = 5.0  # seconds a SIGKILLed broker stays down once another leads


# ------------------------------------------------------------------------------- loads


class _Sends:
    """``offer`` sends through a ``DeclarationSender``, which keeps every future to check."""

    def __init__(self, sender: DeclarationSender):
        self.sender = sender

    def send(self, topic: str, key: bytes, value: bytes):
        return self.sender.send_raw(key, value)


@dataclass
class Expected:
    """What Redis must hold once the load has landed: seats declared, the count's snapshot, the alerts."""

    declared: int
    snapshot: Any
    alerts: list


class InThread(Generic[R]):
    """``compute()`` in a thread of its own, started at once; ``result()`` waits for it (and raises its error)."""

    def __init__(self, compute: Callable[[], R]):
        self._result: R | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(compute,), daemon=True)
        self._thread.start()

    def _run(self, compute: Callable[[], R]) -> None:
        try:
            self._result = compute()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by result()
            self._error = exc

    def result(self, timeout: float = 300) -> R:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout:.0f}s"
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


@dataclass
class SyntheticLoad:
    """The bench's synthetic night offered at ``RATE`` per second, in parts of ``seconds`` each
    streamed one after another (``stream_next``), so that each fault meets a part in flight.

    Seats then corrections of them (each a later revision), so the tally version counts
    the declarations that landed. The expected books are the pure count of what was sent.
    """

    night: SyntheticNight
    sender: DeclarationSender
    settings: Settings
    seconds: float
    parts: int
    sent: int = 0
    streamed: int = 0
    error: BaseException | None = None
    offered: float = 0.0  # seconds spent offering
    recount: InThread[Expected] | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls, pipe, election: str, seconds: float, parts: int = 1) -> SyntheticLoad:
        spec = NightSpec(election, seats=SYNTHETIC_SEATS, declarations=int(RATE * seconds * parts))
        load = cls(SyntheticNight(spec), DeclarationSender(pipe.settings), pipe.settings, seconds, parts)
        load.sender.open_night(load.night.opened)
        acked, failures = load.sender.flush()
        assert acked == 1 and not failures, failures
        load.stream_next()
        return load

    def stream_next(self) -> None:
        """Start streaming the next part, the one before having been sent."""
        self._join()
        end = int(RATE * self.seconds * (self.streamed + 1))
        self.streamed += 1
        self._thread = threading.Thread(target=self._run, args=(end,), daemon=True)
        self._thread.start()

    def _run(self, end: int) -> None:
        try:
            # Serialised before the clock starts; offered open-loop, so a stall is caught up.
            items: list[Payload] = payloads(self.night.declarations(self.sent, end))
            started = time.monotonic()
            offer(_Sends(self.sender), self.sender.topic, items, RATE)  # type: ignore[arg-type]
            self.offered += time.monotonic() - started
            self.sent = end
            if self.streamed == self.parts:
                # The pure count of it all (13 s of CPU for 30,000 declarations), while the fault
                # plays out and the worker catches up, once nothing more is offered.
                self.recount = InThread(self.expected)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread by finish()
            self.error = exc

    def streaming(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(self.seconds * 4 + 60)
            assert not self._thread.is_alive(), "a part of the load is still sending"
        if self.error is not None:
            raise self.error

    @property
    def election(self) -> str:
        return self.night.spec.election

    def finish(self) -> str:
        assert self.streamed == self.parts, "parts of the load never sent"
        self._join()
        pending = len(self.sender.futures)
        acked, failures = self.sender.flush()
        self.sender.close()
        assert not failures and acked == pending, failures[:3]
        return (
            f"{self.sent:,} declarations offered in {self.offered:.0f} s ({self.sent / self.offered:.0f}/s), "
            "every one acknowledged"
        )

    def expected(self) -> Expected:
        """The pure count of exactly what was sent: what Redis must hold."""
        declarations = list(self.night.declarations(0, self.sent))
        count = Count(RuleConfig.from_settings(self.settings))
        count.open_night(self.night.opened)
        alerts = [alert for d in declarations for alert in count.declare(d).alerts]
        return Expected(len({d.ons_id for d in declarations}), count.snapshot(self.election), alerts)

    def assert_exact(self, pipe) -> None:
        assert self.recount is not None, "finish() first"
        started = time.monotonic()
        version = self.night.expected_version(self.sent)
        seats = len({event.seat for event in self.night.schedule[: self.sent]})
        wait_for_declared(pipe.redis, self.election, seats, 300, version=version)
        landed = time.monotonic()
        wait_until_caught_up(pipe.settings, timeout=300)
        caught_up = time.monotonic()

        expected = self.recount.result()
        print(
            f"\n{self.election}: landed {landed - started:.1f} s after the sends were flushed, caught up "
            f"{caught_up - landed:.1f} s later, recount ready {time.monotonic() - caught_up:.1f} s after that"
        )
        state = read_state(pipe.redis, self.election)
        assert state.declared == expected.declared
        assert state.tally is not None and state.tally.version == version
        assert state.seats == {p: t.seats for p, t in expected.snapshot.parties.items() if t.seats}
        assert state.votes == {p: t.votes for p, t in expected.snapshot.parties.items() if t.votes}
        assert_each_alert_once(pipe, self.election, expected.alerts)


@dataclass
class NightReplay:
    """The 2024 night replayed at pace into an election of its own, whole or in parts
    streamed one after another (``stream_next``), so that each fault meets a part in flight."""

    night: Night
    sender: DeclarationSender
    parts: list[list[Declaration]]
    seconds: float
    replays: list[ReplayInBackground] = field(default_factory=list)

    @classmethod
    def start(cls, pipe, election: str, seconds: float, parts: int = 1) -> NightReplay:
        night = load_night(NIGHT, election)
        size = -(-len(night.declarations) // parts)
        slices = [night.declarations[i : i + size] for i in range(0, len(night.declarations), size)]
        replay = cls(night, DeclarationSender(pipe.settings), slices, seconds)
        replay.stream_next()
        return replay

    def stream_next(self) -> None:
        """Start streaming the next part, the one before having been sent."""
        if self.replays:
            self._join(self.replays[-1])
        declarations = self.parts[len(self.replays)]
        part = replace(self.night, declarations=declarations)
        if len(self.parts) == 1:
            speed = paced(self.night, self.seconds)
        else:  # each part's own span of the night over PART_SECONDS (the long tail capped by max_gap)
            span = (declarations[-1].declared_at - declarations[0].declared_at).total_seconds()
            speed = max(span / PART_SECONDS, 1.0)
        self.replays.append(ReplayInBackground(part, self.sender, speed, max_gap=1.0))

    def streaming(self) -> bool:
        return self.replays[-1].running()

    @staticmethod
    def _join(replay: ReplayInBackground) -> ReplayReport:
        report = replay.join()
        assert report.acknowledged == report.sent and not report.failures, report.failures[:3]
        return report

    @property
    def election(self) -> str:
        return self.night.election

    def finish(self) -> str:
        assert len(self.replays) == len(self.parts), "parts of the night never sent"
        self._join(self.replays[-1])
        self.sender.close()
        seconds = sum(r.report.seconds for r in self.replays if r.report)
        return f"{len(self.night.declarations)} declarations in {seconds:.0f} s, every one acknowledged"

    def assert_exact(self, pipe) -> None:
        assert_books_balance(pipe, self.night)


@dataclass
class Loads:
    """The 2024 night and the synthetic load, streaming at the same time into elections of their own."""

    night: NightReplay
    synthetic: SyntheticLoad

    @classmethod
    def start(
        cls, pipe, name: str, parts: int = 1, part_seconds: float = SYNTHETIC_SECONDS, under_way: bool = True
    ) -> Loads:
        """The 2024 night, its bulk paced over ``NIGHT_SECONDS`` (or in ``parts`` streamed at full speed
        one at a time), and the synthetic load at ``RATE``: ``parts`` of ``part_seconds`` each.

        With ``under_way``, the synthetic load starts once the night is well under way, so that a
        fault that follows meets both streaming (the night's 150th seat lands ~17 s in; the
        synthetic load's 1,000th declaration 2 s after it starts).
        """
        night = NightReplay.start(pipe, f"ge2024-cluster-{name}", NIGHT_SECONDS, parts)
        if under_way:
            well_under_way(pipe, night)
        return cls(night, SyntheticLoad.start(pipe, f"synthetic-cluster-{name}", part_seconds, parts))

    @property
    def each(self) -> tuple[NightReplay, SyntheticLoad]:
        return self.night, self.synthetic

    def stream_next(self) -> None:
        for load in self.each:
            load.stream_next()

    def finish(self) -> str:
        return "; ".join(f"{load.election}: {load.finish()}" for load in self.each)

    def assert_exact(self, pipe) -> None:
        for load in self.each:
            load.assert_exact(pipe)

    def declared(self, pipe) -> str:
        return ", ".join(f"{read_state(pipe.redis, load.election).declared} of {load.election}" for load in self.each)

    def recounted(self, pipe) -> str:
        return ", ".join(f"{recounted_seats(pipe.settings, load.election)} of {load.election}" for load in self.each)


def well_under_way(pipe, load, timeout: float = 90) -> int:
    """Wait until a good part of the load has landed (a fault at the night's first seats tests little)."""
    enough = 150 if isinstance(load, NightReplay) else 2 * RATE
    deadline = time.monotonic() + timeout
    while read_state(pipe.redis, load.election).declared < enough and time.monotonic() < deadline:
        time.sleep(0.2)
    return under_way(pipe, load)


def both_under_way(pipe, loads: Loads) -> str:
    for load in loads.each:
        well_under_way(pipe, load)
    return loads.declared(pipe)


def landing(pipe, load, timeout: float = 90) -> None:
    """Wait until the part being streamed lands: the tally's version (each declaration adds one) grows."""

    def version() -> int:
        tally = read_state(pipe.redis, load.election).tally
        return tally.version if tally else 0

    before, deadline = version(), time.monotonic() + timeout
    while version() <= before:
        assert time.monotonic() < deadline, f"{load.election}: nothing landed in {timeout:.0f}s"
        time.sleep(0.2)


def under_way(pipe, load) -> int:
    declared = read_state(pipe.redis, load.election).declared
    still_to_come = isinstance(load, SyntheticLoad) or declared < 650
    assert declared > 0 and still_to_come, (
        f"{load.election}: {declared} declared when the fault came: the load was not under way, nothing was tested"
    )
    return declared


def topics_of(pipe) -> list[str]:
    s = pipe.settings
    changelogs = [f"{s.worker_id}-{table}-changelog" for table in ("seats", "nights")]
    return [s.topic_declarations, s.topic_results, s.topic_alerts, s.topic_dead_letters, *changelogs]


def timed(started: float) -> Callable[[], str]:
    return lambda: f"{time.monotonic() - started:.0f} s"


# ------------------------------------------------------------------------------- tests


def test_every_topic_and_changelog_has_three_replicas_two_in_sync(cluster_pipeline, cluster: Cluster):
    """What the faults below rely on: ``ensure_topics`` and the worker's changelogs, on three brokers."""
    topics = [*topics_of(cluster_pipeline), "__consumer_offsets"]
    partitions = cluster.partitions(topics)
    assert {p["topic"] for p in partitions} == set(topics)
    assert {len(p["replica_nodes"]) for p in partitions} == {3}
    cluster.wait_in_sync(topics)
    configs = cluster.topic_configs(topics_of(cluster_pipeline))
    assert {t: c.get("min.insync.replicas") for t, c in configs.items()} == dict.fromkeys(configs, "2")
    s = cluster_pipeline.settings
    assert configs[s.topic_declarations]["retention.ms"] == configs[s.topic_results]["retention.ms"] == "-1"
    assert {configs[f"{s.worker_id}-{t}-changelog"]["cleanup.policy"] for t in ("seats", "nights")} == {"compact"}


def test_the_declarations_leader_sigkilled_and_restarted_loses_and_doubles_nothing(cluster_pipeline, cluster: Cluster):
    pipe = cluster_pipeline
    at = timed(time.monotonic())
    loads = Loads.start(pipe, "leader")
    declared = both_under_way(pipe, loads)
    leader = cluster.leader(pipe.settings.topic_declarations)
    cluster.kill(leader)
    killed_at = at()
    new_leader, elected_in = cluster.wait_for_new_leader(pipe.settings.topic_declarations, leader)
    time.sleep(KILLED_FOR)
    cluster.start(leader)
    back_at = at()
    sent = loads.finish()
    assert_running(pipe)
    loads.assert_exact(pipe)
    in_sync = cluster.wait_in_sync(topics_of(pipe))
    print(
        f"\nleader kafka-{leader} SIGKILLed at {killed_at} with {declared} declared, kafka-{new_leader} "
        f"elected {elected_in:.1f} s later; answering again at {back_at}; {sent}; books balanced at {at()}, "
        f"replicas in sync {in_sync:.0f} s later; seats re-counted: {loads.recounted(pipe)}"
    )


def test_a_rolling_restart_of_every_broker_loses_and_doubles_nothing(cluster_pipeline, cluster: Cluster):
    pipe = cluster_pipeline
    at = timed(time.monotonic())
    # Both loads in one part per broker: each broker goes down while its parts stream (a restart
    # takes 20-120 s on this shared machine, longer than a part).
    parts = len(cluster.nodes)
    loads = Loads.start(pipe, "rolling", parts=parts, part_seconds=ROLLING_PART_SECONDS, under_way=False)
    steps = []
    for index, node in enumerate(cluster.nodes):
        if index:
            loads.stream_next()
        for load in loads.each:
            landing(pipe, load)
            assert load.streaming(), f"{load.election}: part {index + 1} was sent before kafka-{node} went down"
        declared = loads.declared(pipe)
        cluster.stop(node)
        cluster.start(node)
        cluster.wait_in_sync([*topics_of(pipe), "__consumer_offsets"])  # before the next goes
        steps.append(f"kafka-{node} at {declared} declared, in sync by {at()}")
    sent = loads.finish()
    assert_running(pipe)
    loads.assert_exact(pipe)
    print(
        f"\nrestarted {'; '.join(steps)}; {sent}; books balanced at {at()}; seats re-counted: {loads.recounted(pipe)}"
    )


def test_the_worker_sigkilled_during_a_leader_election_loses_and_doubles_nothing(cluster_pipeline, cluster: Cluster):
    pipe = cluster_pipeline
    at = timed(time.monotonic())
    loads = Loads.start(pipe, "worker")
    declared = both_under_way(pipe, loads)
    topic = pipe.settings.topic_declarations
    leader = cluster.leader(topic)
    cluster.kill(leader)
    # The controller moves the dead broker's leaderships once its session lapses (up to 9 s,
    # broker.session.timeout.ms): the worker dies in the middle of that.
    time.sleep(1)
    pipe.worker.kill()
    still_led_by_the_dead = cluster.leader(topic) == leader
    # Started once: a worker starting while the election settles retries its start-up (Faust's
    # topic declarations met aiokafka's NodeNotReadyError on the dead broker and exited 1, in CI).
    pipe.restart_worker()
    restarted_at = at()
    # The dead broker comes back (a JVM start, 10-20 s) while the rest of the loads land and are checked.
    broker_back = InThread(lambda: cluster.start(leader))
    sent = loads.finish()
    assert_running(pipe)
    loads.assert_exact(pipe)
    broker_back.result()
    print(
        f"\nkafka-{leader} SIGKILLed with {declared} declared, the worker 1 s later "
        f"(the partition {'still' if still_led_by_the_dead else 'no longer'} led by the dead broker then), "
        f"a new worker ready at {restarted_at}; {sent}; books balanced at {at()}; "
        f"seats re-counted: {loads.recounted(pipe)}"
    )
