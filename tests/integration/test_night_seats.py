"""The night's seats and their winners in a real Redis, as the sink writes them, and as the page reads them.

``tallyroom:E:night`` (every seat of the night) and ``tallyroom:E:winners`` (each seat's summary,
set by the same script as the seat) must stay exact through corrections, withdrawals, results
delivered twice and results delivered out of order. Redis DB 7, which no other suite uses.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.redis_sink import RedisSink, redis_client
from tallyroom.schemas import NightSeat, ResultUpdate, SeatResult, SeatSummary, Withdrawal
from tallyroom.streams.count import Count
from tallyroom.streams.rules import RuleConfig, seat_summary
from tests.factories import T0, cand, decl, night
from tests.integration.conftest import isolated_settings
from tests.integration.test_web import FAST, SseReader, WebServer

pytestmark = pytest.mark.integration

SEATS_REDIS_DB = 7
ELECTION = "seats-test"
# Real 2024 seats, so that the shipped 2024 hex layout places them.
ABERAFAN, ABERDEEN_N, ISLINGTON_N = "W07000081", "S14000060", "E14001305"
NAMES = {ABERAFAN: "Aberafan Maesteg", ABERDEEN_N: "Aberdeen North", ISLINGTON_N: "Islington North"}


@pytest.fixture
def seats(stack):
    settings, _ = isolated_settings(stack, "seats", SEATS_REDIS_DB)
    settings = settings.model_copy(update={"election": ELECTION})
    client = redis_client(settings)
    client.flushdb()
    count = Count()
    opening = night({ABERAFAN: "Lab", ABERDEEN_N: "SNP", ISLINGTON_N: "Lab"}, election=ELECTION)
    opening = opening.model_copy(
        update={"seats": [s.model_copy(update={"constituency": NAMES[s.ons_id]}) for s in opening.seats]}
    )
    count.open_night(opening)
    sink = RedisSink(settings, client)
    listed = [NightSeat(ons_id=s.ons_id, constituency=s.constituency) for s in opening.seats]
    sink.write_update(ResultUpdate(election=ELECTION, night=listed, tally=count.snapshot(ELECTION)))
    yield settings, client, sink, count
    client.flushdb()
    client.close()


def declare(count: Count, sink: RedisSink, event) -> ResultUpdate:
    outcome = count.count(event)
    assert outcome.update is not None, outcome.rejected
    update = outcome.update.model_copy(update={"tally": count.snapshot(ELECTION)})
    sink.write_update(update)
    return update


def result(ons_id: str, winner: tuple[str, str, int], runner_up: tuple[str, str, int], revision: int = 1):
    return decl(ons_id, cand(*winner), cand(*runner_up), revision=revision, election=ELECTION, name=NAMES[ons_id])


CORBYN, PRAFUL = ("Jeremy", "Ind", 24120), ("Praful", "Lab", 16873)


def winners(client) -> dict[str, SeatSummary]:
    return {k: SeatSummary.model_validate_json(v) for k, v in client.hgetall(ElectionKeys(ELECTION).winners).items()}


def assert_exact(client) -> None:
    """Every seat's summary is the summary of the seat result Redis holds, and nothing else is there."""
    keys = ElectionKeys(ELECTION)
    held = {}
    for key in client.scan_iter(f"{keys.seat_prefix}*"):
        seat = SeatResult.model_validate_json(client.get(key))
        held[seat.ons_id] = seat_summary(seat, RuleConfig())
    assert winners(client) == held


def test_the_night_and_its_winners_stay_exact_through_corrections_withdrawals_and_repeats(seats):
    _, client, sink, count = seats
    night_held = client.hgetall(ElectionKeys(ELECTION).night)
    assert {k: json.loads(v)["constituency"] for k, v in night_held.items()} == NAMES
    assert winners(client) == {}

    first = declare(
        count,
        sink,
        result(ISLINGTON_N, CORBYN, PRAFUL),
    )
    declare(
        count,
        sink,
        result(ABERAFAN, ("Stephen", "Lab", 17838), ("Rep", "RUK", 7484)),
    )
    won = winners(client)
    assert (won[ISLINGTON_N].party, won[ISLINGTON_N].gain, won[ISLINGTON_N].majority) == ("Ind", True, 7247)
    assert (won[ABERAFAN].party, won[ABERAFAN].gain) == ("Lab", False)
    assert_exact(client)

    # A correction that changes the winner, then the first revision delivered again (a refill, a retry).
    declare(
        count,
        sink,
        result(ISLINGTON_N, ("Jeremy", "Ind", 16000), PRAFUL, revision=2),
    )
    sink.write_update(first)
    won = winners(client)
    assert (won[ISLINGTON_N].party, won[ISLINGTON_N].gain, won[ISLINGTON_N].revision) == ("Lab", False, 2)
    assert won[ISLINGTON_N].marginal  # 873 votes: under the marginal line
    assert_exact(client)

    # A withdrawal: the seat is undeclared again (no winner), until a later revision declares it.
    declare(
        count,
        sink,
        Withdrawal(
            election=ELECTION, ons_id=ISLINGTON_N, revision=3, reason="wrong box", withdrawn_at=T0 + timedelta(hours=1)
        ),
    )
    won = winners(client)
    assert (won[ISLINGTON_N].status, won[ISLINGTON_N].party) == ("withdrawn", None)
    assert_exact(client)
    declare(
        count,
        sink,
        result(ISLINGTON_N, CORBYN, PRAFUL, revision=4),
    )
    assert (winners(client)[ISLINGTON_N].status, winners(client)[ISLINGTON_N].party) == ("declared", "Ind")
    assert_exact(client)


def test_the_page_draws_the_night_and_the_seats_api_and_stream_follow_it(seats):
    settings, client, sink, count = seats
    declare(
        count,
        sink,
        result(ISLINGTON_N, CORBYN, PRAFUL),
    )
    with WebServer(settings, FAST) as server:
        html = httpx.get(f"{server.url}/e/{ELECTION}", timeout=10).text
        assert html.count('<a class="hex') == 3  # one hexagon per seat of the night, declared or not
        assert "<title>Islington North: Independent gain from Labour, majority 7,247</title>" in html
        assert "<title>Aberdeen North: not declared yet</title>" in html
        fragment = httpx.get(f"{server.url}/e/{ELECTION}/map", timeout=10).text  # the map alone, for a page
        assert fragment.count('<a class="hex') == 3 and "<html" not in fragment  # opened before its night
        body = httpx.get(f"{server.url}/api/e/{ELECTION}/seats", timeout=10).json()
        assert body["version"] == count.snapshot(ELECTION).version
        assert [(r["name"], (r["result"] or {}).get("party")) for r in body["seats"]] == [
            ("Aberafan Maesteg", None),
            ("Aberdeen North", None),
            ("Islington North", "Ind"),
        ]
        with httpx.stream("GET", f"{server.url}/e/{ELECTION}/events", timeout=10) as response:
            reader = SseReader(response.iter_lines())
            reader.until_tally()  # joined: the alerts so far and the tally
            declare(
                count,
                sink,
                result(ABERDEEN_N, ("Kirsty", "SNP", 14533), ("Lynn", "Lab", 12773)),
            )
            event = reader.next()
            while event.event != "seats":
                event = reader.next()
        changed = json.loads(event.data)
        # Only what changed, with the version it was read at.
        assert list(changed["seats"]) == [ABERDEEN_N] and changed["version"] >= count.snapshot(ELECTION).version
        assert changed["seats"][ABERDEEN_N]["party"] == "SNP"
        after = httpx.get(f"{server.url}/api/e/{ELECTION}/seats", timeout=10).json()
        assert after["version"] == count.snapshot(ELECTION).version
        assert sum(r["result"] is not None for r in after["seats"]) == 2


def test_with_a_timetable_the_page_lists_the_seats_expected_next(seats):
    settings, client, sink, count = seats
    at = {ABERAFAN: T0 + timedelta(hours=3), ABERDEEN_N: T0 + timedelta(hours=2), ISLINGTON_N: T0 + timedelta(hours=1)}
    timetable = [NightSeat(ons_id=k, constituency=NAMES[k], expected_at=v) for k, v in at.items()]
    sink.write_update(ResultUpdate(election=ELECTION, night=timetable))
    declare(count, sink, result(ISLINGTON_N, CORBYN, PRAFUL))  # declared: no longer expected
    with WebServer(settings, FAST) as server:
        html = httpx.get(f"{server.url}/e/{ELECTION}", timeout=10).text
    listed = html.split('id="next-seats">', 1)[1].split("</ol>", 1)[0]
    assert listed.index("Aberdeen North") < listed.index("Aberafan Maesteg") and "Islington" not in listed
    assert '<strong id="to-come">2</strong>' in html
