"""Bad input, generated: each bad declaration refused naming its record and field, each valid one through.

One corpus of 10,000 inputs (9,000 bad of 16 kinds, 1,000 valid declarations of the 2024
night's seats), drawn by Hypothesis with a fixed seed, goes through every way in:

- ``tallyroom.producers.live.check_record``, the pure check;
- ``tallyroom declare --night``, one subprocess reading all of it on stdin;
- ``POST /declarations`` (NDJSON bodies of 250 records; each not-UTF-8 one alone);
- raw Kafka messages straight onto the real worker's declarations topic (plus null values),
  after the night's opening; the worker must survive, dead-letter exactly the bad ones and
  count exactly the valid ones.

Each channel prints a summary line of what it refused, so the CI log shows the numbers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from tallyroom.consumers.keys import DEAD_LETTERS, ElectionKeys
from tallyroom.lag import wait_until_caught_up
from tallyroom.producers.http import create_entry_app
from tallyroom.producers.kafka import ensure_topics, make_producer
from tallyroom.producers.live import NightSeats, check_record
from tallyroom.producers.nights import load_night
from tallyroom.producers.operators import OperatorStore, Role
from tallyroom.schemas import DeadLetter, NightOpened, SeatResult
from tallyroom.schemas.limits import Limits
from tallyroom.settings import REPO_ROOT, Settings
from tests.fuzz.strategies import Case, Night, bad_cases, generate, valid_cases
from tests.integration.conftest import cli_env, isolated_settings, running_pipeline

pytestmark = pytest.mark.fuzz

NIGHT_DIR = REPO_ROOT / "data" / "ge2024"
ELECTION = "ge2024-fuzz"  # fresh in every run anyway: topics and Redis DB are this run's own
# Lower than the defaults, so that both limits are met by inputs of a sensible size; the
# payload limit holds for every event, and the 2024 night's opening without nominations and
# previous figures is 69 kB (142 kB with its previous shares, 530 kB with nominations too).
LIMITS = Limits(max_payload_bytes=98_304, max_candidates=40)
LIMIT_ENV = {
    "TALLYROOM_MAX_PAYLOAD_BYTES": str(LIMITS.max_payload_bytes),
    "TALLYROOM_MAX_CANDIDATES": str(LIMITS.max_candidates),
}
BAD, VALID = 9_000, 1_000
NULL_VALUES = 10  # Kafka only: a message with no value at all
FUZZ_REDIS_DB = 14  # not 15 (the shared pipeline fixture flushes it), nor 11-13 (other suites)
HTTP_BATCH = 250  # records a body: well under the 5 MB body cap with oversized ones in


# --- the corpus ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def night() -> NightOpened:
    # Without its nominations: the valid cases name random candidates (live entry would refuse
    # them, by name: tests/unit/test_nominations.py); and without previous figures, which bad
    # input has nothing to do with, so that the opening stays under the payload limit.
    opened = load_night(NIGHT_DIR, ELECTION).opened
    seats = [s.model_copy(update={"candidates": [], "previous": None}) for s in opened.seats]
    return opened.model_copy(update={"seats": seats})


@pytest.fixture(scope="module")
def corpus(night: NightOpened) -> list[Case]:
    """9 bad, then 1 valid, 1,000 times over: the same 10,000 inputs in every run."""
    fuzz_night = Night(night.election, tuple((s.ons_id, s.constituency) for s in night.seats))
    bad = generate(bad_cases(fuzz_night, LIMITS), BAD)
    valid = generate(valid_cases(fuzz_night), VALID)
    per_valid = BAD // VALID
    cases: list[Case] = []
    for index, case in enumerate(valid):
        cases += bad[index * per_valid : (index + 1) * per_valid] + [case]
    return cases


def judge(case: Case, number: int, refusals: list[tuple[int, str, str]]) -> list[str]:
    """What is wrong with how one input was answered (nothing, if it was right)."""
    shown = f"record {number} ({case.category}) {case.raw[:160]!r}"
    if case.valid:
        return [f"{shown}: valid but refused: {refusals[:3]}"] if refusals else []
    if not refusals:
        return [f"{shown}: bad but accepted"]
    problems = [
        f"{shown}: refusal names record {r} and field {f!r} ({m!r})"
        for r, f, m in refusals
        if r != number or not f or not m
    ]
    if case.field not in {f for _, f, _ in refusals}:
        problems.append(f"{shown}: refused without naming {case.field!r}: {refusals[:3]}")
    return problems


def summary(channel: str, answered: list[tuple[Case, bool]], extra: str = "") -> str:
    """One line for the CI log from what the channel did: (case, was it refused) for each input."""
    refused = Counter(case.category.split("/")[0] for case, was_refused in answered if was_refused)
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(refused.items()))
    accepted_valid = sum(case.valid and not was_refused for case, was_refused in answered)
    valid = sum(case.valid for case, _ in answered)
    return (
        f"\n[fuzz] {channel}: {len(answered)} inputs; {sum(refused.values())} refused ({kinds}); "
        f"{accepted_valid} of {valid} valid accepted{extra}"
    )


def fail_on(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} wrong answers; the first:\n" + "\n".join(problems[:15])


# --- limits: defaults and settings ------------------------------------------------------------


def test_limits_default_to_a_megabyte_and_a_hundred_candidates(monkeypatch):
    for name in LIMIT_ENV:
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert (settings.max_payload_bytes, settings.max_candidates) == (1_000_000, 100)
    assert Limits.from_settings(settings) == Limits()
    monkeypatch.setenv("TALLYROOM_MAX_CANDIDATES", "40")
    assert Settings(_env_file=None).max_candidates == 40
    monkeypatch.setenv("TALLYROOM_MAX_CANDIDATES", "101")  # over the schema's own cap
    with pytest.raises(ValidationError, match="max_candidates"):
        Settings(_env_file=None)


def _declaration(candidates: int) -> bytes:
    return json.dumps(
        {
            "kind": "declaration",
            "election": "ge2024",
            "ons_id": "E14001063",
            "constituency": "Leicester South",
            "declared_at": "2024-07-05T03:31:00+01:00",
            "candidates": [{"name": f"Candidate {i}", "party": "Ind", "votes": i} for i in range(candidates)],
        }
    ).encode()


def test_default_limits_at_their_edges():
    assert check_record(1, _declaration(100))[1] == []
    _, refusals = check_record(7, _declaration(101))
    assert [(r.record, r.field) for r in refusals] == [(7, "declaration.candidates")]
    raw = _declaration(1)
    at_limit = raw[:-1] + b" " * (1_000_000 - len(raw)) + b"}"
    assert check_record(1, at_limit)[1] == []
    _, refusals = check_record(3, at_limit[:-1] + b" }")
    assert [(r.record, r.field, r.message) for r in refusals] == [
        (3, "payload", "1000001 bytes is over the limit of 1000000")
    ]
    _, refusals = check_record(2, _declaration(41), Limits(max_candidates=40))
    assert [(r.field, r.message) for r in refusals] == [
        ("declaration.candidates", "41 candidates is over the limit of 40")
    ]


# --- channel 1: the pure check ----------------------------------------------------------------


def test_check_record_refuses_each_bad_input_by_record_and_field(corpus, night):
    seats = NightSeats.of(night)
    problems: list[str] = []
    answered: list[tuple[Case, bool]] = []
    for number, case in enumerate(corpus, start=1):
        event, refusals = check_record(number, case.raw, LIMITS, seats)
        assert (event is None) == bool(refusals)
        problems += judge(case, number, [(r.record, r.field, r.message) for r in refusals])
        answered.append((case, bool(refusals)))
    print(summary("check_record", answered))
    assert len(corpus) >= 10_000
    fail_on(problems)


# --- channel 2: tallyroom declare ---------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;]*m")
REFUSAL_LINE = re.compile(r"^record (\d+): (.*)$")


def refusals_in(stderr: bytes) -> dict[int, list[tuple[int, str, str]]]:
    """``record N: field: message`` lines, by record. Fields never contain ": " here."""
    found: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for line in ANSI.sub("", stderr.decode("utf-8", "replace")).split("\n"):
        if match := REFUSAL_LINE.match(line):
            field, _, message = match.group(2).partition(": ")
            found[int(match.group(1))].append((int(match.group(1)), field, message))
    return found


def topic_size(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(**settings.kafka_python_config())
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@pytest.mark.integration
def test_declare_command_answers_each_bad_line_by_record_and_field(corpus, stack):
    settings, env = isolated_settings(stack, "fuzz-declare")
    env |= LIMIT_ENV | {"TALLYROOM_ELECTION": ELECTION, "NO_COLOR": "1", "COLUMNS": "200"}
    stdin = b"".join(case.raw + b"\n" for case in corpus)
    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "declare", "--night", str(NIGHT_DIR), "--no-nominations"],
        input=stdin,
        capture_output=True,
        env=cli_env(env),
        cwd=REPO_ROOT,
        timeout=300,
    )
    found = refusals_in(done.stderr)
    problems = [p for number, case in enumerate(corpus, start=1) for p in judge(case, number, found.get(number, []))]
    answered = [(case, number in found) for number, case in enumerate(corpus, start=1)]
    print(summary("tallyroom declare", answered, f"; it says {done.stdout.decode().strip()!r}"))
    fail_on(problems)
    assert done.returncode == 1
    assert f"{VALID} sent and acknowledged, {BAD} refused" in done.stdout.decode()
    assert topic_size(settings, settings.topic_declarations) == VALID


# --- channel 3: POST /declarations ------------------------------------------------------------

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.mark.integration
def test_http_entry_answers_each_bad_record_by_number_and_field(corpus, stack, night, tmp_path):
    settings, _ = isolated_settings(stack, "fuzz-http")
    operators = OperatorStore(tmp_path / "operators.json")
    settings = settings.model_copy(
        update={
            "max_payload_bytes": LIMITS.max_payload_bytes,
            "max_candidates": LIMITS.max_candidates,
            "operators_file": operators.path,
        }
    )
    # An admin, so that a record is refused for what it holds, never for who sent it.
    ndjson_as_admin = NDJSON | {"authorization": f"Bearer {operators.add('fuzzer', Role.ADMIN)}"}
    ensure_topics(settings)
    # A body that is not UTF-8 is refused whole, so each such case goes alone.
    alone = [case for case in corpus if case.category == "not_utf8"]
    batched = [case for case in corpus if case.category != "not_utf8"]
    problems: list[str] = []
    answered: list[tuple[Case, bool]] = []
    statuses: Counter = Counter()
    with TestClient(create_entry_app(settings, seats=NightSeats.of(night))) as client:
        for case in alone:
            response = client.post("/declarations", content=case.raw, headers=ndjson_as_admin)
            statuses[response.status_code] += 1
            refusals = [(e["record"], e["field"], e["message"]) for e in response.json()["errors"]]
            problems += judge(case, 1, refusals)
            answered.append((case, bool(refusals)))
        for start in range(0, len(batched), HTTP_BATCH):
            batch = batched[start : start + HTTP_BATCH]
            response = client.post("/declarations", content=b"\n".join(c.raw for c in batch), headers=ndjson_as_admin)
            statuses[response.status_code] += 1
            body = response.json()
            valid = sum(case.valid for case in batch)
            if (response.status_code, body["accepted"], body["acknowledged"]) != (422, valid, valid):
                problems.append(
                    f"batch at {start}: {response.status_code}, accepted {body['accepted']}, "
                    f"acknowledged {body['acknowledged']}; {valid} valid in it"
                )
            found: dict[int, list] = defaultdict(list)
            for error in body["errors"]:
                found[error["record"]].append((error["record"], error["field"], error["message"]))
            problems += [
                p for number, case in enumerate(batch, start=1) for p in judge(case, number, found.get(number, []))
            ]
            answered += [(case, number in found) for number, case in enumerate(batch, start=1)]
    print(summary("POST /declarations", answered, f"; responses by status {dict(statuses)}"))
    fail_on(problems)
    assert topic_size(settings, settings.topic_declarations) == VALID


# --- channel 4: raw Kafka, into the real worker -----------------------------------------------


@pytest.fixture(scope="module")
def fuzz_pipeline(stack):
    """A real worker and sink with the test's limits, on topics and Redis DB 14 of their own."""
    settings, env = isolated_settings(stack, "fuzz", FUZZ_REDIS_DB)
    settings = settings.model_copy(
        update={
            "max_payload_bytes": LIMITS.max_payload_bytes,
            "max_candidates": LIMITS.max_candidates,
        }
    )
    env = {**env, **LIMIT_ENV}
    with running_pipeline(settings, env) as pipe:
        yield pipe


def reason_category(reason: str) -> str:
    """A dead letter's reason without its particulars (input quoted, numbers, indices): check and field."""
    if not reason.startswith("invalid event: "):
        return re.sub(r"\d+", "N", re.sub(r"[EWSNL]\d{8}", "<seat>", reason))
    field, _, message = reason.removeprefix("invalid event: ").partition(": ")
    field = re.sub(r"\.\d+(?=\.|$)", ".*", field)
    if message.startswith("Extra inputs"):
        field = field.rsplit(".", 1)[0] + ".<extra>" if "." in field else "<extra>"
    message = message.removeprefix("Value error, ")
    message = re.sub(r"^candidate .* appears twice$", "candidate … appears twice", message)
    message = re.sub(r"^(\"|').*\1 is not an ISO", "'…' is not an ISO", message)  # the input, quoted by repr
    message = re.sub(r"'[^']*'", "'…'", message)
    message = re.split(r" at line|: byte|, got|, invalid", message)[0]
    return f"{field}: {re.sub(r'[0-9]+', 'N', message)[:70]}"


@pytest.mark.integration
def test_worker_dead_letters_each_bad_message_and_counts_each_valid_one(corpus, night, fuzz_pipeline):
    settings, client = fuzz_pipeline.settings, fuzz_pipeline.redis
    ensure_topics(settings)
    topic = settings.topic_declarations
    messages = [(b"null-value", None, "null_value")] * NULL_VALUES + [
        (case.ons_id.encode() if case.valid else (b"bad" if n % 2 else None), case.raw, case.category)
        for n, case in enumerate(corpus)
    ]
    producer = make_producer(settings)
    try:
        producer.send(topic, key=night.election.encode(), value=night.model_dump_json().encode()).get(60)
        futures = [producer.send(topic, key=key, value=value) for key, value, _ in messages]
        producer.flush(120)
        offsets = [future.get(60).offset for future in futures]
    finally:
        producer.close(30)
    wait_until_caught_up(settings, timeout=180)

    assert fuzz_pipeline.worker.process.poll() is None, fuzz_pipeline.worker.log_tail()
    assert fuzz_pipeline.sink.process.poll() is None, fuzz_pipeline.sink.log_tail()
    letters = [DeadLetter.model_validate_json(fields["json"]) for _, fields in client.xrange(DEAD_LETTERS)]
    letters = [letter for letter in letters if letter.topic == topic]
    bad_offsets = {offset for offset, (_, _, category) in zip(offsets, messages) if category != "valid"}
    reasons = Counter(reason_category(letter.reason) for letter in letters)
    print(
        f"\n[fuzz] raw Kafka: {len(messages)} messages ({len(bad_offsets)} bad, "
        f"{len(messages) - len(bad_offsets)} valid); {len(letters)} dead letters; by reason:"
    )
    for reason, n in reasons.most_common():
        print(f"[fuzz]   {n:5d}  {reason}")
    assert len(letters) == len(bad_offsets)
    assert {letter.offset for letter in letters} == bad_offsets

    # Every valid declaration counted: each seat holds its highest revision, sent first.
    latest: dict[str, Case] = {}
    for case in corpus:
        if case.valid and (case.ons_id not in latest or case.revision > latest[case.ons_id].revision):
            latest[case.ons_id] = case
    keys = ElectionKeys(night.election)
    assert int(client.get(keys.declared)) == len(latest)
    held = client.mget([keys.seat(ons_id) for ons_id in latest])
    for (ons_id, case), stored in zip(latest.items(), held):
        seat = SeatResult.model_validate_json(stored)
        sent = json.loads(case.raw)
        assert (seat.revision, seat.valid_votes) == (case.revision, sum(c["votes"] for c in sent["candidates"])), ons_id
    print(
        f"[fuzz] raw Kafka: declared {len(latest)} of {len(night.seats)} seats, one per distinct valid seat; "
        f"worker and sink alive"
    )
