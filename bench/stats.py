"""Figures from timestamps: pure functions, no I/O.

A load run yields two series on the same monotonic clock (CLOCK_MONOTONIC is
system-wide, so the bench process and its Redis probe process agree):

- ``sent_at[i]``: when declaration ``i`` was handed to the producer;
- ``trace``: (time, version) each time the probe saw the election's tally
  version in Redis change. Declarations are counted in send order and each one
  adds exactly 1 to the version (consecutive revisions), so declaration ``i``
  has landed once the version is at least ``i + 1``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

Trace = Sequence[tuple[float, int]]


def landing_times(count: int, trace: Trace) -> list[float | None]:
    """When each of the first ``count`` declarations was first seen landed (None: never)."""
    landed: list[float | None] = [None] * count
    done = 0
    for seen_at, version in trace:
        upto = min(version, count)
        while done < upto:
            landed[done] = seen_at
            done += 1
    return landed


def latencies_ms(sent_at: Sequence[float], landed_at: Sequence[float | None]) -> list[float]:
    """Produce-to-Redis latency of every declaration that landed, in milliseconds."""
    return [(landed - sent) * 1000 for sent, landed in zip(sent_at, landed_at) if landed is not None]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in 0..100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    if not values_ms:
        return {
            "count": 0,
            "p50_ms": math.nan,
            "p95_ms": math.nan,
            "p99_ms": math.nan,
            "max_ms": math.nan,
            "mean_ms": math.nan,
        }
    return {
        "count": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 3),
        "p95_ms": round(percentile(values_ms, 95), 3),
        "p99_ms": round(percentile(values_ms, 99), 3),
        "max_ms": round(max(values_ms), 3),
        "mean_ms": round(sum(values_ms) / len(values_ms), 3),
    }


def end_to_end_rate(sent_at: Sequence[float], landed_at: Sequence[float | None]) -> float:
    """Declarations landed per second, from the first send to the last landing."""
    landed = [t for t in landed_at if t is not None]
    if not landed or not sent_at:
        return 0.0
    span = max(landed) - sent_at[0]
    return len(landed) / span if span > 0 else math.inf


def sustained_rate(landed_at: Sequence[float | None], low: float = 0.1, high: float = 0.9) -> float:
    """Landing rate between the ``low`` and ``high`` fractions of the declarations:
    the steady state, without start-up and the tail."""
    landed = [t for t in landed_at if t is not None]
    if len(landed) < 10:
        return math.nan
    first, last = int(len(landed) * low), int(len(landed) * high) - 1
    span = landed[last] - landed[first]
    return (last - first) / span if span > 0 else math.inf


def rate_series(trace: Trace, start: float, bucket: float = 1.0) -> list[tuple[float, float]]:
    """(seconds since ``start``, declarations landed per second) in ``bucket``-second steps, for plots."""
    if not trace:
        return []
    series = []
    end = trace[-1][0]
    times = [t for t, _ in trace]
    previous = 0
    edge = start + bucket
    while edge <= end + bucket:
        index = bisect_left(times, edge) - 1
        version = trace[index][1] if index >= 0 else 0
        series.append((round(edge - start, 3), (version - previous) / bucket))
        previous = version
        edge += bucket
    return series


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator or math.isnan(numerator) or math.isnan(denominator):
        return None
    return round(numerator / denominator, 4)
