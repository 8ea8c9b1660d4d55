"""Rushes and withdrawals in the pure count: the tally exact at each step, re-deliveries harmless."""

from __future__ import annotations

from datetime import timedelta

from tallyroom.schemas import AlertKind, Rush, SeatResult, Withdrawal
from tallyroom.streams.count import Count, RecordAt
from tests.factories import T0, cand, decl, night

SEAT, OTHER = "E14000001", "E14000002"
HELD = {SEAT: "Con", OTHER: "Lab"}


def opened() -> Count:
    count = Count()
    count.open_night(night(HELD))
    return count


def rush(party: str, name: str | None = None, minutes: int = -5) -> Rush:
    return Rush(election="test", ons_id=SEAT, party=party, candidate=name, announced_at=T0 + timedelta(minutes=minutes))


def withdrawal(revision: int, reason: str = "wrong ballot box counted") -> Withdrawal:
    return Withdrawal(
        election="test", ons_id=SEAT, revision=revision, reason=reason, withdrawn_at=T0 + timedelta(minutes=20)
    )


def result(*candidates, revision: int = 1):
    return decl(SEAT, *candidates, revision=revision)


def seats_votes(count: Count) -> tuple[dict, dict, int, int]:
    snap = count.snapshot("test")
    seats = {p: t.seats for p, t in snap.parties.items() if t.seats}
    votes = {p: t.votes for p, t in snap.parties.items() if t.votes}
    return seats, votes, snap.declared, snap.version


def test_a_rush_counts_the_seat_but_not_the_declaration_or_votes_then_the_result_replaces_it():
    count = opened()
    outcome = count.rush(rush("Lab", "Ann"))
    (alert,) = outcome.alerts
    assert alert.kind is AlertKind.RUSH
    assert alert.headline == f"Lab GAIN Seat {SEAT} from Con (Ann), figures to follow"
    assert alert.facts["gain"] is True
    assert seats_votes(count)[:3] == ({"Lab": 1}, {}, 0)
    assert count.snapshot("test").parties["Lab"].gains == 1
    version_after_rush = seats_votes(count)[3]
    assert version_after_rush > 0  # the sink writes only newer tallies

    outcome = count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000)))
    kinds = [a.kind for a in outcome.alerts]
    assert AlertKind.GAIN in kinds and AlertKind.CORRECTION not in kinds  # the rush was right
    seats, votes, declared, version = seats_votes(count)
    assert (seats, votes, declared) == ({"Lab": 1}, {"Lab": 5000, "Con": 3000}, 1)
    assert version > version_after_rush
    assert count.snapshot("test").parties["Lab"].gains == 1


def test_a_hold_is_rushed_as_a_hold():
    (alert,) = opened().rush(rush("Con")).alerts
    assert alert.headline == f"Con HOLD Seat {SEAT}, figures to follow" and alert.facts["gain"] is False


def test_a_result_that_contradicts_its_rush_raises_a_correction():
    count = opened()
    count.rush(rush("Lab"))
    outcome = count.declare(result(cand("Bob", "Con", 5000), cand("Ann", "Lab", 4000)))
    (correction,) = [a for a in outcome.alerts if a.kind is AlertKind.CORRECTION]
    assert correction.headline == f"CORRECTION Seat {SEAT}: Bob (Con) wins, not Lab as rushed"
    assert correction.facts["rushed_party"] == "Lab"
    assert seats_votes(count)[:3] == ({"Con": 1}, {"Con": 5000, "Lab": 4000}, 1)
    assert count.snapshot("test").parties["Lab"].gains == 0


def test_a_rush_redelivered_or_after_the_result_changes_nothing():
    count = opened()
    count.rush(rush("Lab"))
    before = seats_votes(count)
    assert count.rush(rush("Lab")).ignored
    assert count.rush(rush("Con")).ignored
    assert seats_votes(count) == before
    count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000)))
    after = seats_votes(count)
    assert count.rush(rush("Lab")).ignored and seats_votes(count) == after


def test_a_withdrawal_undeclares_the_seat_exactly_and_a_later_revision_declares_it_again():
    count = opened()
    count.declare(decl(OTHER, cand("Cy", "Lab", 100), cand("Di", "Con", 50)))
    count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000)))
    before_seat = seats_votes(count)

    outcome = count.withdraw(withdrawal(2))
    (alert,) = outcome.alerts
    assert alert.kind is AlertKind.WITHDRAWN and "wrong ballot box counted" in alert.headline
    assert outcome.update.seat.status == "withdrawn"
    seats, votes, declared, version = seats_votes(count)
    assert (seats, votes, declared) == ({"Lab": 1}, {"Lab": 100, "Con": 50}, 1)
    assert count.snapshot("test").parties["Lab"].gains == 0
    assert version > before_seat[3]

    assert count.withdraw(withdrawal(2)).ignored  # re-delivered
    assert count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000))).ignored  # the withdrawn one
    assert count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000), revision=2)).ignored

    again = count.declare(result(cand("Ann", "Lab", 5100), cand("Bob", "Con", 3000), revision=3))
    assert AlertKind.GAIN in [a.kind for a in again.alerts]  # raised anew: the seat was undeclared
    assert AlertKind.CORRECTION not in [a.kind for a in again.alerts]
    seats, votes, declared, version_again = seats_votes(count)
    assert (seats, votes, declared) == ({"Lab": 2}, {"Lab": 5200, "Con": 3050}, 2)
    assert version_again > version


def test_withdrawing_a_seat_without_a_result_is_refused():
    assert opened().withdraw(withdrawal(2)).rejected == f"seat {SEAT} of test has no result to withdraw"


def test_a_rushed_then_withdrawn_seat_can_be_rushed_again_and_every_step_raises_the_version():
    count = opened()
    versions = [seats_votes(count)[3]]
    steps = [
        lambda: count.rush(rush("Lab")),
        lambda: count.withdraw(withdrawal(2, "rushed in error")),
        lambda: count.rush(rush("Con")),
        lambda: count.declare(result(cand("Bob", "Con", 10), cand("Ann", "Lab", 5), revision=3)),
    ]
    ids = []
    for step in steps:
        outcome = step()
        assert not (outcome.ignored or outcome.rejected), outcome
        ids += [a.id for a in outcome.alerts]
        versions.append(seats_votes(count)[3])
    assert versions == sorted(set(versions))  # strictly growing
    assert len(ids) == len(set(ids))
    assert seats_votes(count)[:3] == ({"Con": 1}, {"Con": 10, "Lab": 5}, 1)


def test_a_count_rebuilt_from_stored_rushes_and_withdrawals_is_the_same():
    first = opened()
    stored = {}
    at = RecordAt("t", 0, 0)
    stored[SEAT] = first.rush(rush("Lab"), at).stored
    stored[OTHER] = first.declare(decl(OTHER, cand("Cy", "Lab", 100), cand("Di", "Con", 50)), at=at).stored
    stored[OTHER] = first.withdraw(withdrawal(2).model_copy(update={"ons_id": OTHER}), at).stored
    rebuilt = Count()
    rebuilt.open_night(night(HELD), stored=list(stored.values()))
    assert rebuilt.snapshot("test") == first.snapshot("test")
    assert SeatResult.model_validate_json(stored[SEAT]).status == "rush"
    assert rebuilt.rush(rush("Lab")).ignored


def test_the_rush_that_takes_a_party_over_the_line_raises_its_majority_once():
    count = Count()
    count.open_night(night({SEAT: "Con", OTHER: "Lab", "E14000003": "LD"}))  # a majority is two
    count.declare(decl(OTHER, cand("Cy", "Lab", 100), cand("Di", "Con", 50)))
    outcome = count.rush(rush("Lab"))
    assert [a.kind for a in outcome.alerts] == [AlertKind.RUSH, AlertKind.MAJORITY_REACHED]
    result_alerts = count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000))).alerts
    assert AlertKind.MAJORITY_REACHED not in [a.kind for a in result_alerts]  # already over it


def test_the_public_seat_page_says_a_rush_is_provisional_and_a_withdrawn_result_does_not_stand():
    from tallyroom.consumers.web.view import seat_verdict

    count = opened()
    rushed = count.rush(rush("Lab")).update.seat
    assert seat_verdict(rushed) == "Lab gain from Con (rush: figures to follow)"
    declared = count.declare(result(cand("Ann", "Lab", 5000), cand("Bob", "Con", 3000))).update.seat
    assert seat_verdict(declared) == "Lab gain from Con"
    withdrawn = count.withdraw(withdrawal(2, "wrong box")).update.seat
    assert seat_verdict(withdrawn) == "Result withdrawn: wrong box"
