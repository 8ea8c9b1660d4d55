"""One test (at least) per upset rule, with hand-made declarations and no Kafka."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tallyroom.producers.nights import load_night
from tallyroom.schemas import AlertKind, RecountNotice, Rush, Withdrawal
from tallyroom.streams.count import Count
from tallyroom.streams.rules import RuleConfig, seat_summary, seat_summary_json
from tests.factories import cand, decl, night


def kinds(outcome):
    return sorted(a.kind.value for a in outcome.alerts)


def counted(held: dict, config: RuleConfig | None = None) -> Count:
    count = Count(config)
    count.open_night(night(held))
    return count


def test_gain_when_the_winner_differs_from_the_holder():
    count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
    outcome = count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    assert kinds(outcome) == ["gain"]
    gain = outcome.alerts[0]
    assert gain.facts["held_by"] == "Con" and gain.facts["winner_party"] == "Lab"
    assert "GAIN" in gain.headline and "from Con" in gain.headline


def test_hold_raises_nothing():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    assert kinds(count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))) == []


def test_independent_gain():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(decl("E14000001", cand("I", "Ind", 5000), cand("L", "Lab", 3000)))
    assert kinds(outcome) == ["gain", "independent_gain"]


def test_independent_holding_an_independent_seat_is_not_a_gain():
    count = counted({"E14000001": "Ind", "E14000002": "Con", "E14000003": "LD"})
    assert kinds(count.declare(decl("E14000001", cand("I", "Ind", 5000), cand("L", "Lab", 3000)))) == []


def test_incumbent_defeated_names_each_sitting_mp_who_lost():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(
        decl(
            "E14000001",
            cand("Ashworth", "Lab", 13760, sitting=True),
            cand("Adam", "Ind", 14739),
            cand("Other MP", "Con", 2000, sitting=True),
        )
    )
    defeated = sorted(a.facts["defeated"] for a in outcome.alerts if a.kind == AlertKind.INCUMBENT_DEFEATED)
    assert defeated == ["Ashworth", "Other MP"]
    assert len({a.id for a in outcome.alerts}) == len(outcome.alerts)


def test_sitting_mp_who_wins_is_not_defeated():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(decl("E14000001", cand("A", "Lab", 9000, sitting=True), cand("B", "Con", 100)))
    assert AlertKind.INCUMBENT_DEFEATED not in kinds(outcome)


def test_marginal_by_votes_and_by_share():
    config = RuleConfig(marginal_votes=1000, marginal_share=0.02)
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"}, config)
    assert "marginal" in kinds(count.declare(decl("E14000001", cand("A", "Lab", 5999), cand("B", "Con", 5000))))
    # 1,500 majority of 100,000 valid votes is under 2%.
    big = decl("E14000002", cand("A", "Con", 50_750), cand("B", "Lab", 49_250))
    assert "marginal" in kinds(count.declare(big))
    safe = decl("E14000003", cand("A", "LD", 7000), cand("B", "Con", 5000))
    assert "marginal" not in kinds(count.declare(safe))


def test_near_upset_by_an_outsider_when_the_holder_survives():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(
        decl("E14000001", cand("Streeting", "Lab", 15647), cand("Mohamad", "Ind", 15119), cand("C", "Con", 4000))
    )
    near = [a for a in outcome.alerts if a.kind == AlertKind.NEAR_UPSET]
    assert len(near) == 1 and near[0].facts["challenger"] == "Mohamad" and near[0].facts["gap"] == 528


def test_close_challenge_from_a_party_that_held_seats_is_not_a_near_upset():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(decl("E14000001", cand("A", "Lab", 10000), cand("B", "Con", 9800)))
    assert "near_upset" not in kinds(outcome) and "marginal" in kinds(outcome)


def test_small_party_close_behind_is_a_near_upset():
    count = counted({"E14000001": "Lab", "E14000002": "Con", "E14000003": "LD"})
    outcome = count.declare(decl("E14000001", cand("A", "Lab", 11275), cand("B", "WPB", 10582)))
    assert "near_upset" in kinds(outcome)


def test_majority_reached_once_at_the_declaration_that_crossed_the_line():
    held = {f"E1400000{i}": "Con" for i in range(1, 6)}
    count = counted(held)  # 5 seats -> 3 needed
    seen = []
    for i in range(1, 6):
        outcome = count.declare(decl(f"E1400000{i}", cand("A", "Lab", 100), cand("B", "Con", 50)))
        seen.append([a for a in outcome.alerts if a.kind == AlertKind.MAJORITY_REACHED])
    assert [len(s) for s in seen] == [0, 0, 1, 0, 0]
    assert seen[2][0].facts.model_dump() == {
        "party": "Lab",
        "seats": 3,
        "majority_line": 3,
        "clinching_seat": "Seat E14000003",
    }


def test_correction_replaces_and_raises_one_correction_alert():
    count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
    first = count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000)))
    assert kinds(first) == ["gain"]
    second = count.declare(decl("E14000001", cand("A", "Lab", 5100), cand("B", "Con", 3000), revision=2))
    # Still a gain, already alerted for revision 1: only the correction is new.
    assert kinds(second) == ["correction"]
    assert second.alerts[0].facts["vote_changes"] == {"A": 100}
    assert second.update.tally.parties["Lab"].votes == 5100
    assert second.update.tally.declared == 1


def test_correction_that_flips_the_winner_raises_the_new_gain():
    count = counted({"E14000001": "Lab", "E14000002": "Lab", "E14000003": "LD"})
    count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 4990)))
    second = count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 5010), revision=2))
    assert "gain" in kinds(second) and "correction" in kinds(second)
    assert "winner now" in next(a for a in second.alerts if a.kind == "correction").headline
    snap = second.update.tally
    assert snap.parties["Con"].seats == 1 and snap.parties["Lab"].seats == 0


def test_same_or_older_revision_is_ignored():
    count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
    count.declare(decl("E14000001", cand("A", "Lab", 5000), cand("B", "Con", 3000), revision=2))
    for revision in (1, 2):
        again = count.declare(decl("E14000001", cand("A", "Lab", 1), cand("B", "Con", 3000), revision=revision))
        assert again.ignored and not again.alerts and again.update is None
    assert count.books["test"].tally.snapshot().parties["Lab"].votes == 5000


def test_alert_ids_are_stable_across_reprocessing():
    def run():
        count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
        return [a.id for a in count.declare(decl("E14000001", cand("A", "Ind", 5000), cand("B", "Con", 4500))).alerts]

    assert run() == run() and len(set(run())) == len(run())


def test_recount_alert():
    count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
    notice = RecountNotice(
        election="test",
        ons_id="E14000001",
        announced_at=datetime(2024, 7, 5, 3, tzinfo=UTC),
        reason="majority under 100",
    )
    outcome = count.recount(notice)
    assert kinds(outcome) == ["recount"] and "Recount in Seat E14000001" in outcome.alerts[0].headline


def test_data_flaw_is_flagged_not_dropped():
    count = counted({"E14000001": "Con", "E14000002": "Lab", "E14000003": "LD"})
    d = decl("E14000001", cand("A", "Con", 5000), cand("B", "Lab", 3000)).model_copy(
        update={"flaws": ["valid votes 8001 differ from the candidates' sum 8000"]}
    )
    outcome = count.declare(d)
    assert kinds(outcome) == ["data_flaw"] and outcome.update.seat.flaws


def test_unknown_election_or_seat_is_rejected_with_a_reason():
    count = counted({"E14000001": "Con"})
    assert "has not been opened" in count.declare(decl("E14000001", cand("A", "Con", 1), election="other")).rejected
    assert "not one of the 1 seats" in count.declare(decl("E14000009", cand("A", "Con", 1))).rejected


# --- figures in the alerts, big_swing, hung_parliament ------------------------------------------


def test_seat_alerts_carry_both_candidates_figures_and_a_reporters_headline():
    from tests.factories import before

    count = Count()
    count.open_night(night({"E14000001": "Lab"}, previous={"E14000001": before(0.7, Lab=0.64, Con=0.1)}))
    outcome = count.declare(
        decl(
            "E14000001",
            cand("Jeremy Corbyn", "Ind", 24120, sitting=True),
            cand("Praful Nargund", "Lab", 16873),
            cand("Other", "Con", 8000),
            name="Islington North",
            electorate=74000,
        )
    )
    gain = next(a for a in outcome.alerts if a.kind == AlertKind.GAIN)
    assert gain.headline == "Ind GAIN Islington North from Lab: Jeremy Corbyn 24,120 (49.2%) to 16,873"
    facts = gain.facts
    assert (facts["winner"], facts["winner_votes"], facts["runner_up_votes"]) == ("Jeremy Corbyn", 24120, 16873)
    assert facts["winner_share"] == round(24120 / 48993, 6) and facts["runner_up_share"] == round(16873 / 48993, 6)
    assert facts["turnout"] == round(48993 / 74000, 6)
    assert facts["turnout_change"] == pytest.approx(48993 / 74000 - 0.7, abs=1e-6)
    assert facts["winner_share_change"] is None  # an independent
    assert facts["runner_up_share_change"] == pytest.approx(16873 / 48993 - 0.64, abs=1e-6)
    assert facts["swing"] is None  # to an independent: no Butler swing
    independent = next(a for a in outcome.alerts if a.kind == AlertKind.INDEPENDENT_GAIN)
    assert "24,120 (49.2%) to Lab's 16,873 (34.4%)" in independent.headline
    assert independent.facts["runner_up_votes"] == 16873


def swing_count(threshold: float | None = None) -> Count:
    from tests.factories import before

    count = Count(RuleConfig(big_swing=threshold) if threshold is not None else None)
    previous = {
        "E14000001": before(Con=0.55, Lab=0.30),
        "E14000002": before(Con=0.45, Lab=0.40),
        "E14000003": before(Con=0.50, Lab=0.40),
    }
    count.open_night(night({"E14000001": "Con", "E14000002": "Con", "E14000003": "Con"}, previous=previous))
    return count


def test_big_swing_names_both_parties_at_the_default_threshold():
    count = swing_count()
    # Lab 30 -> 55, Con 55 -> 35: 22.5 points from Con to Lab.
    outcome = count.declare(decl("E14000001", cand("L", "Lab", 550), cand("C", "Con", 350), cand("X", "LD", 100)))
    (alert,) = [a for a in outcome.alerts if a.kind == AlertKind.BIG_SWING]
    assert (alert.facts["swing_from"], alert.facts["swing_to"]) == ("Con", "Lab")
    assert alert.facts["swing_size"] == pytest.approx(0.225)
    assert alert.headline.startswith("Big swing in Seat E14000001: 22.5% from Con to Lab")
    # Con 45 -> 50, Lab 40 -> 42: a hold with a 1.5-point swing to Con is not big.
    assert "big_swing" not in kinds(count.declare(decl("E14000002", cand("C", "Con", 50), cand("L", "Lab", 42))))


def test_big_swing_threshold_is_configurable_and_counts_either_direction():
    count = swing_count(threshold=0.05)
    # A Con hold where Con rose 50 -> 62 and Lab fell 40 -> 30: 11 points from Lab to Con (negative "to Lab").
    outcome = count.declare(decl("E14000003", cand("C", "Con", 62), cand("L", "Lab", 30), cand("X", "LD", 8)))
    (alert,) = [a for a in outcome.alerts if a.kind == AlertKind.BIG_SWING]
    assert (alert.facts["swing_from"], alert.facts["swing_to"]) == ("Lab", "Con")
    assert alert.facts["swing"].swing == pytest.approx(-0.11)
    same = decl("E14000003", cand("C", "Con", 62), cand("L", "Lab", 30), cand("X", "LD", 8))
    assert "big_swing" not in kinds(swing_count(0.2).declare(same))


def seats_of(n: int) -> dict[str, str]:
    return {f"E14{i:06d}": "Con" for i in range(n)}


def test_hung_parliament_once_when_no_party_can_reach_the_line():
    count = counted(seats_of(7))  # majority line 4
    winners = ["Con", "Lab", "Con", "Lab", "LD"]
    raised = []
    for i, party in enumerate(winners + ["Con", "Lab"]):
        outcome = count.declare(decl(f"E14{i:06d}", cand("w", party, 100), cand("r", "Grn", 10)))
        raised.append([a for a in outcome.alerts if a.kind == AlertKind.HUNG_PARLIAMENT])
    # Con 2, Lab 2, LD 1 with 2 left: 2 + 2 = 4 still reaches the line. After the sixth (Con 3, one
    # left): 3 + 1 = 4, reachable. After the seventh: Con 3, Lab 3, none left: hung.
    assert [len(r) for r in raised] == [0, 0, 0, 0, 0, 0, 1]
    alert = raised[-1][0]
    assert alert.facts["majority_line"] == 4 and alert.facts["remaining"] == 0
    assert alert.facts["largest_party_seats"] == 3
    assert "Hung parliament: no party can reach 4 seats" in alert.headline


def test_hung_parliament_raised_as_soon_as_it_is_certain_and_never_with_a_majority():
    count = counted(seats_of(5))  # line 3
    kinds_by_step = [
        kinds(count.declare(decl(f"E14{i:06d}", cand("w", party, 100), cand("r", "Grn", 10))))
        for i, party in enumerate(["Con", "Lab", "LD", "SNP"])
    ]
    # After LD: Con 1 + 2 left = 3, still possible; after SNP: 1 + 1 < 3, hung, one seat still to come.
    assert ["hung_parliament" in k for k in kinds_by_step] == [False, False, False, True]

    majority = counted(seats_of(5))
    for i, party in enumerate(["Con", "Lab", "Con", "Lab", "Con"]):
        outcome = majority.declare(decl(f"E14{i:06d}", cand("w", party, 100), cand("r", "Grn", 10)))
        assert "hung_parliament" not in kinds(outcome)


def test_a_correction_that_changes_the_winner_re_evaluates_the_night_rules():
    count = counted(seats_of(3))  # line 2
    count.declare(decl("E14000000", cand("w", "Con", 100), cand("r", "Lab", 10)))
    count.declare(decl("E14000001", cand("w", "Lab", 100), cand("r", "Con", 10)))
    hung = count.declare(decl("E14000002", cand("w", "LD", 100), cand("r", "Con", 90)))
    assert "hung_parliament" in kinds(hung)
    # The last seat goes to Con on a corrected count: Con now has 2 of 3, a majority.
    fixed = count.declare(decl("E14000002", cand("w", "LD", 100), cand("r", "Con", 190), revision=2))
    assert "majority_reached" in kinds(fixed) and "hung_parliament" not in kinds(fixed)
    # And back to LD: hung again (same alert id: subscribers see it once).
    again = count.declare(decl("E14000002", cand("w", "LD", 300), cand("r", "Con", 190), revision=3))
    (alert,) = [a for a in again.alerts if a.kind == AlertKind.HUNG_PARLIAMENT]
    assert alert.id == next(a for a in hung.alerts if a.kind == AlertKind.HUNG_PARLIAMENT).id


# --- the summary the sink writes per seat: plain data serialised by pydantic-core, byte for byte the model's -------

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize("name", ["ge2024", "ge2019"])
def test_a_seats_summary_json_is_the_validated_summary_byte_for_byte(name):
    if not (DATA / name).is_dir():
        pytest.skip(f"data/{name} is not shipped in this checkout")
    loaded = load_night(DATA / name, f"{name}-summary")
    config = RuleConfig(marginal_votes=2000)  # a line of its own: the marginal flag is part of the summary
    count = Count(config)
    count.open_night(loaded.opened)
    seats = []
    declarations = list(loaded.declarations)
    first, second = declarations[0], declarations[1]
    # A rush before its figures, and a result later withdrawn: every status a summary has.
    rushed = count.rush(Rush(election=first.election, ons_id=first.ons_id, party="Lab", announced_at=first.declared_at))
    seats.append(rushed.update.seat)
    for declaration in declarations:
        seats.append(count.declare(declaration, snapshot=False).update.seat)
    withdrawn = count.withdraw(
        Withdrawal(
            election=second.election, ons_id=second.ons_id, revision=2, reason="a test", withdrawn_at=second.declared_at
        )
    )
    seats.append(withdrawn.update.seat)
    assert {seat.status for seat in seats} == {"rush", "declared", "withdrawn"}
    summaries = [seat_summary(seat, config) for seat in seats]
    assert any(s.marginal for s in summaries) and any(s.gain for s in summaries) and any(s.swing for s in summaries)
    for seat, summary in zip(seats, summaries, strict=True):
        assert seat_summary_json(seat, config) == summary.model_dump_json().encode(), seat.ons_id
