"""``tallyroom bench``: the whole benchmark on the real stack, one run.

1. a worker and a sink of the bench's own (own topics, worker id and Redis DB);
2. one load per rate (the synthetic night, or its first ``rate x rate_seconds``
   declarations), then a past night (``data/ge2024``) at full speed on the now
   warm stack, then an optional soak for memory;
3. Kafka's own tools on the same broker, with the worker stopped;
4. a JSON file and a PNG in ``out``; the bench's topics and Redis keys removed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
from kafka import KafkaAdminClient
from rich.console import Console

from tallyroom import processes
from tallyroom import stack as local_stack
from tallyroom.bench import kafka_tools, noop
from tallyroom.bench.load import LoadResult, expected_version, offer, open_night, payloads, run_load
from tallyroom.bench.night import NightSpec, SyntheticNight
from tallyroom.bench.stats import ratio
from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.redis_sink import redis_client
from tallyroom.lag import LagProbe
from tallyroom.producers.kafka import ensure_topics, make_producer
from tallyroom.settings import REPO_ROOT, Settings

BROKER_MESSAGE_LIMIT = 1_000_000  # the broker's default message.max.bytes is 1 MiB
SOAK_CHUNK = 5_000
CURVE_POINTS = 400


@dataclass(frozen=True)
class BenchOptions:
    seats: int = 5_000  # its opening must fit one Kafka message: 10,000 seats take 1.17 MB (NightSeat, session 4)
    declarations: int = 100_000
    rates: tuple[float | None, ...] = (500.0, 2000.0, None)  # None: as fast as possible
    out: Path = Path("bench-results")
    rate_seconds: float = 60.0  # a fixed-rate load offers at most rate x this many declarations
    night: Path | None = REPO_ROOT / "data" / "ge2024"
    soak_events: int = 0
    soak_seconds: float = 300.0
    kafka_records: int | None = None  # ProducerPerformance/ConsumerPerformance records; default: declarations
    e2e_messages: int = 2_000
    redis_db: int = 13
    seed: int = 2030
    timeout: float = 600.0  # per load
    keep: bool = False  # leave the bench's topics and Redis keys behind


def parse_rates(text: str) -> tuple[float | None, ...]:
    """``"500,2000,max"`` -> (500.0, 2000.0, None); names the bad item otherwise."""
    rates: list[float | None] = []
    for item in (part.strip() for part in text.split(",")):
        if item.lower() == "max":
            rates.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"rates: {item!r} is neither a number of declarations per second nor 'max'") from None
        if not value > 0 or math.isinf(value):
            raise ValueError(f"rates: {item!r} must be a positive number")
        rates.append(value)
    if not rates:
        raise ValueError("rates: give at least one rate, e.g. 500,2000,max")
    return tuple(rates)


def rate_label(rate: float | None) -> str:
    return "max" if rate is None else f"{rate:g}/s"


def bench_settings(base: Settings, run_id: str, redis_db: int) -> tuple[Settings, dict[str, str]]:
    """Topics, worker id, sink group and Redis DB of this run alone (like the tests' isolated_settings)."""
    values = {
        "topic_declarations": f"bench.{run_id}.declarations",
        "topic_alerts": f"bench.{run_id}.alerts",
        "topic_results": f"bench.{run_id}.results",
        "topic_dead_letters": f"bench.{run_id}.dead-letters",
        # One partition: declarations are then counted in send order, which the
        # landing measurement relies on (bench/stats.py).
        "topic_partitions": 1,
        "worker_id": f"tallyroom-bench-{run_id}",
        "sink_group": f"tallyroom-bench-{run_id}-sink",
        "redis_url": base.redis_url.rsplit("/", 1)[0] + f"/{redis_db}",
    }
    env = {f"TALLYROOM_{k.upper()}": str(v) for k, v in values.items()}
    return base.model_copy(update=values), env


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set now and its peak (VmHWM), from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0]) / 1024  # kB
    return {"rss_mb": round(fields.get("VmRSS", math.nan), 1), "hwm_mb": round(fields.get("VmHWM", math.nan), 1)}


@dataclass
class Pipeline:
    worker: processes.Background
    sink: processes.Background
    events: int = 0  # declarations the worker has counted, all loads together
    samples: list[dict] = field(default_factory=list)

    def sample(self, after: str) -> dict:
        sample = {
            "after": after,
            "events": self.events,
            **memory_mb(self.worker.process.pid),
            "sink": memory_mb(self.sink.process.pid),
        }
        self.samples.append(sample)
        return sample

    redis: redis.Redis | None = None

    def cpu(self) -> dict[str, float]:
        used = {"worker": cpu_seconds(self.worker.process.pid), "sink": cpu_seconds(self.sink.process.pid)}
        if self.redis is not None:
            # Redis's own CPU (INFO cpu, the whole server): work moved into Lua scripts shows up here.
            info = self.redis.info("cpu")
            used["redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        return used

    def stop(self) -> None:
        for process in (self.worker, self.sink):
            process.stop()


def start_pipeline(settings: Settings, env: dict[str, str]) -> Pipeline:
    worker = processes.start("worker", settings, env=env, log_name=f"{settings.worker_id}-worker")
    try:
        processes.wait_for_log(worker, "Worker]: Ready", 120)
        sink = processes.start("sink", settings, env=env, log_name=f"{settings.worker_id}-sink")
        processes.wait_alive(sink, 2)
    except BaseException:
        worker.stop()
        raise
    return Pipeline(worker, sink, redis=redis_client(settings))


def run(base: Settings, options: BenchOptions, console: Console | None = None) -> dict:
    """Run the benchmark; returns the results also written to ``options.out``."""
    console = console or Console()
    run_id = uuid.uuid4().hex[:6]
    settings, env = bench_settings(base, run_id, options.redis_db)
    night = SyntheticNight(NightSpec(f"bench-{run_id}", options.seats, options.declarations, options.seed))
    console.print(
        f"[bold]bench {run_id}[/]: {options.seats:,} seats, {options.declarations:,} declarations, "
        f"rates {', '.join(map(rate_label, options.rates))}; topics bench.{run_id}.*, "
        f"Redis {settings.redis_url}"
    )
    _check_night_fits(night)
    local_stack.up(settings, console)
    started = time.time()
    results: dict = {
        "run_id": run_id,
        "started_at": started,
        "machine": _machine(),
        "code": _code_version(),
        "options": _jsonable(asdict(options)),
        "method": METHOD,
        "night": {"seats": options.seats, "declarations": len(night), "seed": options.seed},
    }
    try:
        ensure_topics(settings)
        loads = _run_loads(settings, env, night, options, run_id, results, console)
        results["loads"] = [load.summary() | {"landed_curve": _thin(load.landed_curve())} for load in loads]
        results["references"] = _references(settings, env, night, run_id, options.redis_db, console)
        results["kafka"] = _kafka_tools(settings, run_id, loads, options, console)
    finally:
        if not options.keep:
            _clean_up(settings, run_id)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["ratios"] = _ratios(results)
    results["targets"] = _targets(results)
    results["seconds"] = round(time.time() - started, 1)
    return _write(results, {load.label: load.landed_curve() for load in loads}, options.out, console)


def _run_loads(
    settings: Settings,
    env: dict[str, str],
    night: SyntheticNight,
    options: BenchOptions,
    run_id: str,
    results: dict,
    console: Console,
) -> list[LoadResult]:
    """Every load on one worker and sink (warm after the first); memory sampled after each."""
    loads: list[LoadResult] = []
    pipeline = start_pipeline(settings, env)
    producer = make_producer(settings)
    try:
        pipeline.sample("start")
        for rate in options.rates:
            loads.append(_synthetic_load(settings, producer, night, rate, options, console, pipeline.cpu))
            pipeline.events += loads[-1].landed
            pipeline.sample(loads[-1].label)
        if options.night:
            loads.append(_past_night_load(settings, producer, options, run_id, console, pipeline.cpu))
            pipeline.events += loads[-1].landed
            pipeline.sample(loads[-1].label)
        if options.soak_events:
            results["soak"] = _soak(settings, producer, night, options, pipeline, console)
    finally:
        producer.close(timeout=30)
        results["worker"] = {
            "memory_samples": pipeline.samples,
            "events_counted": pipeline.events,
            "peak_rss_mb": max((s["hwm_mb"] for s in pipeline.samples), default=None),
            "log": str(pipeline.worker.log_path),
        }
        pipeline.stop()
    return loads


METHOD = {
    "latency": "from the producer send() call to the first time a Redis probe (own process, GET every 1 ms) "
    "sees the election's tally version reach the declaration's position in send order; each "
    "declaration adds exactly 1 to the version (consecutive revisions), and one partition keeps send "
    "order. The tally is written once per worker batch, after that batch's alerts and seats.",
    "latency_stages": "each landed declaration's latency split at the worker's send of its result (the results "
    "record's Kafka CreateTime, found by its seat's provenance offset): to_worker_send and worker_send_to_redis; "
    "wall clock and monotonic clock noted together once per load",
    "throughput": "declarations landed / (last landing - first send); sustained: between the 10% and 90% landings",
    "memory": "worker process VmRSS and VmHWM from /proc/<pid>/status after each load",
    "cpu": "worker and sink user+system CPU seconds (/proc/<pid>/stat) over the timed part of a load, "
    "per declaration landed: unlike rates, barely moved by other processes on the machine",
    "kafka": "Kafka's own tools on the same broker, run after the worker and sink have stopped",
}


def _check_night_fits(night: SyntheticNight) -> None:
    size = len(night.opened.model_dump_json())
    if size > BROKER_MESSAGE_LIMIT:
        raise ValueError(
            f"seats: {night.spec.seats:,} seats make a night message of {size:,} bytes, over the "
            f"broker's {BROKER_MESSAGE_LIMIT:,}-byte message limit; use fewer seats"
        )


def _synthetic_load(
    settings: Settings,
    producer,
    night: SyntheticNight,
    rate: float | None,
    options: BenchOptions,
    console: Console,
    cpu,
) -> LoadResult:
    count = len(night) if rate is None else min(len(night), max(1, int(rate * options.rate_seconds)))
    slug = "max" if rate is None else f"r{rate:g}".replace(".", "_")
    this = night.renamed(f"{night.spec.election}-{slug}")
    items = payloads(this.declarations(0, count))
    target = this.expected_version(count)
    console.print(f"load {rate_label(rate)}: {count:,} declarations ...")
    result = run_load(settings, producer, rate_label(rate), this.opened, items, target, rate, options.timeout, cpu)
    _report(console, result)
    return result


def _past_night_load(
    settings: Settings, producer, options: BenchOptions, run_id: str, console: Console, cpu
) -> LoadResult:
    from tallyroom.producers.nights import load_night

    assert options.night is not None, "called only with a night"
    loaded = load_night(options.night, f"bench-{run_id}-{Path(options.night).name}"[:64])
    label = f"{Path(options.night).name} max"
    console.print(f"load {label}: {len(loaded.declarations)} declarations of a real night, warm stack ...")
    result = run_load(
        settings,
        producer,
        label,
        loaded.opened,
        payloads(loaded.declarations),
        expected_version(loaded.declarations),
        None,
        options.timeout,
        cpu,
    )
    _report(console, result)
    return result


def _report(console: Console, result: LoadResult) -> None:
    lat = result.latency
    state = "" if result.complete else f" [red]INCOMPLETE: {result.landed:,} of {result.declarations:,} landed[/]"
    console.print(
        f"  {result.label}: {result.throughput_per_s:,.0f}/s end to end, last landing after "
        f"{result.seconds_to_last_landing:.2f}s; latency p50 {lat['p50_ms']:.1f} p95 {lat['p95_ms']:.1f} "
        f"p99 {lat['p99_ms']:.1f} ms; CPU per declaration {_cpu_text(result)}{state}"
    )
    if result.stages.get("matched"):
        to_worker, to_redis = result.stages["to_worker_send"], result.stages["worker_send_to_redis"]
        console.print(
            f"    of which to the worker's send p50 {to_worker['p50_ms']:.1f} p99 {to_worker['p99_ms']:.1f} ms, "
            f"from there into Redis p50 {to_redis['p50_ms']:.1f} p99 {to_redis['p99_ms']:.1f} ms"
        )


def _cpu_text(result: LoadResult) -> str:
    return ", ".join(f"{name} {ms:.2f} ms" for name, ms in result.cpu_ms_per_declaration.items()) or "-"


def _soak(
    settings: Settings, producer, night: SyntheticNight, options: BenchOptions, pipeline: Pipeline, console: Console
) -> dict:
    """Keep the worker counting (at most one chunk ahead of Redis) to see where its memory goes."""
    soak = SyntheticNight(NightSpec(f"{night.spec.election}-soak", options.seats, options.soak_events, options.seed))
    console.print(f"soak: up to {options.soak_events:,} declarations or {options.soak_seconds:.0f}s ...")
    open_night(settings, producer, soak.opened)
    client = redis_client(settings)
    key = ElectionKeys(soak.spec.election).version
    started = time.monotonic()
    sent = 0
    base_events = pipeline.events
    while sent < len(soak) and time.monotonic() - started < options.soak_seconds:
        items = payloads(soak.declarations(sent, sent + SOAK_CHUNK))
        offer(producer, settings.topic_declarations, items, None)
        producer.flush()
        sent += len(items)
        while int(client.get(key) or 0) < sent - SOAK_CHUNK and time.monotonic() - started < options.soak_seconds:
            time.sleep(0.1)
        pipeline.events = base_events + int(client.get(key) or 0)
        pipeline.sample("soak")
    deadline = time.monotonic() + min(options.timeout, 120)
    target = soak.expected_version(sent)
    while int(client.get(key) or 0) < target and time.monotonic() < deadline:
        time.sleep(0.2)
    landed = int(client.get(key) or 0)
    seconds = time.monotonic() - started
    pipeline.events = base_events + landed
    last = pipeline.sample("soak end")
    console.print(
        f"  soak: {landed:,} of {sent:,} landed in {seconds:.0f}s; worker RSS {last['rss_mb']} MB, "
        f"peak {last['hwm_mb']} MB after {pipeline.events:,} declarations in all"
    )
    return {
        "offered": sent,
        "landed": landed,
        "seconds": round(seconds, 1),
        "rate_per_s": round(landed / seconds, 1) if seconds else None,
    }


def _references(
    settings: Settings, env: dict[str, str], night: SyntheticNight, run_id: str, redis_db: int, console: Console
) -> dict:
    """What bounds Tallyroom from below it, on the same broker, once its worker and sink have stopped.

    - ``bench_producer_alone``: the bench's own load producer offering the max load's declarations
      to a topic nobody reads, so that it is known not to be the ceiling of a ``max`` load;
    - ``noop_faust``: the same declarations through a Faust agent that only forwards them
      (``bench/noop.py``: the worker's app settings, batch size, window and fetch wait).
    """
    this = night.renamed(f"{night.spec.election}-ref")
    items = payloads(this.declarations(0, len(night)))
    console.print(f"references on the same broker ({len(items):,} declarations): the bench's producer alone ...")
    references: dict = {"records": len(items)}
    producer = make_producer(settings)
    try:
        alone, _ = bench_settings(settings, f"{run_id}.alone", redis_db)
        ensure_topics(alone)
        started = time.monotonic()
        offer(producer, alone.topic_declarations, items, None)
        producer.flush()
        seconds = time.monotonic() - started
        references["bench_producer_alone"] = {"records_per_s": round(len(items) / seconds, 1), "seconds": seconds}
        console.print(f"  bench producer alone: {len(items) / seconds:,.0f} records/s")
        console.print("  no-op Faust agent ...")
        references["noop_faust"] = _noop_faust(settings, env, run_id, redis_db, producer, items)
        figure = references["noop_faust"]
        console.print(
            f"  no-op Faust agent: {figure['records_per_s']:,.0f} records/s end to end, "
            f"CPU {figure['cpu_ms_per_record']:.3f} ms per record"
        )
    except (TimeoutError, RuntimeError) as exc:
        references.setdefault("noop_faust", {"error": str(exc)[-1000:]})
        console.print(f"  [red]reference failed: {str(exc)[:300]}")
    finally:
        producer.close(timeout=30)
    return references


def _noop_faust(settings: Settings, env: dict[str, str], run_id: str, redis_db: int, producer, items: list) -> dict:
    """Time ``items`` through the no-op agent: first send until its output topic holds them all."""
    ref, ref_env = bench_settings(settings, f"{run_id}.noop", redis_db)
    ref_env["TALLYROOM_WORKER_ID"] = f"{settings.worker_id}-noop"  # its internal topics go with the run's
    ref = ref.model_copy(update={"worker_id": ref_env["TALLYROOM_WORKER_ID"]})
    ensure_topics(ref)
    agent = noop.start(env | ref_env, settings.stack_dir / "logs" / f"{ref.worker_id}.log")
    try:
        processes.wait_for_log(agent, "Worker]: Ready", 120)
        # One record first, not timed, as a load's night is not: the agent is then assigned and warm.
        producer.send(ref.topic_declarations, key=items[0][0], value=items[0][1])
        producer.flush()
        watcher = _EndWatcher(ref, ref.topic_results, 1)
        watcher.wait(120)
        watcher = _EndWatcher(ref, ref.topic_results, 1 + len(items))
        cpu_before = cpu_seconds(agent.process.pid)
        sent_at = offer(producer, ref.topic_declarations, items, None)
        producer.flush()
        last = watcher.wait(600)
        cpu_after = cpu_seconds(agent.process.pid)
    finally:
        agent.stop()
    seconds = last - sent_at[0]
    return {
        "what": "faust-streaming agent, take_events(worker_batch_size, within=worker_batch_seconds), one "
        "produce per event through the worker's direct producer call, awaited per batch; the worker's "
        "app settings (streams.app.create_app) and fetch wait",
        "batch_size": ref.worker_batch_size,
        "batch_seconds": ref.worker_batch_seconds,
        "fetch_max_wait_ms": ref.fetch_max_wait_ms,
        "records": len(items),
        "seconds": round(seconds, 3),
        "records_per_s": round(len(items) / seconds, 1),
        "cpu_ms_per_record": round((cpu_after - cpu_before) * 1000 / len(items), 4),
        "log": str(agent.log_path),
    }


class _EndWatcher:
    """A thread polling a topic's log end (its own Kafka clients) until it reaches ``target``."""

    def __init__(self, settings: Settings, topic: str, target: int, interval: float = 0.005):
        self.reached_at: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(settings, topic, target, interval), daemon=True)
        self._thread.start()

    def _watch(self, settings: Settings, topic: str, target: int, interval: float) -> None:
        probe = LagProbe(settings)
        try:
            while not self._done.is_set():
                if probe.end(topic) >= target:
                    self.reached_at = time.monotonic()
                    return
                time.sleep(interval)
        finally:
            probe.close()

    def wait(self, timeout: float) -> float:
        self._thread.join(timeout)
        self._done.set()
        if self.reached_at is None:
            raise TimeoutError(f"the no-op agent's output had not reached its target after {timeout:.0f}s")
        return self.reached_at


def _kafka_tools(
    settings: Settings, run_id: str, loads: list[LoadResult], options: BenchOptions, console: Console
) -> dict:
    synthetic = [load for load in loads if load.election.startswith(f"bench-{run_id}-")] or loads
    size = max(1, round(sum(load.payload_bytes_mean for load in synthetic) / len(synthetic))) if synthetic else 800
    records = options.kafka_records or options.declarations
    topics = {"perf": f"bench.{run_id}.kafka-perf", "e2e": f"bench.{run_id}.kafka-e2e"}
    console.print(
        f"Kafka's tools on the same broker ({records:,} records, {options.e2e_messages:,} round trips, "
        f"{size} bytes each) ..."
    )
    figures: dict = {"record_bytes": size}
    for name, call in (
        ("producer_performance", lambda: kafka_tools.producer_performance(settings, topics["perf"], records, size)),
        ("consumer_performance", lambda: kafka_tools.consumer_performance(settings, topics["perf"], records)),
        (
            "end_to_end_latency",
            lambda: kafka_tools.end_to_end_latency(settings, topics["e2e"], options.e2e_messages, size),
        ),
    ):
        try:
            figures[name] = call()
        except (kafka_tools.ToolError, subprocess.TimeoutExpired) as exc:
            figures[name] = {"error": str(exc)[-1000:]}
            console.print(f"  [red]{name} failed: {str(exc)[:300]}")
    for name in ("producer_performance", "consumer_performance"):
        if "records_per_s" in figures[name]:
            console.print(f"  {name}: {figures[name]['records_per_s']:,.0f} records/s")
    if "p99_ms" in figures["end_to_end_latency"]:
        e2e = figures["end_to_end_latency"]
        console.print(f"  end_to_end_latency: p50 {e2e['p50_ms']:g} p99 {e2e['p99_ms']:g} ms (avg {e2e['avg_ms']:g})")
    return figures


def _synthetic_max(loads: list[dict]) -> dict | None:
    """The synthetic night's ``max`` load (not a past night's, labelled ``<night> max``), if the run had one."""
    return next((load for load in loads if load["offered_rate_per_s"] == "max" and load["label"] == "max"), None)


def _ratios(results: dict) -> dict:
    kafka = results["kafka"]
    maxed = [load for load in results["loads"] if load["offered_rate_per_s"] == "max"]
    paced = [load for load in results["loads"] if load["offered_rate_per_s"] != "max"]
    best = max((load["throughput_per_s"] for load in maxed), default=None)
    slowest = min(paced, key=lambda load: load["offered_rate_per_s"], default=None)
    references = results.get("references", {})
    # The no-op agent forwards the synthetic max load's declarations: compared with that load alone.
    synthetic = _synthetic_max(results["loads"])
    synthetic_per_s = synthetic["throughput_per_s"] if synthetic else None
    return {
        "throughput_vs_noop_faust": ratio(synthetic_per_s, references.get("noop_faust", {}).get("records_per_s")),
        "noop_faust_vs_bench_producer_alone": ratio(
            references.get("noop_faust", {}).get("records_per_s"),
            references.get("bench_producer_alone", {}).get("records_per_s"),
        ),
        "throughput_vs_kafka_producer": ratio(best, kafka.get("producer_performance", {}).get("records_per_s")),
        "throughput_vs_kafka_consumer": ratio(best, kafka.get("consumer_performance", {}).get("records_per_s")),
        "p50_vs_kafka_e2e_p50": ratio(
            slowest and slowest["latency"]["p50_ms"], kafka.get("end_to_end_latency", {}).get("p50_ms")
        ),
        "p99_vs_kafka_e2e_p99": ratio(
            slowest and slowest["latency"]["p99_ms"], kafka.get("end_to_end_latency", {}).get("p99_ms")
        ),
        "paced_load_compared": slowest and slowest["label"],
    }


def _paced_p99(loads: list[dict], rate: int, limit_ms: float) -> dict:
    """A paced load's p99 against ``limit_ms``; not met when the load was not run or fell behind its rate."""
    load = next((load for load in loads if load["offered_rate_per_s"] == rate), None)
    p99: float | None = load["latency"]["p99_ms"] if load else None
    sustained_per_s: float | None = load["sustained_per_s"] if load else None
    # A load that fell behind its rate measured a queue, not the pipeline at that rate.
    sustained = bool(load and load["complete"] and sustained_per_s is not None and sustained_per_s >= 0.95 * rate)
    return {
        "target": f"<= {limit_ms:g} ms",
        "measured_ms": p99,
        "sustained_per_s": sustained_per_s,
        "met": p99 is not None and sustained and p99 <= limit_ms,
    }


def _at_most(target: str, measured: float | None, limit: float, field: str = "measured_ms") -> dict:
    """A figure against an upper limit; not met when the run did not measure it."""
    return {"target": target, field: measured, "met": measured is not None and measured <= limit}


def _targets(results: dict) -> dict:
    """Where the run stands against the issues' targets (issue 15's table, and the bench's first): reported,
    never asserted. A target whose load the run did not include is reported as not met, measured None."""
    loads = results["loads"]
    maxed = [load for load in loads if load["offered_rate_per_s"] == "max" and not load["label"].endswith(" max")]
    synthetic = _synthetic_max(loads)
    past = next((load for load in loads if load["label"].endswith(" max")), None)
    best = max((load["throughput_per_s"] for load in maxed), default=None)
    p99_ratio = results["ratios"]["p99_vs_kafka_e2e_p99"]
    worker = results["worker"]
    cpu: dict = synthetic["cpu_ms_per_declaration"] if synthetic else {}
    # An incomplete night has no time to its last landing worth comparing.
    past_s: float | None = past["seconds_to_last_landing"] if past and past["complete"] else None
    night = past["label"] if past else None
    return {
        "throughput": {
            "target": ">= 4,000 declarations/s end to end, and >= 80% of the no-op Faust agent's",
            "measured_per_s": best,
            "vs_noop_faust": results["ratios"]["throughput_vs_noop_faust"],
            "met": best is not None and best >= 4_000 and (results["ratios"]["throughput_vs_noop_faust"] or 0) >= 0.8,
        },
        "p99_at_200_per_s": _paced_p99(loads, 200, 50),
        "p99_at_500_per_s": _paced_p99(loads, 500, 100),
        "p99_at_2000_per_s": _paced_p99(loads, 2000, 250),
        "p99_vs_kafka": _at_most("<= 3x Kafka's EndToEndLatency p99", p99_ratio, 3, field="measured_ratio"),
        "worker_cpu_at_max": _at_most("<= 0.20 ms per declaration", cpu.get("worker"), 0.20),
        "sink_cpu_at_max": _at_most("<= 0.08 ms per declaration", cpu.get("sink"), 0.08),
        "past_night_at_max": {
            "target": "< 2 s on a warm stack",
            "night": night,
            "measured_s": past_s,
            "met": past_s is not None and past_s < 2,
        },
        "past_night_at_max_fast": {
            "night": night,
            **_at_most("<= 0.3 s on a warm stack (issue 15)", past_s, 0.3, "measured_s"),
        },
        "worker_memory": {
            "target": "< 300 MB after 1,000,000 events",
            "peak_rss_mb": worker["peak_rss_mb"],
            "events_reached": worker["events_counted"],
            "met": worker["peak_rss_mb"] is not None and worker["peak_rss_mb"] < 300,
            "conclusive": worker["events_counted"] >= 1_000_000,
        },
    }


def _write(results: dict, curves: dict, out: Path, console: Console) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"bench-{results['run_id']}.json"
    png_path = out / f"bench-{results['run_id']}.png"
    results["files"] = {"json": str(json_path), "png": str(png_path)}
    json_path.write_text(json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n")
    from tallyroom.bench.plot import plot  # matplotlib: the optional `bench` extra

    plot(results, curves, png_path)
    console.print(f"[green]wrote {json_path} and {png_path}[/]")
    for name, target in results["targets"].items():
        mark = "[green]met[/]" if target["met"] else "[yellow]not met[/]"
        measured = {k: v for k, v in target.items() if k not in ("target", "met")}
        console.print(f"  target {name} ({target['target']}): {mark} {measured}")
    return results


def _clean_up(settings: Settings, run_id: str) -> None:
    """Remove the run's topics (its own and the worker's changelogs) and its Redis keys."""
    admin = KafkaAdminClient(**settings.kafka_python_config())
    try:
        ours = [
            t for t in admin.list_topics() if t.startswith(f"bench.{run_id}.") or t.startswith(f"{settings.worker_id}-")
        ]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()
    client: redis.Redis = redis_client(settings)
    batch = []
    for key in client.scan_iter(match=f"tallyroom:bench-{run_id}-*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def _thin(curve: list[tuple[float, int]], points: int = CURVE_POINTS) -> list[tuple[float, int]]:
    if len(curve) <= points:
        return curve
    step = len(curve) / points
    return [curve[int(i * step)] for i in range(points)] + [curve[-1]]


def _machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _code_version() -> dict:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_in_hot_path": git("status", "--porcelain", "--", "streams", "consumers", "schemas").splitlines(),
    }


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value
