"""The worker's batch code (``Tallier``) with a broker and tables in memory: what it sends,
stores, dead-letters and quarantines, and that a failure never skips an event."""

from __future__ import annotations

import asyncio
import json

import pytest

from tallyroom.schemas import DeadLetter, RecountNotice, ResultUpdate
from tallyroom.settings import Settings
from tallyroom.streams import faults
from tallyroom.streams.app import OffsetHole, Received, StallWatch, Tallier
from tallyroom.streams.count import Count
from tallyroom.streams.inmemory import MemoryBroker, MemoryTables
from tallyroom.streams.rules import evaluate
from tests.factories import cand, decl, night

HELD = {"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"}
SETTINGS = Settings(
    topic_declarations="decl", topic_alerts="alerts", topic_results="results", topic_dead_letters="dead"
)


def tallier(broker: MemoryBroker, tables: MemoryTables | None = None, count: Count | None = None) -> Tallier:
    return Tallier(SETTINGS, count or Count(), broker.send, tables or MemoryTables(), lambda topic: 1)


def received(events, start: int = 0) -> list[Received]:
    return [
        Received("decl", 0, start + i, b"test", e if isinstance(e, bytes) else e.model_dump_json().encode())
        for i, e in enumerate(events)
    ]


def run(t: Tallier, events) -> None:
    asyncio.run(t.count_batch(received(events)))


def updates(broker: MemoryBroker) -> list[ResultUpdate]:
    return [ResultUpdate.model_validate_json(v) for v in broker.on("results")]


def dead_letters(broker: MemoryBroker) -> list[DeadLetter]:
    return [DeadLetter.model_validate_json(v) for v in broker.on("dead")]


def three_seats() -> list:
    return [
        night(HELD),
        decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)),
        decl("E14000002", cand("C", "Lab", 4000), cand("D", "Con", 1000)),
        decl("E14000003", cand("E", "LD", 900), cand("F", "Con", 800)),
    ]


def test_a_batch_sends_alerts_and_updates_then_stores_its_seats():
    broker, tables = MemoryBroker(), MemoryTables()
    run(tallier(broker, tables), three_seats())
    topics = [topic for topic, *_ in broker.records]
    # Everything on the results topic comes before the changelog writes that record the seats as counted.
    assert topics.index("worker-seats-changelog") > max(i for i, t in enumerate(topics) if t == "results")
    assert sorted(tables.seats) == ["test/E14000001", "test/E14000002", "test/E14000003"]
    opened, *seats = updates(broker)
    # The opening lists every seat of the night for readers, with the tally before any declares.
    assert [s.ons_id for s in opened.night or []] == ["E14000001", "E14000002", "E14000003"]
    assert opened.seat is None and opened.tally is not None and opened.tally.declared == 0
    tally = seats[-1].tally
    assert tally is not None and tally.declared == 3
    assert [u.tally for u in seats[:-1]] == [None, None]  # one snapshot per batch, on the last update
    assert all(u.night is None for u in seats)
    assert "test" in tables.stored_nights


def test_an_update_is_written_as_pydantic_writes_it_and_its_alerts_as_on_the_alerts_topic():
    # The worker joins an update from the seat's, the alerts' and the tally's JSON, each serialised
    # once (UpdateParts); the bytes must be the ones ResultUpdate.model_dump_json would write.
    broker = MemoryBroker()
    events = [
        *three_seats(),
        decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 4990), revision=2),
        RecountNotice(election="test", ons_id="E14000003", announced_at="2024-07-05T03:00:00+01:00"),
    ]
    run(tallier(broker), events)
    raws = broker.on("results")
    assert len(raws) == 6 and any(u.alerts for u in updates(broker)) and updates(broker)[-1].seat is None
    for raw in raws:
        assert ResultUpdate.model_validate_json(raw).model_dump_json().encode() == raw
    carried = [alert.model_dump_json().encode() for update in updates(broker) for alert in update.alerts]
    assert carried == broker.on("alerts")


def test_a_night_sent_again_unchanged_publishes_nothing_new():
    broker, tables = MemoryBroker(), MemoryTables()
    t = tallier(broker, tables)
    run(t, three_seats())
    before = len(updates(broker))
    asyncio.run(t.count_batch(received([night(HELD)], start=4)))
    assert len(updates(broker)) == before


def test_opening_a_night_publishes_its_empty_tally_once():
    """Readers know the election (its seats, majority line, who held what) from the opening, not its first result."""
    broker, tables = MemoryBroker(), MemoryTables()
    t = tallier(broker, tables)
    run(t, [night(HELD)])
    (opened,) = updates(broker)
    assert opened.election == "test" and opened.seat is None and not opened.alerts
    assert opened.tally is not None
    assert (opened.tally.declared, opened.tally.total, opened.tally.majority_line) == (0, 3, 2)
    assert {p: t.held_before for p, t in opened.tally.parties.items()} == {"Con": 1, "Lab": 1, "LD": 1}
    asyncio.run(t.count_batch(received([night(HELD)], start=1)))  # the same opening again (a replay re-run)
    assert len(updates(broker)) == 1


def test_a_rule_that_raises_dead_letters_that_declaration_only():
    broker, tables = MemoryBroker(), MemoryTables()
    count = Count(evaluate=faults.failing_rules_for_seat(evaluate, "E14000002"))
    run(tallier(broker, tables, count), three_seats())
    letters = dead_letters(broker)
    assert len(letters) == 1
    assert letters[0].offset == 2 and letters[0].key == "test"
    assert "InjectedFault" in letters[0].reason and "E14000002" in letters[0].reason
    assert sorted(tables.seats) == ["test/E14000001", "test/E14000003"]
    tally = updates(broker)[-1].tally
    # Exactly the two seats that were counted: the failed one left nothing behind.
    assert tally.declared == 2
    assert {p: t.votes for p, t in tally.parties.items() if t.votes} == {"Lab": 5000, "Con": 3800, "LD": 900}
    assert tally.version == 2


def test_a_failed_send_raises_and_stores_nothing():
    broker, tables = MemoryBroker(fail=RuntimeError("broker gone")), MemoryTables()
    with pytest.raises(RuntimeError, match="broker gone"):
        run(tallier(broker, tables), three_seats())
    assert tables.seats == {}


def test_the_flush_trigger_fails_one_batch(tmp_path):
    trigger = tmp_path / "fail-next-flush"
    trigger.touch()
    broker, tables = MemoryBroker(), MemoryTables()
    t = Tallier(
        SETTINGS.model_copy(update={"fault_flush_trigger": trigger}), Count(), broker.send, tables, lambda topic: 1
    )
    with pytest.raises(faults.InjectedFault):
        run(t, three_seats())
    assert tables.seats == {} and not trigger.exists()


def stored_tables(*, bad_party: str | None = None, garbage: bool = False) -> tuple[MemoryTables, int]:
    """Tables as a worker left them: two elections, three seats each."""
    broker, tables = MemoryBroker(), MemoryTables()
    t = tallier(broker, tables)
    run(t, three_seats())
    other = [night(HELD, election="other")] + [
        decl(ons_id, cand("A", "Lab", 10), cand("B", "Con", 20), election="other") for ons_id in HELD
    ]
    asyncio.run(t.count_batch(received(other, start=4)))
    key = "test/E14000002"
    value = json.loads(tables.seats[key])
    if bad_party:
        value["candidates"][0]["party"] = value["winner"]["party"] = bad_party
        value["party_votes"] = {bad_party: 4000, "Con": 1000}
    if garbage:
        value["revision"] = "two"
    tables.seats[key] = json.dumps(value).encode()
    tables.origins[("seats", key)] = ("worker-seats-changelog", 0, 41)
    return tables, updates(broker)[-1].tally.version


def test_a_stored_label_longer_than_entry_allows_is_read_not_refused():
    tables, _ = stored_tables(bad_party="P" * 46)  # an older or newer release wrote it
    broker = MemoryBroker()
    t = tallier(broker, tables)
    run(t, [decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3001), revision=2)])
    assert dead_letters(broker) == []
    assert updates(broker)[-1].tally.parties["P" * 46].seats == 1


def test_an_unreadable_stored_seat_is_quarantined_and_the_rest_rebuilds():
    tables, version_before = stored_tables(garbage=True)
    broker = MemoryBroker()
    t = tallier(broker, tables)
    run(t, [decl("E14000003", cand("E", "LD", 900), cand("F", "Con", 801), revision=2)])
    (letter,) = dead_letters(broker)
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("worker-seats-changelog", 0, 41, "test")
    assert "revision" in letter.reason and "unreadable stored seat result" in letter.reason
    tally = t.count.snapshot("test")
    assert tally.declared == 2  # the quarantined seat is undeclared; E14000001 and E14000003 stand
    assert {p: s.votes for p, s in tally.parties.items() if s.votes} == {"Lab": 5000, "Con": 3801, "LD": 900}
    other = t.count.snapshot("other")
    assert other.declared == 3 and other.parties["Con"].seats == 3
    assert "test/E14000002" in tables.seats  # kept for a release that can read it


def test_a_quarantined_seat_keeps_the_tally_version_from_going_back():
    tables, version_before = stored_tables(bad_party=None)
    value = json.loads(tables.seats["test/E14000002"])
    value["winner"] = "unreadable"  # JSON with a readable revision
    tables.seats["test/E14000002"] = json.dumps(value).encode()
    broker = MemoryBroker()
    t = tallier(broker, tables)
    run(t, [decl("E14000003", cand("E", "LD", 900), cand("F", "Con", 801), revision=2)])
    # Version is the sum of revisions, the unreadable seat's included: readers keep only newer tallies.
    assert updates(broker)[-1].tally.version == version_before + 1
    # Its revision is still held: a re-delivery is ignored, a newer revision replaces it exactly.
    run(t, [decl("E14000002", cand("C", "Lab", 4000), cand("D", "Con", 1000))])
    assert len(updates(broker)) == 1
    run(t, [decl("E14000002", cand("C", "Lab", 4100), cand("D", "Con", 1000), revision=2)])
    tally = updates(broker)[-1].tally
    assert tally.declared == 3 and tally.version == version_before + 2
    assert tally.parties["Lab"].votes == 9100


def test_an_unreadable_stored_night_is_quarantined_and_other_elections_rebuild():
    tables, _ = stored_tables()
    tables.stored_nights["test"] = {"kind": "night", "election": "test", "seats": "none"}
    tables.origins[("nights", "test")] = ("worker-nights-changelog", 0, 3)
    broker = MemoryBroker()
    t = tallier(broker, tables)
    run(t, [decl("E14000001", cand("A", "Lab", 10), cand("B", "Con", 21), election="other", revision=2)])
    (letter,) = dead_letters(broker)
    assert (letter.topic, letter.offset, letter.key) == ("worker-nights-changelog", 3, "test")
    assert "test" not in t.count.books
    assert t.count.snapshot("other").parties["Con"].votes == 61


def test_events_of_one_batch_that_fail_to_parse_are_dead_lettered_and_the_rest_counted():
    broker, tables = MemoryBroker(), MemoryTables()
    events = three_seats()
    events.insert(2, b'{"kind": "declaration", "election": "test"}')
    run(tallier(broker, tables), events)
    (letter,) = dead_letters(broker)
    assert letter.offset == 2 and letter.reason.startswith("invalid event")
    assert updates(broker)[-1].tally.declared == 3


def sample(t: Tallier, name: str, **labels: str) -> float:
    value = t.metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_the_worker_counts_its_events_by_outcome_and_its_dead_letters_by_reason():
    broker, tables = MemoryBroker(), MemoryTables()
    count = Count(evaluate=faults.failing_rules_for_seat(evaluate, "E14000003"))
    t = tallier(broker, tables, count)
    events = three_seats() + [three_seats()[1], b"{}"]  # a re-delivery, and a record that is no event
    run(t, events)
    assert sample(t, "tallyroom_worker_events_total", outcome="counted") == 3  # the night and two seats
    assert sample(t, "tallyroom_worker_events_total", outcome="ignored") == 1
    assert sample(t, "tallyroom_worker_events_total", outcome="dead_lettered") == 2
    assert sample(t, "tallyroom_worker_dead_letters_total", reason="could_not_count") == 1
    assert sample(t, "tallyroom_worker_dead_letters_total", reason="invalid") == 1
    assert sample(t, "tallyroom_worker_batch_seconds_count") == 1


def test_a_batch_past_a_hole_in_the_offsets_is_refused_whole_and_nothing_of_it_counted():
    broker, tables = MemoryBroker(), MemoryTables()
    t = tallier(broker, tables)
    seats = three_seats()
    run(t, seats[:2])  # offsets 0 and 1
    sent = len(broker.records)
    later = received(seats[2:], start=2)
    with pytest.raises(OffsetHole, match="handed offset 3 while the next is 2: records 2-2 never reached"):
        asyncio.run(t.count_batch(later[1:]))
    assert len(broker.records) == sent and list(tables.seats) == ["test/E14000001"]


def test_a_record_handed_again_after_a_seek_back_is_not_a_hole():
    broker = MemoryBroker()
    t = tallier(broker)
    events = received(three_seats())
    asyncio.run(t.count_batch(events[:3]))
    asyncio.run(t.count_batch(events[1:]))  # 1 and 2 again, then 3
    assert len(updates(broker)) == 1 + 3  # the opening, then each seat once: the repeats were ignored


def look(watch: StallWatch, next_offset: int, end_offset: int, generation: int = 1, batches: int = 4) -> bool:
    return watch.stalled(
        "decl", 0, generation=generation, batches=batches, next_offset=next_offset, end_offset=end_offset
    )


def test_records_past_the_next_offset_at_two_looks_in_a_row_are_a_stall():
    watch = StallWatch()
    assert not look(watch, 651, 652)  # one look: the record may be on its way
    assert look(watch, 651, 652)
    assert look(watch, 651, 652)  # still stalled


def test_a_partition_counted_up_to_its_end_is_never_stalled():
    watch = StallWatch()
    assert not look(watch, 652, 652)
    assert not look(watch, 652, 652)


@pytest.mark.parametrize(
    "second",
    [
        {"batches": 5},  # a batch began between the looks: the record may be in it
        {"generation": 2},  # a rebalance between the looks
        {"next_offset": 652, "end_offset": 653},  # counting moved on, and another record came
        {"end_offset": 653},  # another record came: it may be on its way
    ],
)
def test_anything_that_moved_between_the_looks_starts_the_watch_again(second):
    watch = StallWatch()
    assert not look(watch, 651, 652)
    assert not look(watch, **{"next_offset": 651, "end_offset": 652, **second})


def test_a_batch_or_rebalance_under_way_forgets_what_was_seen():
    watch = StallWatch()
    assert not look(watch, 651, 652)
    watch.forget()
    assert not look(watch, 651, 652)


def test_the_next_offset_to_count_is_the_groups_until_a_batch_after_a_rebalance_is_counted():
    resumes = {("decl", 0): 5}

    async def committed(topic: str, partition: int) -> int | None:
        return resumes.get((topic, partition))

    t = Tallier(SETTINGS, Count(), MemoryBroker().send, MemoryTables(), lambda topic: 1, committed=committed)
    assert asyncio.run(t.next_to_count("decl", 0)) == 5
    events = received(three_seats(), start=5)
    asyncio.run(t.count_batch(events))
    assert (t.batches, t.in_batch) == (1, False)
    assert asyncio.run(t.next_to_count("decl", 0)) == 5 + len(events)
    t.books_stale = True  # a rebalance: another worker counted on, and the group resumes at 20
    resumes[("decl", 0)] = 20
    assert asyncio.run(t.next_to_count("decl", 0)) == 20


def test_the_first_record_after_a_rebalance_must_be_where_the_group_resumes():
    resumes = {("decl", 0): 5}

    async def committed(topic: str, partition: int) -> int | None:
        return resumes.get((topic, partition))

    broker = MemoryBroker()
    t = Tallier(SETTINGS, Count(), broker.send, MemoryTables(), lambda topic: 1, committed=committed)
    with pytest.raises(OffsetHole, match="records 5-6 never reached"):
        asyncio.run(t.count_batch(received(three_seats(), start=7)))
    asyncio.run(t.count_batch(received(three_seats(), start=5)))
    t.books_stale = True  # a rebalance: the group resumes at 9 now
    resumes[("decl", 0)] = 9
    asyncio.run(t.count_batch(received(three_seats()[1:2], start=9)))
    assert len(updates(broker)) == 1 + 3


def test_the_lose_fault_drops_the_first_declarations_record_once_per_trigger(tmp_path):
    handed = []

    async def callback(message):
        handed.append((message.topic, message.offset))

    trigger = tmp_path / "lose-the-next-record"
    lose = faults.losing_a_record_once(callback, "decl", trigger)

    def message(topic: str, offset: int):
        from types import SimpleNamespace

        return SimpleNamespace(topic=topic, partition=0, offset=offset)

    async def hand(*messages) -> None:
        for m in messages:
            await lose(m)

    asyncio.run(hand(message("decl", 0)))
    trigger.touch()
    asyncio.run(hand(message("changelog", 7), message("decl", 1), message("decl", 2)))
    assert handed == [("decl", 0), ("changelog", 7), ("decl", 2)] and not trigger.exists()
