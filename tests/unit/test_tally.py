from tallyroom.streams.tally import Tally, majority_line, seat_result
from tests.factories import cand, decl


def test_majority_line_follows_the_seat_count():
    assert majority_line(650) == 326
    assert majority_line(649) == 325
    assert majority_line(1) == 1
    assert majority_line(10_000) == 5001


def test_winner_and_majority_from_candidate_votes():
    seat = seat_result(decl("E14000001", cand("A", "Lab", 100), cand("B", "Con", 140), cand("C", "LD", 20)), "Lab")
    assert seat.winner.name == "B" and seat.runner_up.name == "A"
    assert seat.majority == 40
    assert seat.valid_votes == 260
    assert seat.party_votes == {"Lab": 100, "Con": 140, "LD": 20}


def test_independents_are_never_pooled_to_find_a_winner():
    # Two independents together outpoll Labour, but each stands alone: Labour wins.
    seat = seat_result(decl("E14000001", cand("A", "Lab", 100), cand("I1", "Ind", 60), cand("I2", "Ind", 70)), "Lab")
    assert seat.winner.name == "A"
    assert seat.runner_up.name == "I2"
    assert seat.majority == 30
    assert seat.party_votes["Ind"] == 130  # the tally may sum them


def test_tally_counts_seats_votes_gains_and_share():
    tally = Tally.open("test", {"E14000001": "Con", "E14000002": "Lab", "E14000003": "Con"})
    for d, held in [
        (decl("E14000001", cand("A", "Lab", 60), cand("B", "Con", 40)), "Con"),
        (decl("E14000002", cand("C", "Lab", 70), cand("D", "Con", 30)), "Lab"),
    ]:
        tally.apply(None, seat_result(d, held))
    snap = tally.snapshot()
    assert (snap.declared, snap.total, snap.majority_line) == (2, 3, 2)
    assert snap.parties["Lab"].seats == 2 and snap.parties["Con"].seats == 0
    assert snap.parties["Lab"].votes == 130 and snap.parties["Con"].votes == 70
    assert snap.parties["Lab"].share == 0.65
    assert (snap.parties["Lab"].gains, snap.parties["Con"].losses) == (1, 1)
    assert snap.parties["Lab"].net == 1 and snap.parties["Con"].net == -1
    assert snap.parties["Con"].held_before == 2
    assert tally.party_with_majority() == "Lab"


def test_a_correction_replaces_the_earlier_contribution_exactly():
    tally = Tally.open("test", {"E14000001": "Con"})
    first = seat_result(decl("E14000001", cand("A", "Lab", 60), cand("B", "Con", 40)), "Con")
    tally.apply(None, first)
    second = seat_result(decl("E14000001", cand("A", "Lab", 50), cand("B", "Con", 55), revision=2), "Con")
    tally.apply(first, second)
    snap = tally.snapshot()
    assert snap.declared == 1
    assert snap.parties["Con"].seats == 1 and snap.parties["Lab"].seats == 0
    assert snap.parties["Con"].votes == 55 and snap.parties["Lab"].votes == 50
    assert snap.parties["Lab"].gains == 0 and snap.parties["Con"].losses == 0
    assert snap.valid_votes == 105
    assert snap.version == 2
