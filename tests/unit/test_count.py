"""The count keeps each seat's latest result itself, and rebuilds it from the stored seats."""

from tallyroom.streams.count import Count
from tests.factories import cand, decl, night

HELD = {"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"}


def test_the_count_holds_the_latest_result_of_each_seat():
    count = Count()
    count.open_night(night(HELD))
    assert count.held("test", "E14000001") is None
    count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    count.declare(decl("E14000001", cand("A", "Lab", 5200), cand("B", "Con", 3000), revision=2))
    held = count.held("test", "E14000001")
    assert held.revision == 2 and held.party_votes == {"Lab": 5200, "Con": 3000}
    assert count.held("other-election", "E14000001") is None


def test_a_count_rebuilt_from_stored_seats_carries_on_exactly():
    first = Count()
    first.open_night(night(HELD))
    stored = [
        first.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000))).update.seat,
        first.declare(decl("E14000002", cand("C", "Lab", 4000), cand("D", "Con", 1000))).update.seat,
    ]

    rebuilt = Count()  # a restarted worker: the seats come back from its table
    rebuilt.open_night(night(HELD), stored)
    # A re-delivered declaration is ignored; the next revision replaces the stored one exactly.
    assert rebuilt.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000))).ignored
    outcome = rebuilt.declare(decl("E14000001", cand("A", "Con", 100), cand("B", "Lab", 90), revision=2))
    tally = outcome.update.tally
    assert tally.declared == 2
    assert {p: t.votes for p, t in tally.parties.items() if t.votes} == {"Lab": 4090, "Con": 1100}
    assert {p: t.seats for p, t in tally.parties.items() if t.seats} == {"Lab": 1, "Con": 1}


def test_stored_seats_in_any_order_keep_only_the_newest_revision():
    first = Count()
    first.open_night(night(HELD))
    r1 = first.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000))).update.seat
    r2 = first.declare(decl("E14000001", cand("A", "Lab", 6000), cand("B", "Con", 3000), revision=2)).update.seat
    rebuilt = Count()
    rebuilt.open_night(night(HELD), [r2, r1])
    assert rebuilt.held("test", "E14000001").revision == 2
    assert rebuilt.snapshot("test").parties["Lab"].votes == 6000 and rebuilt.snapshot("test").declared == 1


def test_a_count_rebuilt_from_the_seat_tables_json_keeps_it_as_it_is():
    first = Count()
    first.open_night(night(HELD))
    outcome = first.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    assert outcome.stored == outcome.update.seat.model_dump_json().encode()

    rebuilt = Count()
    rebuilt.open_night(night(HELD), stored=[outcome.stored])
    assert rebuilt.books["test"].results["E14000001"] is outcome.stored  # shared, not copied
    assert rebuilt.held("test", "E14000001") == outcome.update.seat
    assert rebuilt.snapshot("test") == first.snapshot("test")


class NothingKept(dict):
    """A ``Book.raised`` that keeps nothing: every correction runs the rules on its predecessor again."""

    def __setitem__(self, key, value):
        pass


def test_a_correction_comes_out_the_same_whether_the_count_kept_its_predecessor_and_its_alerts_or_not():
    from bench.night import NightSpec, SyntheticNight

    synthetic = SyntheticNight(NightSpec("kept-raised", 300, 2000))
    kept, rerun = Count(), Count()
    for count in (kept, rerun):
        count.open_night(synthetic.opened)
    rerun.books["kept-raised"].raised = NothingKept()
    rerun.recent.limit = 0  # every predecessor parsed from its JSON
    declared_gains = raised_gains = 0
    for declaration in synthetic.declarations():
        one, other = kept.declare(declaration), rerun.declare(declaration)
        assert [a.model_dump_json() for a in one.alerts] == [a.model_dump_json() for a in other.alerts]
        assert one.stored == other.stored
        declared_gains += one.update.seat.winning_party != one.update.seat.held_by
        raised_gains += sum(a.kind == "gain" for a in one.alerts)
    assert len(kept.books["kept-raised"].raised) == 300
    corrected = {d.ons_id for d in synthetic.declarations() if d.revision > 1}
    assert {ons_id for _, ons_id in kept.recent.models} == corrected and not rerun.recent.models
    assert kept.snapshot_json("kept-raised") == rerun.snapshot_json("kept-raised")
    assert raised_gains < declared_gains  # corrections kept a gain already raised from being raised again


def test_the_count_keeps_at_most_its_limit_of_recent_results_as_models():
    count = Count()
    count.recent.limit = 2
    count.open_night(night(HELD))
    book = count.books["test"]
    for revision in (1, 2):
        for ons_id in HELD:
            count.declare(decl(ons_id, cand("A", "Lab", 5000 + revision), cand("B", "Con", 3000), revision=revision))
        if revision == 1:
            assert not count.recent.models  # a first result is not kept as a model
    assert list(count.recent.models) == [("test", "E14000002"), ("test", "E14000003")]  # the oldest went first
    # The one no longer kept as a model is read from its JSON, the same.
    assert count.held("test", "E14000001").model_dump_json().encode() == book.results["E14000001"]


def test_a_model_kept_for_bytes_the_book_no_longer_holds_is_never_read():
    count = Count()
    count.open_night(night(HELD))
    count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    kept = count.declare(decl("E14000001", cand("A", "Lab", 5001), cand("B", "Con", 3000), revision=2)).update.seat
    assert count.held("test", "E14000001") is kept
    # The book comes to hold other bytes for the seat without keeping a model for them.
    count.books["test"].results["E14000001"] = kept.model_copy(update={"majority": 1999}).model_dump_json().encode()
    assert count.held("test", "E14000001").majority == 1999
