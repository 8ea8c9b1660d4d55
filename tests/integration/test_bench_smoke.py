"""The benchmark at a tiny size, on the real stack, so that it cannot rot.

Figures are not judged here (benchmarks print figures; tests never assert
timings): only that a run completes, counts every declaration, and writes the
JSON and the PNG with the expected shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tallyroom.bench import BenchOptions, run
from tests.integration.conftest import stack  # noqa: F401  (the real stack)

pytestmark = pytest.mark.integration

# 11, 12, 15 (and 14 via TALLYROOM_TEST_REDIS_DB) are other suites'; 13 is `tallyroom bench`'s default
BENCH_REDIS_DB = 10
NIGHT = Path(__file__).resolve().parents[2] / "data" / "ge2024"


@pytest.fixture(scope="module")
def results(stack, tmp_path_factory) -> dict:  # noqa: F811  (the fixture imported above)
    out = tmp_path_factory.mktemp("bench")
    options = BenchOptions(
        seats=200,
        declarations=400,
        rates=(None,),
        out=out,
        night=NIGHT,
        kafka_records=2_000,
        e2e_messages=100,
        redis_db=BENCH_REDIS_DB,
        timeout=120,
    )
    returned = run(stack, options)
    written = json.loads(Path(returned["files"]["json"]).read_text())
    assert written["run_id"] == returned["run_id"]
    return written


def test_every_declaration_landed(results):
    synthetic, past = results["loads"]
    assert (synthetic["label"], past["label"]) == ("max", "ge2024 max")
    assert synthetic["declarations"] == synthetic["landed"] == 400
    assert past["declarations"] == past["landed"] == 650
    assert synthetic["complete"] and past["complete"]


def test_latencies_and_rates_are_sane(results):
    for load in results["loads"]:
        latency = load["latency"]
        assert latency["count"] == load["landed"]
        assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
        assert load["throughput_per_s"] > 0
        assert load["seconds_to_last_landing"] > 0
        curve = load["landed_curve"]
        assert curve[-1][1] == load["landed"]
        assert [v for _, v in curve] == sorted(v for _, v in curve)


def test_each_landed_declarations_latency_is_split_at_the_workers_send(results):
    for load in results["loads"]:
        stages = load["latency_stages"]
        assert stages["matched"] == load["landed"], load["label"]  # every result found by its provenance
        to_worker, to_redis = stages["to_worker_send"], stages["worker_send_to_redis"]
        assert to_worker["count"] == to_redis["count"] == load["landed"]
        # The worker's timestamps are whole milliseconds: each stage may read up to 1 ms short.
        assert to_worker["p50_ms"] > -1 and to_redis["p50_ms"] > -1
        assert to_worker["mean_ms"] + to_redis["mean_ms"] == pytest.approx(load["latency"]["mean_ms"], abs=0.01)


def test_kafka_tools_ran_on_the_same_broker(results):
    kafka = results["kafka"]
    assert kafka["producer_performance"]["records"] == 2_000
    assert kafka["producer_performance"]["records_per_s"] > 0
    assert kafka["consumer_performance"]["records"] == 2_000
    assert kafka["end_to_end_latency"]["messages"] == 100
    assert kafka["end_to_end_latency"]["p99_ms"] >= kafka["end_to_end_latency"]["p50_ms"] >= 0
    assert results["ratios"]["throughput_vs_kafka_producer"] > 0


def test_references_ran_on_the_same_broker(results):
    references = results["references"]
    assert references["records"] == 400
    assert references["bench_producer_alone"]["records_per_s"] > 0
    noop = references["noop_faust"]
    assert noop["records"] == 400 and noop["records_per_s"] > 0 and noop["cpu_ms_per_record"] > 0
    assert results["ratios"]["throughput_vs_noop_faust"] > 0


def test_worker_memory_and_targets_reported(results):
    worker = results["worker"]
    assert worker["events_counted"] == 400 + 650
    assert [s["after"] for s in worker["memory_samples"]] == ["start", "max", "ge2024 max"]
    assert all(s["rss_mb"] > 10 and s["hwm_mb"] >= s["rss_mb"] for s in worker["memory_samples"])
    assert set(results["targets"]) == {
        "throughput",
        "p99_at_200_per_s",
        "p99_at_500_per_s",
        "p99_at_2000_per_s",
        "p99_vs_kafka",
        "worker_cpu_at_max",
        "sink_cpu_at_max",
        "past_night_at_max",
        "past_night_at_max_fast",
        "worker_memory",
    }
    assert all(isinstance(t["met"], bool) for t in results["targets"].values())


def test_png_written(results):
    png = Path(results["files"]["png"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
