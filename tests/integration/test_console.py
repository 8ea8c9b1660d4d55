"""The operator console on the entry server: sign-in cookie, seat search, nominations, sending as the operator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tallyroom.consumers.redis_sink import redis_client
from tallyroom.producers.audit import read_audit
from tallyroom.producers.console import COOKIE
from tallyroom.producers.http import create_entry_app
from tallyroom.producers.kafka import ensure_topics
from tallyroom.producers.live import NightSeats
from tallyroom.producers.nights import load_night
from tallyroom.producers.operators import OperatorStore, Role
from tallyroom.schemas import parse_event
from tallyroom.settings import REPO_ROOT
from tests.integration.conftest import isolated_settings
from tests.integration.test_http_entry import Topic

pytestmark = pytest.mark.integration

# https: the sign-in cookie is Secure, and a client (like a browser) sends it back over https only.
BASE = "https://testserver"


@pytest.fixture(scope="module")
def console(stack, tmp_path_factory):
    settings, _ = isolated_settings(stack, "console")
    election = f"console-{settings.worker_id[-8:]}"
    store = OperatorStore(tmp_path_factory.mktemp("operators") / "operators.json")
    tokens = {"eve": store.add("eve"), "ada": store.add("ada", Role.ADMIN)}
    settings = settings.model_copy(update={"operators_file": store.path})
    ensure_topics(settings)
    night = load_night(REPO_ROOT / "data" / "ge2024", election)
    with TestClient(create_entry_app(settings, seats=NightSeats.of(night.opened)), base_url=BASE) as client:
        yield client, store, tokens, Topic(settings), election, settings, night


def signed_in(console, who: str) -> TestClient:
    client, _, tokens, *_ = console
    session = TestClient(client.app, base_url=BASE)
    response = session.post("/console/sign-in", data={"token": tokens[who]}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return session


def islington_north(night):
    return next(d for d in night.declarations if d.constituency == "Islington North")


def test_sign_in_sets_a_secure_http_only_same_site_cookie(console):
    client, *_ = console
    assert "Operator token" in client.get("/console").text
    session = TestClient(client.app, base_url=BASE)
    response = session.post("/console/sign-in", data={"token": console[2]["eve"]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    attributes = {part.strip().split("=")[0].lower() for part in response.headers["set-cookie"].split(";")}
    assert response.headers["set-cookie"].startswith(f"{COOKIE}=")
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= attributes
    assert "samesite=strict" in response.headers["set-cookie"].lower()
    page = session.get("/console")
    assert page.status_code == 200 and 'id="seat-search"' in page.text and "eve" in page.text
    assert 'id="withdraw-form"' not in page.text  # an entry operator sees no withdrawal


def test_a_bad_token_does_not_sign_in_and_is_audited(console):
    client, _, _, _, election, settings, _ = console
    response = client.post("/console/sign-in", data={"token": "not-a-token"}, follow_redirects=False)
    assert response.status_code == 401 and "not an active operator" in response.text
    assert "set-cookie" not in response.headers
    assert client.get("/console/api/seats?q=isl").status_code == 401
    last = read_audit(redis_client(settings), election)[-1]
    assert (last["action"], last["outcome"], last["source"], last["status"]) == ("sign-in", "refused", "console", "401")


def test_find_a_seat_by_part_of_its_name_and_see_its_nominations(console):
    *_, night = console
    session = signed_in(console, "eve")
    names = [s["constituency"] for s in session.get("/console/api/seats", params={"q": "islington"}).json()["seats"]]
    assert names == ["Islington North", "Islington South and Finsbury"]
    north = [s["constituency"] for s in session.get("/console/api/seats", params={"q": "north"}).json()["seats"]]
    assert north[0].startswith("North") and any(" North" in name for name in north)  # starts-with first
    seat = islington_north(night)
    detail = session.get(f"/console/api/seat/{seat.ons_id}").json()
    assert detail["held_by"] == "Lab" and detail["held"] is None
    assert {(n["name"], n["party"]) for n in detail["nominees"]} == {(c.name, c.party) for c in seat.candidates}


def declaration_typed(election, seat, **changes) -> dict:
    body = {
        "kind": "declaration",
        "election": election,
        "ons_id": seat.ons_id,
        "revision": 1,
        "constituency": seat.constituency,
        "declared_at": datetime.now(UTC).isoformat(),
        "candidates": [{"name": c.name, "party": c.party, "votes": c.votes} for c in seat.candidates],
    }
    return body | changes


def test_a_result_sent_from_the_console_is_entered_by_the_operator(console):
    _, _, _, topic, election, settings, night = console
    session = signed_in(console, "eve")
    seat = islington_north(night)
    start = topic.end()
    response = session.post("/console/api/send", json=declaration_typed(election, seat))
    assert response.status_code == 202, response.text
    (record,) = topic.read_from(start, 1)
    sent = parse_event(record.value)
    assert (sent.entered_by, sent.source, sent.ons_id) == ("eve", "console", seat.ons_id)
    trail = read_audit(
        session.app.state.sender and __import__("redis").Redis.from_url(settings.redis_url, decode_responses=True),
        election,
    )
    assert (trail[-1]["operator"], trail[-1]["source"], trail[-1]["offset"]) == ("eve", "console", str(record.offset))


def test_the_console_refuses_a_candidate_not_nominated_by_name(console):
    _, _, _, topic, election, _, night = console
    session = signed_in(console, "eve")
    seat = islington_north(night)
    typed = declaration_typed(election, seat, revision=2)
    typed["candidates"][0] = typed["candidates"][0] | {"name": "Someone Else"}
    start = topic.end()
    response = session.post("/console/api/send", json=typed)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["declaration.candidates.0.name", "declaration.candidates"]
    assert topic.end() == start


def test_the_console_refuses_cross_site_and_non_json_writes_and_entry_withdrawals(console):
    _, store, _, topic, election, _, night = console
    session = signed_in(console, "eve")
    seat = islington_north(night)
    start = topic.end()
    foreign = session.post(
        "/console/api/send", json=declaration_typed(election, seat), headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    form = session.post(
        "/console/api/send",
        content=json.dumps(declaration_typed(election, seat)),
        headers={"content-type": "text/plain"},
    )
    assert form.status_code == 415
    withdrawal = {
        "kind": "withdrawal",
        "election": election,
        "ons_id": seat.ons_id,
        "revision": 2,
        "reason": "x",
        "withdrawn_at": datetime.now(UTC).isoformat(),
    }
    assert session.post("/console/api/send", json=withdrawal).status_code == 403
    assert topic.end() == start
    admin = signed_in(console, "ada")
    assert 'id="withdraw-form"' in admin.get("/console").text


def test_a_revoked_operator_is_signed_out_at_once(console):
    _, store, *_ = console
    token = store.add("mallory")
    client = TestClient(console[0].app, base_url=BASE)
    assert client.post("/console/sign-in", data={"token": token}, follow_redirects=False).status_code == 303
    assert client.get("/console/api/seats?q=isl").status_code == 200
    store.revoke("mallory")
    assert client.get("/console/api/seats?q=isl").status_code == 401
    assert "Operator token" in client.get("/console").text
