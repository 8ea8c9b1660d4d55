"""The Redis sink: alerts, tallies and seat results from Kafka into Redis.

It reads the results topic, where each update carries the alerts raised with it,
so alerts land in Redis before the tally that follows them.

Run by the one consumer loop (``consumers/loop.py``), which commits offsets only
after Redis has the writes: at-least-once from Kafka,
made idempotent in Redis by Lua scripts that run atomically:
an alert id is added to the stream only once; a tally or seat result is only
written when it is newer than what Redis holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import redis
from confluent_kafka import TopicPartition
from pydantic import ValidationError

from tallyroom.consumers.keys import DEAD_LETTERS, DEAD_LETTERS_SEEN, ElectionKeys, sink_filled
from tallyroom.consumers.loop import Partitions, run_consumer
from tallyroom.lag import serve_lag, sink_lag_checks
from tallyroom.lifecycle import Stop, authentication_failure
from tallyroom.metrics import serve_process_metrics, sink_metrics
from tallyroom.schemas import Alert, DeadLetter, ResultUpdate
from tallyroom.schemas.common import ELECTION_ID, read_stored, read_stored_as_written
from tallyroom.settings import Settings
from tallyroom.streams.rules import RuleConfig, seat_summary_json

log = logging.getLogger("tallyroom.sink")

# One call per poll: every alert, seat and tally of the poll's records, in order, each step as
# idempotent as ever. ARGV is a run of steps, each a letter and its arguments; KEYS holds each
# step's keys in the same order. Returns 1 (written) or 0 (already there, or older) per step.
#   a: an alert, added once by id. KEYS alert-ids set, alerts stream, live channel;
#      ARGV id, kind, ons_id, constituency, headline, json.
#   s: a seat result, kept only if newer, with its summary (so the two never disagree).
#      KEYS seat, winners; ARGV revision, json, ons_id, SeatSummary json.
#   n: the night's seats, replaced whole. KEYS night; ARGV n, then n pairs of ons_id, NightSeat json.
#   t: a tally, kept only if newer. KEYS version, seats, votes, declared, total, tally;
#      ARGV version, declared, total, tally json, seats json, votes json.
# One call instead of one per step cost the sink less CPU per declaration (bench/README.md).
WRITE_RESULTS = """
local written = {}
local k, a = 1, 1
while a <= #ARGV do
  local step, done = ARGV[a], 0
  if step == 'a' then
    if redis.call('SADD', KEYS[k], ARGV[a+1]) == 1 then
      redis.call('XADD', KEYS[k+1], '*', 'id', ARGV[a+1], 'kind', ARGV[a+2], 'ons_id', ARGV[a+3],
                 'constituency', ARGV[a+4], 'headline', ARGV[a+5], 'json', ARGV[a+6])
      redis.call('PUBLISH', KEYS[k+2], ARGV[a+6])
      done = 1
    end
    k, a = k + 3, a + 7
  elseif step == 's' then
    local held = redis.call('GET', KEYS[k])
    if not (held and tonumber(cjson.decode(held)['revision']) >= tonumber(ARGV[a+1])) then
      redis.call('SET', KEYS[k], ARGV[a+2])
      redis.call('HSET', KEYS[k+1], ARGV[a+3], ARGV[a+4])
      done = 1
    end
    k, a = k + 2, a + 5
  elseif step == 'n' then
    local n = tonumber(ARGV[a+1])
    redis.call('DEL', KEYS[k])
    for i = 0, n - 1 do redis.call('HSET', KEYS[k], ARGV[a+2+2*i], ARGV[a+3+2*i]) end
    done = 1
    k, a = k + 1, a + 2 + 2 * n
  elseif step == 't' then
    local held = tonumber(redis.call('GET', KEYS[k]) or '-1')
    if tonumber(ARGV[a+1]) > held then
      redis.call('SET', KEYS[k], ARGV[a+1])
      redis.call('DEL', KEYS[k+1], KEYS[k+2])
      for party, n in pairs(cjson.decode(ARGV[a+5])) do redis.call('HSET', KEYS[k+1], party, n) end
      for party, n in pairs(cjson.decode(ARGV[a+6])) do redis.call('HSET', KEYS[k+2], party, n) end
      redis.call('SET', KEYS[k+3], ARGV[a+2])
      redis.call('SET', KEYS[k+4], ARGV[a+3])
      redis.call('SET', KEYS[k+5], ARGV[a+4])
      done = 1
    end
    k, a = k + 6, a + 7
  else
    return redis.error_reply('WRITE_RESULTS: unknown step ' .. tostring(step))
  end
  written[#written + 1] = done
end
return written
"""


# A dead letter, once: KEYS seen hash, the dead-letters stream; ARGV identity, json, maxlen.
# The worker dead-letters the same record again when it re-reads what it had not committed, and
# quarantines the same stored record at each rebuild; an operator's list names each once.
DEAD_LETTER_ONCE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'json', ARGV[2])
return 1
"""
DEAD_LETTERS_MAX = 100_000  # entries kept in the stream (approximately)


def dead_letter_identity(letter: DeadLetter | None, value: bytes) -> str:
    """Which refusal a dead letter records: its record (topic, partition, offset), election and reason;
    the bytes themselves for a letter that cannot be read."""
    if letter is None:
        return "raw:" + hashlib.sha1(value).hexdigest()
    what = f"{letter.topic}/{letter.partition}/{letter.offset}/{letter.key}/{letter.reason}"
    return hashlib.sha1(what.encode("utf-8", "backslashreplace")).hexdigest()


class WrittenParts(msgspec.Struct):
    """A results record's alerts, seat and tally as the worker wrote them: ``ResultUpdate``'s JSON, unparsed.

    The sink still reads each record with pydantic (its checks, and the fields its steps need), but
    writes these bytes to Redis as they are instead of serialising each part again. For a record of
    this release the bytes are the same (``model_dump_json`` of what it parses); a record of another
    release is kept as it was written, and readers read it with ``read_stored`` as ever.
    Serialising the parts again was 15% of the sink's samples at 500/s (bench/README.md).
    """

    alerts: list[msgspec.Raw] = []
    seat: msgspec.Raw = msgspec.Raw(b"null")
    tally: msgspec.Raw = msgspec.Raw(b"null")


WRITTEN_PARTS = msgspec.json.Decoder(WrittenParts)


@dataclass
class Steps:
    """One poll's alerts, seats and tallies: the keys, arguments and kinds of ``WRITE_RESULTS``' steps."""

    keys: list[str] = field(default_factory=list)
    args: list[str | bytes | int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # "alert", "seat", "tally": how each result is counted


@dataclass
class SinkCounts:
    alerts_added: int = 0
    alerts_duplicate: int = 0
    tallies: int = 0
    seats: int = 0
    dead_letters: int = 0
    dead_letters_duplicate: int = 0


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, **settings.redis_kwargs())


class RedisSink:
    """Results and dead letters into Redis: a sink for ``consumers.loop.run_consumer``, refilling a wiped Redis.

    ``write_update``, ``write_alert`` and ``write_records`` also write directly, for tests and tools.
    """

    def __init__(self, settings: Settings, client: redis.Redis | None = None):
        self.settings = settings
        self.redis = client or redis_client(settings)
        self._write_results = self.redis.register_script(WRITE_RESULTS)
        self._dead_letter_once = self.redis.register_script(DEAD_LETTER_ONCE)
        self.rules = RuleConfig.from_settings(settings)  # what the seat summaries call marginal
        self.counts = SinkCounts()
        self.metrics = sink_metrics(self.counted)
        self.fill: RedisFill | None = None
        self._taken: list[tuple[str, bytes]] = []

    def counted(self) -> dict[str, int]:
        """The writes so far, as ``tallyroom_sink_writes_total`` reports them."""
        c = self.counts
        return {
            "alert_added": c.alerts_added,
            "alert_duplicate": c.alerts_duplicate,
            "seat": c.seats,
            "tally": c.tallies,
            "dead_letter": c.dead_letters,
            "dead_letter_duplicate": c.dead_letters_duplicate,
        }

    # --- as a sink of the consumer loop ----------------------------------------------------------

    @property
    def topics(self) -> list[str]:
        return [self.settings.topic_results, self.settings.topic_dead_letters]

    def check_credentials(self) -> None:
        """A refused password or a missing right ends the sink here, before any Kafka client runs:
        raised later, with the consumer's IO thread still running, the exit could print its traceback."""
        try:
            self.redis.ping()
            self.redis.info("server")  # the refill reads the server's run_id
        except redis.RedisError as exc:
            if (failure := authentication_failure(exc)) is not None:
                raise failure from None
            # Not answering: the consumer loop waits for it, as before.

    def open(self, partitions: Partitions) -> RedisFill:
        self.redis.ping()  # a refused password ends the sink here, before it joins the group
        self.fill = RedisFill(self, partitions, self.settings.sink_group)
        return self.fill

    def write(self, records: Sequence[tuple[str, bytes]]) -> bool:
        # A wipe between this check and the flush is caught at the next poll:
        # the mark stays gone until it is set again after a refill.
        if self.fill is not None and self.fill.wiped():
            self._taken = []
            return False
        self._taken = list(records)
        return True

    def flush(self) -> None:
        """One round trip for the poll's records; re-sent whole after a failure (every write is idempotent)."""
        with self.metrics.flush_seconds.time():
            self.write_records(self._taken)
        self._taken = []

    def committed(self) -> None:
        if self.fill is not None:
            self.fill.committed()

    def close(self) -> None:
        self.redis.close()

    # --- writing -------------------------------------------------------------------------------------

    def write_alert(self, alert: Alert) -> bool:
        """Add one alert now; False if its id was already there."""
        added = self._run(lambda pipe, tags, steps: self._queue_alert(steps, alert))
        return bool(added)

    def write_update(self, update: ResultUpdate) -> None:
        self._run(lambda pipe, tags, steps: self._queue_update(steps, update))

    def write_records(self, records: list[tuple[str, bytes]]) -> None:
        """Write a poll's worth of (topic, value) records in one round trip, in order."""

        def queue(pipe, tags, steps):
            for topic, value in records:
                self._queue_record(pipe, tags, steps, topic, value)

        self._run(queue)

    def handle(self, topic: str, value: bytes) -> None:
        self.write_records([(topic, value)])

    def _run(self, queue) -> int:
        # One MULTI-less pipeline: the dead letters' commands, then one WRITE_RESULTS call with
        # every alert, seat and tally in order (a Lua script is atomic on its own).
        pipe = self.redis.pipeline(transaction=False)
        tags: list[str] = []
        steps = Steps()
        queue(pipe, tags, steps)
        if steps.kinds:
            self._write_results(keys=steps.keys, args=steps.args, client=pipe)
        if not tags and not steps.kinds:
            return 0
        results = pipe.execute()
        for tag, result in zip(tags, results):  # one tag per command queued before WRITE_RESULTS
            if tag == "dead_letter":
                if result:
                    self.counts.dead_letters += 1
                else:
                    self.counts.dead_letters_duplicate += 1
        written = results[-1] if steps.kinds else []
        for kind, result in zip(steps.kinds, written):
            if kind == "alert":
                if result:
                    self.counts.alerts_added += 1
                else:
                    self.counts.alerts_duplicate += 1
            elif kind == "seat":
                self.counts.seats += int(result)
            elif kind == "tally":
                self.counts.tallies += int(result)
        return int(written[0]) if steps.kinds and steps.kinds[0] == "alert" else 0

    def _queue_alert(self, steps: Steps, alert: Alert, written: bytes | None = None) -> None:
        keys = ElectionKeys(alert.election)
        steps.keys += [keys.alert_ids, keys.alerts, keys.live]
        steps.args += [
            "a",
            alert.id,
            alert.kind.value,
            alert.ons_id or "",
            alert.constituency or "",
            alert.headline,
            alert.model_dump_json() if written is None else written,
        ]
        steps.kinds.append("alert")

    def _queue_update(self, steps: Steps, update: ResultUpdate, written: WrittenParts | None = None) -> None:
        """Queue the update's steps; each part's JSON is ``written``'s bytes when given, else serialised here."""
        # Alerts first: whoever sees a tally has also been able to see its alerts.
        for i, alert in enumerate(update.alerts):
            self._queue_alert(steps, alert, bytes(written.alerts[i]) if written else None)
        keys = ElectionKeys(update.election)
        seat, tally = update.seat, update.tally
        if update.night is not None:
            steps.keys.append(keys.night)
            steps.args += ["n", len(update.night)]
            steps.args += [value for s in update.night for value in (s.ons_id, s.model_dump_json())]
            steps.kinds.append("night")
        if seat is not None:
            summary = seat_summary_json(seat, self.rules)
            steps.keys += [keys.seat(seat.ons_id), keys.winners]
            seat_json = bytes(written.seat) if written else seat.model_dump_json()
            steps.args += ["s", seat.revision, seat_json, seat.ons_id, summary]
            steps.kinds.append("seat")
        if tally is not None:
            seats = {p: t.seats for p, t in tally.parties.items() if t.seats}
            votes = {p: t.votes for p, t in tally.parties.items() if t.votes}
            steps.keys += [keys.version, keys.seats, keys.votes, keys.declared, keys.total, keys.tally]
            steps.args += [
                "t",
                tally.version,
                tally.declared,
                tally.total,
                bytes(written.tally) if written else tally.model_dump_json(),
                json.dumps(seats),
                json.dumps(votes),
            ]
            steps.kinds.append("tally")

    def _queue_record(self, pipe, tags: list[str], steps: Steps, topic: str, value: bytes) -> None:
        if topic == self.settings.topic_dead_letters:
            text = value.decode("utf-8", "backslashreplace")
            letter = _read_dead_letter(value)
            identity = dead_letter_identity(letter, value)
            self._dead_letter_once(
                keys=[DEAD_LETTERS_SEEN, DEAD_LETTERS], args=[identity, text, DEAD_LETTERS_MAX], client=pipe
            )
            tags.append("dead_letter")
            if letter is not None and (refused := _refused_in_election(letter)):
                key, where, reason = refused
                pipe.hset(key, where, reason)  # idempotent: a refill or a repeated quarantine adds nothing
                tags.append("refused")
            return
        try:
            update, as_written = read_stored_as_written(ResultUpdate, value)
        except ValidationError as exc:
            # Not written by a Tallyroom worker; keep it where an operator looks.
            log.error("unreadable record on %s: %s", topic, exc.errors()[:1])
            text = value.decode("utf-8", "backslashreplace")
            pipe.xadd(DEAD_LETTERS, {"json": text, "reason": f"unreadable on {topic}"}, maxlen=DEAD_LETTERS_MAX)
            tags.append("dead_letter")
            return
        # A record this release reads as it is goes to Redis as written; one that needed
        # read_stored's upgrade (fields missing or unknown here) is serialised again, upgraded.
        self._queue_update(steps, update, WRITTEN_PARTS.decode(value) if as_written else None)


def _read_dead_letter(value: bytes) -> DeadLetter | None:
    try:
        return read_stored(DeadLetter, value)
    except ValidationError:
        return None


def _refused_in_election(letter: DeadLetter) -> tuple[str, str, str] | None:
    """(the election's refused hash, "topic/partition/offset", reason) of a dead letter keyed by election."""
    if not letter.key or not ELECTION_ID.match(letter.key):
        return None
    return ElectionKeys(letter.key).refused, f"{letter.topic}/{letter.partition}/{letter.offset}", letter.reason


class RedisFill:
    """Which partitions this Redis has been filled from, so that a wiped Redis is refilled.

    Kafka keeps every result; Redis may lose them (restarted without persistence,
    flushed by hand). A partition this Redis has no mark for is read again from its
    start: every write is idempotent, so reading a result twice changes nothing.
    A Redis that restarted (a new ``run_id``) is refilled too, mark or not: with the
    append-only file's default ``appendfsync everysec``, a crash loses up to its last
    second of writes, which the sink may already have committed in Kafka.
    The mark is set only after the first commit that follows, so a sink that dies
    before then starts over instead of resuming past what Redis never got.
    It is the consumer's rebalance listener (``consumers.loop.Rebalance``), to check each
    partition it is given.
    """

    def __init__(self, sink: RedisSink, partitions: Partitions, group: str):
        self.sink, self.partitions = sink, partitions
        self.key = sink_filled(group)
        self.marked = False
        self.run_id: str | None = None  # the Redis server process this sink has been writing to

    @staticmethod
    def field(tp: TopicPartition) -> str:
        return f"{tp.topic}/{tp.partition}"

    def on_assign(self, assigned: Sequence[TopicPartition]) -> list[TopicPartition]:
        """The partitions to read from their start: those this Redis has no mark for."""
        try:
            held = {f.decode() if isinstance(f, bytes) else f for f in self.sink.redis.hkeys(self.key)}
        except (redis.ConnectionError, redis.TimeoutError):
            held = set()  # cannot tell: reading from the start is always safe (a refused password: see run_sink)
        unfilled = [tp for tp in assigned if self.field(tp) not in held]
        if unfilled:
            log.info(
                "Redis holds nothing yet from %s: reading them from the start",
                ", ".join(self.field(tp) for tp in unfilled),
            )
        # Given nothing (a rebalance can hand a member no partition), nothing is marked either:
        # a missing mark then is no sign of a wiped Redis.
        self.marked = bool(assigned) and not unfilled
        return unfilled

    def wiped(self) -> bool:
        """True, and everything re-read from the start, if Redis has lost what it was filled with."""
        pipe = self.sink.redis.pipeline(transaction=False)
        pipe.exists(self.key)
        pipe.info("server")
        exists, server = pipe.execute()
        run_id = server.get("run_id")
        restarted = self.run_id is not None and run_id != self.run_id
        self.run_id = run_id
        if not restarted and (exists or not self.marked):
            return False
        if restarted:
            log.warning(
                "Redis restarted (run_id %s): it may have lost its last writes, so it is refilled from the "
                "start of every partition",
                run_id,
            )
        else:
            log.warning("Redis has lost its data (no %s): refilling it from the start of every partition", self.key)
        self.partitions.rewind(self.partitions.assignment())
        self.marked = False
        return True

    def committed(self) -> None:
        if not self.marked and (assignment := self.partitions.assignment()):
            self.sink.redis.hset(self.key, mapping={self.field(tp): 1 for tp in assignment})
            self.marked = True


def run_sink(settings: Settings, stop_after: float | None = None, stop: Stop | None = None) -> SinkCounts:
    """Consume until SIGTERM/SIGINT (or ``stop_after`` seconds), committing what Redis holds (``consumers.loop``)."""
    stop = stop or Stop()
    sink = RedisSink(settings)
    sink.check_credentials()
    serve_process_metrics(sink.metrics, settings.sink_metrics_port)
    lag = serve_lag(sink.metrics, settings, sink_lag_checks(settings)) if settings.sink_metrics_port else None
    try:
        with stop.on_signals():
            run_consumer(settings, sink, sink.topics, settings.sink_group, stop, stop_after)
    finally:
        if lag is not None:
            lag.stop()
    return sink.counts
