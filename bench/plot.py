"""One PNG of a bench run: latency, landing curves, throughput against Kafka, worker memory."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def plot(results: dict, curves: dict[str, list[tuple[float, int]]], path: Path) -> Path:
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(
        f"Tallyroom bench {results['run_id']}: {results['night']['seats']:,} seats, "
        f"{results['night']['declarations']:,} declarations ({results['machine']['cpus']} CPUs)"
    )
    _latency(axes[0][0], results)
    _landing(axes[0][1], curves)
    _throughput(axes[1][0], results)
    _memory(axes[1][1], results)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency(ax, results: dict) -> None:
    loads = results["loads"]
    labels = [load["label"] for load in loads]
    width = 0.25
    for offset, (key, name) in enumerate((("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))):
        values = [load["latency"][key] for load in loads]
        ax.bar([i + (offset - 1) * width for i in range(len(loads))], values, width, label=name)
    kafka = results.get("kafka", {}).get("end_to_end_latency")
    if kafka:
        ax.axhline(
            kafka["p99_ms"], color="black", linestyle="--", label=f"Kafka EndToEndLatency p99 ({kafka['p99_ms']:g} ms)"
        )
    ax.axhline(100, color="red", linestyle=":", label="target p99 at 500/s: 100 ms")
    ax.set_xticks(range(len(loads)), labels)
    ax.set_yscale("log")
    ax.set_ylabel("produce → Redis latency (ms, log)")
    ax.set_title("Latency by load")
    ax.legend(fontsize=8)


def _landing(ax, curves: dict[str, list[tuple[float, int]]]) -> None:
    for label, curve in curves.items():
        if curve:
            ax.plot([t for t, _ in curve], [v for _, v in curve], label=label)
    ax.set_xlabel("seconds since the first send")
    ax.set_ylabel("declarations landed in Redis")
    ax.set_title("Landing curves")
    ax.legend(fontsize=8)


def _throughput(ax, results: dict) -> None:
    bars = {load["label"]: load["throughput_per_s"] for load in results["loads"]}
    references = results.get("references", {})
    if "records_per_s" in references.get("noop_faust", {}):
        bars["no-op Faust agent"] = references["noop_faust"]["records_per_s"]
    if "records_per_s" in references.get("bench_producer_alone", {}):
        bars["bench producer alone"] = references["bench_producer_alone"]["records_per_s"]
    kafka = results.get("kafka", {})
    if "producer_performance" in kafka:
        bars["Kafka producer"] = kafka["producer_performance"]["records_per_s"]
    if "consumer_performance" in kafka:
        bars["Kafka consumer"] = kafka["consumer_performance"]["records_per_s"]
    references = {"no-op Faust agent", "bench producer alone"}
    colours = [
        "tab:blue" if i < len(results["loads"]) else "tab:orange" if label in references else "tab:gray"
        for i, label in enumerate(bars)
    ]
    ax.bar(list(bars), list(bars.values()), color=colours)
    ax.axhline(4_000, color="red", linestyle=":", label="target: 4,000/s end to end")
    ax.set_yscale("log")
    ax.set_ylabel("records per second (log)")
    ax.set_title("Throughput: Tallyroom end to end vs a no-op Faust agent and Kafka alone")
    ax.tick_params(axis="x", labelrotation=20)
    ax.legend(fontsize=8)


def _memory(ax, results: dict) -> None:
    samples = results["worker"]["memory_samples"]
    ax.plot([s["events"] for s in samples], [s["rss_mb"] for s in samples], marker="o", label="worker RSS")
    ax.plot([s["events"] for s in samples], [s["hwm_mb"] for s in samples], linestyle="--", label="worker peak (VmHWM)")
    ax.axhline(300, color="red", linestyle=":", label="target: 300 MB")
    ax.set_xlabel("declarations the worker has counted")
    ax.set_ylabel("MB")
    ax.set_title("Worker memory")
    ax.legend(fontsize=8)
