"""Kafka's own performance tools, run on the same broker as the limit Tallyroom is held to.

``EndToEndLatency`` (produce one record, wait until a consumer has it, repeat),
``ProducerPerformance`` and ``ConsumerPerformance``, from the broker's jars
(``tallyroom.stack.kafka_classpath``). The parsers are pure; ``run_*`` start a JVM.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tallyroom.settings import Settings
from tallyroom.stack import kafka_classpath

TOOLS = "org.apache.kafka.tools"
LOG_CONFIG = Path(__file__).with_name("tools-log4j2.properties")
TOOL_TIMEOUT = 600


class ToolError(RuntimeError):
    pass


def command(settings: Settings, tool: str, *args: str) -> list[str]:
    return [
        "java",
        "-Xmx512m",
        f"-Dlog4j2.configurationFile={LOG_CONFIG}",
        "-cp",
        kafka_classpath(settings),
        f"{TOOLS}.{tool}",
        *args,
    ]


def _run(settings: Settings, tool: str, *args: str) -> str:
    done = subprocess.run(command(settings, tool, *args), capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    if done.returncode != 0:
        raise ToolError(f"{tool} exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


# --- parsers ---------------------------------------------------------------------------------

_E2E_AVG = re.compile(r"Avg latency:\s*([\d.]+)\s*ms")
_E2E_PERCENTILES = re.compile(r"Percentiles:\s*50th\s*=\s*([\d.]+),\s*99th\s*=\s*([\d.]+),\s*99\.9th\s*=\s*([\d.]+)")
_PRODUCER = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th"
)


def parse_end_to_end(output: str) -> dict:
    """``Avg latency: 8.29 ms`` and ``Percentiles: 50th = 5, 99th = 31, 99.9th = 302`` (whole ms)."""
    avg, pct = _E2E_AVG.search(output), _E2E_PERCENTILES.search(output)
    if not avg or not pct:
        raise ToolError(f"EndToEndLatency printed no latency summary:\n{output[-2000:]}")
    return {
        "avg_ms": float(avg.group(1)),
        "p50_ms": float(pct.group(1)),
        "p99_ms": float(pct.group(2)),
        "p999_ms": float(pct.group(3)),
    }


def parse_producer(output: str) -> dict:
    """The last summary line (progress lines have the same shape but come first)."""
    matches = _PRODUCER.findall(output)
    if not matches:
        raise ToolError(f"ProducerPerformance printed no summary:\n{output[-2000:]}")
    sent, rate, mb, avg, top, p50, p95, p99, p999 = matches[-1]
    return {
        "records": int(sent),
        "records_per_s": float(rate),
        "mb_per_s": float(mb),
        "avg_latency_ms": float(avg),
        "max_latency_ms": float(top),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
    }


def parse_consumer(output: str) -> dict:
    """The CSV header ``start.time, end.time, ...`` and the line after it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            header = [h.strip() for h in line.split(",")]
            values = [v.strip() for v in lines[index + 1].split(",")]
            row = dict(zip(header, values))
            try:
                return {
                    "records": int(row["data.consumed.in.nMsg"]),
                    "records_per_s": float(row["nMsg.sec"]),
                    "mb_per_s": float(row["MB.sec"]),
                    "fetch_records_per_s": float(row["fetch.nMsg.sec"]),
                    "rebalance_ms": float(row["rebalance.time.ms"]),
                }
            except (KeyError, ValueError) as exc:
                raise ToolError(f"ConsumerPerformance: unexpected summary {row}: {exc}") from exc
    raise ToolError(f"ConsumerPerformance printed no summary:\n{output[-2000:]}")


# --- runs ------------------------------------------------------------------------------------


def end_to_end_latency(settings: Settings, topic: str, messages: int, size: int) -> dict:
    # 4.x positional arguments: bootstrap-server topic num-records producer-acks record-size
    output = _run(settings, "EndToEndLatency", settings.kafka_bootstrap, topic, str(messages), "all", str(size))
    return {
        "tool": f"{TOOLS}.EndToEndLatency",
        "messages": messages,
        "record_bytes": size,
        "acks": "all",
        **parse_end_to_end(output),
    }


def producer_performance(settings: Settings, topic: str, records: int, size: int) -> dict:
    # The same acks and linger as Tallyroom's producer (producers/kafka.make_producer).
    output = _run(
        settings,
        "ProducerPerformance",
        "--bootstrap-server",
        settings.kafka_bootstrap,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(size),
        "--throughput",
        "-1",
        "--command-property",
        "acks=all",
        "linger.ms=5",
    )
    return {"tool": f"{TOOLS}.ProducerPerformance", "record_bytes": size, "acks": "all", **parse_producer(output)}


def consumer_performance(settings: Settings, topic: str, records: int) -> dict:
    output = _run(
        settings,
        "ConsumerPerformance",
        "--bootstrap-server",
        settings.kafka_bootstrap,
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--timeout",
        "60000",
    )
    return {"tool": f"{TOOLS}.ConsumerPerformance", **parse_consumer(output)}
