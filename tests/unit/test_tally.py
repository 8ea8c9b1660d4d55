from pathlib import Path

import pytest

from tallyroom.bench.night import NightSpec, SyntheticNight
from tallyroom.producers.nights import load_night
from tallyroom.schemas import Declaration, NightOpened, Withdrawal
from tallyroom.streams.count import Count
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


# --- the snapshot a worker sends: plain data serialised by pydantic-core, byte for byte the model's ------------

DATA = Path(__file__).resolve().parents[2] / "data"


def _night(name: str) -> tuple[NightOpened, list[Declaration]]:
    if name == "synthetic":
        # Corrections of earlier revisions, and more seats than a real night.
        synthetic = SyntheticNight(NightSpec("snapshot-synthetic", 900, 1400))
        return synthetic.opened, list(synthetic.declarations())
    if not (DATA / name).is_dir():
        pytest.skip(f"data/{name} is not shipped in this checkout")
    loaded = load_night(DATA / name, f"{name}-snapshot")
    return loaded.opened, list(loaded.declarations)


@pytest.mark.parametrize("name", ["ge2024", "ge2019", "synthetic"])
def test_the_snapshot_json_a_worker_sends_is_the_validated_snapshot_byte_for_byte(name):
    opened, declarations = _night(name)
    count = Count()
    count.open_night(opened)
    book = count.books[opened.election]
    assert book.tally.snapshot_json() == book.tally.snapshot().model_dump_json().encode()  # nothing declared
    corrections = 0
    for declaration in declarations:
        outcome = count.declare(declaration, snapshot=False)
        corrections += declaration.revision > 1 and outcome.update is not None
        assert book.tally.snapshot_json() == book.tally.snapshot().model_dump_json().encode(), declaration.ons_id
    snapshot = book.tally.snapshot()
    assert snapshot.declared == len({d.ons_id for d in declarations}) and snapshot.parties
    if opened.election.startswith("snapshot-synthetic"):
        assert corrections > 0
    else:
        assert snapshot.swing is not None and snapshot.compared > 0  # the real nights carry previous figures
    # A withdrawn result leaves the tally; the bytes still agree.
    first = declarations[0]
    withdrawal = Withdrawal(
        election=first.election,
        ons_id=first.ons_id,
        revision=book.revisions[first.ons_id] + 1,
        reason="a test",
        withdrawn_at=first.declared_at,
    )
    assert count.withdraw(withdrawal, snapshot=False).update is not None
    assert book.tally.snapshot().declared == snapshot.declared - 1
    assert book.tally.snapshot_json() == book.tally.snapshot().model_dump_json().encode()
