"""Waiting for a night: done when every seat has landed, failed early once the pipeline stops moving."""

from __future__ import annotations

import pytest

from tallyroom.lag import PipelineReading, PipelineStalled, wait_for_night


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def readings(*items: PipelineReading):
    it = iter(items)
    last = [items[0]]

    def read() -> PipelineReading:
        last[0] = next(it, last[0])  # the last reading repeats: nothing moves any more
        return last[0]

    return read


def reading(declared: int, worker_lag: int = 0, sink_lag: int = 0, written: int = 0) -> PipelineReading:
    return PipelineReading((declared, declared), written, worker_lag, sink_lag)


def test_returns_once_every_seat_has_landed():
    clock = Clock()
    done = wait_for_night(readings(reading(0, 5), reading(3, 2), reading(5)), 5, 300, 60, clock, clock.sleep)
    assert done.landed[0] == 5 and clock.now < 5


def test_a_worker_that_stopped_counting_fails_at_the_stall_timeout_not_the_timeout():
    clock = Clock()
    with pytest.raises(PipelineStalled, match=r"worker has stopped counting: 1950 declaration\(s\) wait"):
        wait_for_night(readings(reading(3250, 1950)), 5207, 300, 60, clock, clock.sleep)
    assert 60 <= clock.now < 62


def test_a_stopped_sink_and_refused_seats_are_told_apart():
    clock = Clock()
    with pytest.raises(PipelineStalled, match="the sink has stopped"):
        wait_for_night(readings(reading(10, 0, 4)), 650, 300, 20, clock, clock.sleep)
    with pytest.raises(PipelineStalled, match="649 of 650 seats landed .*tallyroom:dead-letters"):
        other = Clock()
        wait_for_night(readings(reading(649)), 650, 300, 20, other, other.sleep)


def test_slow_but_moving_is_not_a_stall():
    clock = Clock()
    steps = [reading(0, 100, written=0)] + [reading(n // 200, 100 - n // 200, written=n) for n in range(1, 400)]
    steps.append(reading(5))
    done = wait_for_night(readings(*steps), 5, 1000, 2, clock, clock.sleep)
    assert done.landed[0] == 5 and clock.now > 2  # ran well past the stall timeout while records kept coming


def test_the_overall_timeout_still_holds():
    clock = Clock()
    steps = [reading(0, 10, written=n) for n in range(1000)]
    with pytest.raises(TimeoutError, match="0 of 5 seats landed"):
        wait_for_night(readings(*steps), 5, 30, 60, clock, clock.sleep)


class FakeProbe:
    """Answers lag_by_partition from a table the test changes; raises while ``down``."""

    made = 0

    def __init__(self, table: dict, down: list[bool]):
        FakeProbe.made += 1
        self.table, self.down, self.closed = table, down, False

    def lag_by_partition(self, group: str, topic: str) -> dict[int, int]:
        if self.down[0]:
            raise ConnectionError("broker away")
        return dict(self.table[(group, topic)])

    def close(self) -> None:
        self.closed = True


def test_the_lag_sampler_keeps_one_probe_and_reports_each_partition():
    from tallyroom.lag import LagSampler
    from tallyroom.metrics import HasRegistry, add_lag, worker_metrics
    from tallyroom.settings import Settings

    table = {("w", "decl"): {0: 5, 1: 0}, ("s", "results"): {0: 2}}
    down = [False]
    clock = Clock()
    FakeProbe.made = 0
    sampler = LagSampler(
        Settings(_env_file=None),
        [("w", "decl"), ("s", "results")],
        probe_factory=lambda _: FakeProbe(table, down),  # type: ignore[arg-type,return-value]
        clock=clock,
    )
    metrics: HasRegistry = worker_metrics()
    add_lag(metrics, sampler.latest, clock)
    get = metrics.registry.get_sample_value
    assert get("tallyroom_consumer_lag", {"group": "w", "topic": "decl", "partition": "0"}) is None  # no sample yet

    sampler.sample()
    table[("w", "decl")] = {0: 1, 1: 0}
    assert get("tallyroom_consumer_lag", {"group": "w", "topic": "decl", "partition": "0"}) == 5  # read from the sample
    sampler.sample()
    assert get("tallyroom_consumer_lag", {"group": "w", "topic": "decl", "partition": "0"}) == 1
    assert get("tallyroom_consumer_lag", {"group": "w", "topic": "decl", "partition": "1"}) == 0
    assert get("tallyroom_consumer_lag", {"group": "s", "topic": "results", "partition": "0"}) == 2
    assert FakeProbe.made == 1  # one client kept open, not one per sample or scrape

    down[0] = True
    clock.now += 12
    assert sampler.sample() is None
    assert get("tallyroom_consumer_lag", {"group": "w", "topic": "decl", "partition": "0"}) == 1  # last sample kept
    assert get("tallyroom_consumer_lag_sampled_seconds") == 12  # ... and seen to age
    down[0] = False
    sampler.sample()
    assert FakeProbe.made == 2  # made again after the broker came back
    assert get("tallyroom_consumer_lag_sampled_seconds") == 0
