"""The web page against a real Redis: SSE resume by Last-Event-ID, the JSON API, the seat page, 404s.

The data is written the way the sink writes it (``RedisSink.write_update``), into Redis DB 12,
which no other test uses, and served by a real uvicorn on a free port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from html import escape

import httpx
import pytest
import uvicorn

from tallyroom.consumers.keys import ElectionKeys
from tallyroom.consumers.redis_sink import RedisSink, redis_client
from tallyroom.consumers.web import create_web_app
from tallyroom.consumers.web.events import FROM_START, FeedConfig
from tallyroom.schemas import NightSeat, ResultUpdate
from tallyroom.settings import Settings, get_settings
from tallyroom.streams.count import Count
from tests.factories import before, cand, decl, night, seat_id
from tests.integration.conftest import isolated_settings

pytestmark = pytest.mark.integration

WEB_REDIS_DB = 12
ELECTION = "web-test"
FAST = FeedConfig(block_ms=200, tally_interval=0.1, idle_seconds=1.0)


class WebServer:
    """``create_web_app`` under a real uvicorn, in a thread, on a free port."""

    def __init__(self, settings: Settings, feed_config: FeedConfig = FeedConfig()):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_web_app(settings, feed_config), log_level="warning", timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await self.server.serve(sockets=[self.socket])

        with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
            runner.run(serve())

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), f"the web server did not stop; its tasks:\n{self.task_stacks()}"

    def task_stacks(self) -> str:
        """Where each of the server's tasks waits, down its chain of awaits: what a stop that hangs is stuck on.

        (``Task.print_stack`` shows a coroutine's outermost frame only.)"""
        lines = []
        for task in asyncio.all_tasks(self.loop) if self.loop else ():
            lines.append(repr(task))
            awaited: object = task.get_coro()
            while awaited is not None:
                frame = _first_attribute(awaited, "cr_frame", "ag_frame", "gi_frame")
                if frame is None:
                    lines.append(f"    waiting on {awaited!r}")
                    break
                lines.append(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
                awaited = _first_attribute(awaited, "cr_await", "ag_await", "gi_yieldfrom")
        return "\n".join(lines)


def _first_attribute(thing: object, *names: str):
    """A coroutine's, async generator's or generator's frame or awaited object, whichever kind it is."""
    return next((getattr(thing, name) for name in names if hasattr(thing, name)), None)


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


@dataclass
class SseReader:
    """Parses an SSE response (the spec's field rules, as a browser does)."""

    lines: object
    pending: Event = field(default_factory=Event)

    def next(self) -> Event:
        for line in self.lines:
            if line == "":
                event, self.pending = self.pending, Event()
                return event
            if line.startswith(":"):
                continue  # a comment: sse-starlette's keep-alive ping
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                event = self.pending
                event.data = f"{event.data}\n{value}" if event.data else value
            elif name == "event":
                self.pending.event = value
            elif name == "id":
                self.pending.id = value
            elif name == "retry":
                self.pending.retry = int(value)
        raise EOFError("the event stream ended")

    def until_tally(self) -> tuple[list[Event], Event]:
        """The alerts before the next tally event, and that tally event (seat changes and heartbeats skipped)."""
        alerts = []
        while True:
            event = self.next()
            if event.event == "tally":
                return alerts, event
            if event.event == "message":
                alerts.append(event)


def night_updates(election: str) -> list[ResultUpdate]:
    """Four seats Con held before the night; Lab takes three (gains, sitting MPs out), Con keeps one."""
    count = Count()
    previous = {seat_id(2): before(0.7, Con=0.5, Lab=0.4, Green=0.1)}
    count.open_night(night({seat_id(n): "Con" for n in range(1, 5)}, election=election, previous=previous))
    declarations = [
        decl(
            seat_id(1),
            cand("Ann Lab", "Lab", 20000),
            cand("Bob Con", "Con", 12000, sitting=True),
            election=election,
            minutes=10,
            name="Ashfield",
        ),
        decl(
            seat_id(2),
            cand("Cat Lab", "Lab", 18000),
            cand("Dan Con", "Con", 17500, sitting=True),
            cand("Eve Grn", "Green", 3000),
            election=election,
            minutes=20,
            name="Brookside",
            electorate=50000,
        ),
        decl(
            seat_id(3),
            cand("Fay Con", "Con", 21000, sitting=True),
            cand("Gus Lab", "Lab", 9000),
            election=election,
            minutes=30,
            name="Crossmere",
        ),
        decl(
            seat_id(4),
            cand("Hal Lab", "Lab", 15000),
            cand("Ivy Con", "Con", 14000, sitting=True),
            election=election,
            minutes=40,
            name="Dunmore",
        ),
    ]
    updates = []
    for declaration in declarations:
        outcome = count.declare(declaration)
        assert outcome.update is not None, outcome.rejected
        updates.append(outcome.update)
    return updates


@pytest.fixture(scope="module")
def web(stack):
    settings, _ = isolated_settings(stack, "web", WEB_REDIS_DB)
    settings = settings.model_copy(update={"election": ELECTION})
    client = redis_client(settings)
    client.flushdb()
    updates = night_updates(ELECTION)
    sink = RedisSink(settings, client)
    for update in updates[:3]:  # the fourth seat is declared while a browser watches
        sink.write_update(update)
    with WebServer(settings, FAST) as server:
        yield server, sink, client, updates
    client.close()


def stream_ids(client) -> list[str]:
    return [entry_id for entry_id, _ in client.xrange(ElectionKeys(ELECTION).alerts)]


def test_sse_resumes_strictly_after_last_event_id(web):
    server, sink, client, updates = web
    held = stream_ids(client)
    assert len(held) >= 5, held  # three seats: gains, defeated MPs, a marginal
    url = f"{server.url}/e/{ELECTION}/events"
    timeout = httpx.Timeout(10.0)

    with httpx.stream("GET", url, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response.iter_lines())
        first: list[Event] = []
        while len(first) < 3:
            event = reader.next()
            if event.event != "tally":
                first.append(event)
    assert [e.id for e in first] == held[:3]
    assert json.loads(first[0].data)["election"] == ELECTION

    with httpx.stream("GET", url, headers={"Last-Event-ID": first[1].id}, timeout=timeout) as response:
        reader = SseReader(response.iter_lines())
        resumed, tally = reader.until_tally()
        assert [e.id for e in resumed] == held[2:]  # exactly the third and later
        assert json.loads(tally.data)["declared"] == 3
        assert tally.id is None  # a tally must never move the browser's resume point

        sink.write_update(updates[3])  # declared while this client watches
        live, tally = reader.until_tally()
    now_held = stream_ids(client)
    assert [e.id for e in live] == now_held[len(held) :] and live
    assert json.loads(tally.data)["declared"] == 4
    seen = [e.id for e in first[:2] + resumed + live]
    assert seen == now_held and len(seen) == len(set(seen))  # every alert once, none twice


def test_last_event_id_wins_over_the_page_after_param(web):
    server, _, client, _ = web
    held = stream_ids(client)
    url = f"{server.url}/e/{ELECTION}/events?after={held[0]}"
    with httpx.stream("GET", url, headers={"Last-Event-ID": held[-2]}, timeout=10) as response:
        alerts, _ = SseReader(response.iter_lines()).until_tally()
    assert [e.id for e in alerts] == held[-1:]
    with httpx.stream("GET", url, timeout=10) as response:
        alerts, _ = SseReader(response.iter_lines()).until_tally()
    assert [e.id for e in alerts] == held[1:]


def test_bad_resume_points_are_refused_by_name(web):
    server = web[0]
    answer = httpx.get(f"{server.url}/e/{ELECTION}/events?after=yesterday", timeout=10)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "after"]
    answer = httpx.get(f"{server.url}/e/{ELECTION}/events", headers={"Last-Event-ID": "x"}, timeout=10)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]
    assert "Last-Event-ID: 'x' is not a Redis stream id" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize("path", ["/e/{election}/events", "/api/e/{election}/alerts"])
@pytest.mark.parametrize("stream_id", ["18446744073709551616-0", "0-18446744073709551616", "99999999999999999999"])
def test_stream_ids_redis_cannot_hold_are_a_422_naming_the_parameter(web, path, stream_id):
    server = web[0]
    answer = httpx.get(server.url + path.format(election=ELECTION), params={"after": stream_id}, timeout=10)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["query", "after"] and "after: " in error["msg"] and "out of range" in error["msg"]


def test_a_client_that_goes_away_leaves_no_blocked_redis_read(web):
    server, _, client, _ = web
    with httpx.stream("GET", f"{server.url}/e/{ELECTION}/events", timeout=10) as response:
        reader = SseReader(response.iter_lines())  # held: dropping the line iterator closes the response
        reader.until_tally()
        time.sleep(0.5)
        assert blocked_readers(client) >= 1  # the stream is waiting in XREAD BLOCK
    # The feed stops idle_seconds after its last viewer left; allow for a loaded CI machine. Its
    # XREAD BLOCK is re-issued every block_ms, so one sample between two reads proves nothing:
    # the reads must stay gone for longer than a block.
    deadline = time.monotonic() + 15
    quiet_since = None
    while time.monotonic() < deadline:
        if blocked_readers(client):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 3 * FAST.block_ms / 1000:
            break
        time.sleep(0.05)
    assert blocked_readers(client) == 0 and quiet_since is not None


def blocked_readers(client) -> int:
    """Connections to this test's DB waiting in a blocking command (flag ``b``)."""
    # Parsed here: redis-py 8's client_list() returns only the first client under RESP3.
    lines = client.execute_command("CLIENT", "LIST").splitlines()
    fields = [dict(pair.split("=", 1) for pair in line.split() if "=" in pair) for line in lines]
    return sum(1 for c in fields if c.get("db") == str(WEB_REDIS_DB) and "b" in c.get("flags", ""))


def test_state_api(web):
    server, _, client, _ = web
    state = httpx.get(f"{server.url}/api/e/{ELECTION}/state", timeout=10).json()
    assert set(state) == {"election", "declared", "total", "seats", "votes", "tally", "refused"}
    assert state["refused"] == client.hlen(ElectionKeys(ELECTION).refused) == 0
    assert state["declared"] == int(client.get(ElectionKeys(ELECTION).declared))
    assert state["total"] == 4
    assert state["seats"] == {p: int(n) for p, n in client.hgetall(ElectionKeys(ELECTION).seats).items()}
    assert state["tally"]["majority_line"] == 3
    assert state["tally"]["parties"]["Lab"]["gains"] == state["seats"]["Lab"]
    assert httpx.get(f"{server.url}/api/e/bad%20id/state", timeout=10).status_code == 422


@pytest.mark.parametrize(
    "path",
    ["/api/e/never-held/state", "/api/e/never-held/alerts", "/e/never-held", f"/e/never-held/seat/{seat_id(1)}"]
    + ["/e/never-held/events"],
)
def test_an_election_not_in_redis_is_a_404_naming_those_that_are(web, path):
    answer = httpx.get(web[0].url + path, timeout=10)
    assert answer.status_code == 404, path
    if path.startswith("/api/"):
        assert answer.json() == {
            "detail": f"no election 'never-held' in Redis; elections in Redis: {ELECTION}",
            "elections": [ELECTION],
        }
    else:
        assert "no election &#39;never-held&#39; in Redis" in answer.text
        assert f'<a href="/e/{ELECTION}">{ELECTION}</a>' in answer.text  # a way on to those that are


def open_election(sink: RedisSink, election: str, seats: int = 3) -> None:
    """What the worker publishes when a night opens: its empty tally, no seat."""
    count = Count()
    count.open_night(night({seat_id(n): "Con" for n in range(1, seats + 1)}, election=election))
    sink.write_update(ResultUpdate(election=election, tally=count.snapshot(election)))


def test_an_opened_night_with_no_result_yet_is_a_page_not_a_404(web):
    """The worker publishes the empty tally when a night opens: the election is known from then on."""
    server, sink, client, _ = web
    open_election(sink, "opened-only")
    try:
        state = httpx.get(f"{server.url}/api/e/opened-only/state", timeout=10)
        assert state.status_code == 200
        assert (state.json()["declared"], state.json()["total"], state.json()["tally"]["majority_line"]) == (0, 3, 2)
        assert httpx.get(f"{server.url}/e/opened-only", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/api/e/opened-only/alerts", timeout=10).json() == []
    finally:
        for key in client.scan_iter("tallyroom:opened-only:*"):
            client.delete(key)


def test_alerts_api_pages_strictly_after(web):
    server, _, client, _ = web
    held = stream_ids(client)
    everything = httpx.get(f"{server.url}/api/e/{ELECTION}/alerts", timeout=10).json()
    assert [a["stream_id"] for a in everything] == held
    after = httpx.get(f"{server.url}/api/e/{ELECTION}/alerts", params={"after": held[1], "limit": 2}, timeout=10).json()
    assert [a["stream_id"] for a in after] == held[2:4]
    assert after[0]["kind"] and after[0]["headline"] and after[0]["election"] == ELECTION


def test_seat_page(web):
    server = web[0]
    page = httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(2)}", timeout=10)
    assert page.status_code == 200
    html = page.text
    assert "Brookside" in html and '<strong id="verdict">Labour gain from Conservative</strong>' in html
    assert "Cat Lab" in html and "Dan Con" in html and "Eve Grn" in html
    assert 'data-party="Lab" data-votes="18000"' in html
    assert 'majority <span id="majority">500</span>' in html
    assert "46.8%" in html  # 18,000 of 38,500
    assert html.index("Cat Lab") < html.index("Dan Con") < html.index("Eve Grn")
    # Full party names where a person reads; the abbreviation stays in the data.
    assert '<span data-field="party-name" title="Green">Green Party</span>' in html
    # Change since last time: Lab 40% -> 46.8%, Con 50% -> 45.5%, turnout 70% -> 77%.
    assert '<td class="change">+6.8</td>' in html and '<td class="change">\u22124.5</td>' in html
    turnout = "77.0%: 38,500 valid votes of an electorate of 50,000 (+7.0 points since last time)"
    assert f'<dd id="turnout">{turnout}</dd>' in html
    assert '<dd id="swing">5.6% from Conservative to Labour since last time (two-party swing)</dd>' in html


def test_seat_page_lists_the_seats_alerts_in_stream_order(web):
    server, _, client, _ = web
    for n in (1, 2):  # two gains, each with its defeated MP (and seat 2 a marginal)
        held = [
            fields["headline"]
            for _, fields in client.xrange(ElectionKeys(ELECTION).alerts)
            if fields["ons_id"] == seat_id(n)
        ]
        html = httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(n)}", timeout=10).text
        assert len(held) >= 2, f"the test night raises alerts for seat {n}"
        shown = [html.index(escape(headline)) for headline in held]
        assert shown == sorted(shown), "oldest first, as they landed"
        assert html.count('class="alert kind-') == len(held)
    quiet = httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(3)}", timeout=10).text  # a Con hold
    assert "None raised for this seat." in quiet and 'class="alert kind-' not in quiet


def test_seat_pages_read_the_alert_stream_once_then_only_what_is_new(web):
    """A thousand viewers of seat pages must not each read the night's alert stream: at most one
    read of what is new per half second, however many pages are served."""
    server = web[0]
    index = server.server.config.app.state.seat_alerts
    before, started = index.reads, time.monotonic()
    for n in range(20):
        page = httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(1 + n % 2)}", timeout=10)
        assert page.status_code == 200
    elapsed = time.monotonic() - started
    assert index.reads - before <= 1 + elapsed / index.refresh_seconds, (index.reads - before, elapsed)
    assert index.reads - before < 20


def test_unknown_seat_is_a_404_page(web):
    server = web[0]
    for path in (f"/e/{ELECTION}/seat/{seat_id(99)}", f"/e/{ELECTION}/seat/not-a-seat", "/no/such/page"):
        page = httpx.get(server.url + path, timeout=10)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html") and "Not found" in page.text


def test_dashboard_page_shows_bars_and_feed_latest_first(web):
    server, _, client, _ = web
    html = httpx.get(f"{server.url}/", timeout=10).text  # settings.election is the default
    state = httpx.get(f"{server.url}/api/e/{ELECTION}/state", timeout=10).json()
    assert '<meta name="viewport"' in html
    for party, seats in state["seats"].items():
        assert f'data-party="{party}" data-seats="{seats}"' in html
    assert f'data-declared="{state["declared"]}" data-total="4"' in html
    # Only Brookside has figures from last time: Lab +6.8, Con -4.5 there.
    assert state["tally"]["compared"] == 1
    assert '<p class="swing" id="swing">swing 5.6% from Conservative to Labour</p>' in html  # full names
    held = stream_ids(client)
    shown = [held.index(sid) for sid in _attribute_values(html, "data-stream-id") if sid]
    assert shown == sorted(shown, reverse=True) and len(shown) == len(held)


def _attribute_values(html: str, name: str) -> list[str]:
    marker = f'{name}="'
    return [chunk.split('"', 1)[0] for chunk in html.split(marker)[1:]]


SLOW_ELECTION = "web-slow"


def test_a_viewer_that_stops_reading_is_dropped_with_a_retry_hint_and_the_rest_go_on(web):
    _, sink, client, _ = web
    stream = ElectionKeys(SLOW_ELECTION).alerts
    client.delete(stream)
    open_election(sink, SLOW_ELECTION)  # as the worker does when its night opens: the election is known
    config = FeedConfig(block_ms=100, tally_interval=0.1, viewer_queue=2, send_timeout=60, idle_seconds=1.0)
    with WebServer(settings_on_db(WEB_REDIS_DB), config) as server:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills after a few kB
        port = int(server.url.rsplit(":", 1)[1])
        slow.connect(("127.0.0.1", port))
        slow.sendall(f"GET /e/{SLOW_ELECTION}/events HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        time.sleep(0.5)  # joined: its first chunk (retry, tally) is on its way
        pad = "x" * 10_000
        for round_ in range(20):  # ~10 MB in 20 batches, far more than the socket buffers hold
            pipe = client.pipeline(transaction=False)
            for n in range(50):
                pipe.xadd(stream, {"json": json.dumps({"round": round_, "n": n, "pad": pad})})
            pipe.execute()
            time.sleep(0.2)
        held = stream_ids_of(client, stream)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        with httpx.stream("GET", f"{server.url}/e/{SLOW_ELECTION}/events?after={held[-4]}", timeout=10) as response:
            reader = SseReader(response.iter_lines())
            got = [reader.next() for _ in range(4)]  # the tally, then the last three alerts
        assert [e.id for e in got if e.event != "tally"] == held[-3:]

        slow.settimeout(20)
        received = b""
        while not received.endswith(b"0\r\n\r\n"):  # the chunked body's end: the server closed the stream
            data = slow.recv(1 << 20)
            if not data:
                break
            received += data
        slow.close()
        dropped = metric(server.url, "tallyroom_web_viewers_dropped_total")
    for key in client.scan_iter(f"tallyroom:{SLOW_ELECTION}:*"):
        client.delete(key)
    assert b": dropped" in received and b"retry: 5000\r\n" in received
    assert dropped == 1
    assert received.count(b"\r\nid: ") + received.count(b"\nid: ") < len(held)  # it was cut off, not sent all


def settings_on_db(db: int) -> Settings:
    base = get_settings()
    return base.model_copy(update={"redis_url": base.redis_url.rsplit("/", 1)[0] + f"/{db}"})


def stream_ids_of(client, stream: str) -> list[str]:
    return [entry_id for entry_id, _ in client.xrange(stream)]


def test_every_page_sends_a_content_security_policy_and_refuses_frames(web):
    server = web[0]
    pages = ("/", f"/e/{ELECTION}", f"/e/{ELECTION}/seat/{seat_id(2)}", "/no/such/page", f"/api/e/{ELECTION}/state")
    for path in pages:
        answer = httpx.get(server.url + path, timeout=10)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], path
        assert answer.headers["x-frame-options"] == "DENY", path


def test_static_and_script_urls_do_not_follow_the_host_header(web):
    server = web[0]
    html = httpx.get(f"{server.url}/e/{ELECTION}", headers={"Host": "evil.example:666"}, timeout=10).text
    assert "evil.example" not in html
    assert 'href="/static/style.css"' in html and 'src="/static/dashboard.js"' in html
    assert httpx.get(f"{server.url}/static/dashboard.js", timeout=10).status_code == 200


def metric(url: str, name: str) -> float:
    """One unlabelled sample from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_metrics_count_viewers_fan_out_and_requests(web):
    server, _, client, _ = web
    before = metric(server.url, "tallyroom_web_alerts_fanned_out_total")
    with httpx.stream("GET", f"{server.url}/e/{ELECTION}/events", timeout=10) as response:
        reader = SseReader(response.iter_lines())  # held: dropping the line iterator closes the response
        alerts, _ = reader.until_tally()
        assert metric(server.url, "tallyroom_web_sse_clients") == 1
        assert metric(server.url, "tallyroom_web_elections_followed") >= 1
    assert (
        metric(server.url, "tallyroom_web_alerts_fanned_out_total")
        == before + len(alerts)
        == before + len(stream_ids(client))
    )
    httpx.get(f"{server.url}/api/e/bad%20id/state", timeout=10)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'tallyroom_http_requests_total{route="/api/e/{election}/state",status="422"}' in text
    assert 'tallyroom_http_requests_total{route="/e/{election}/events",status="200"}' in text


def test_alerts_older_than_the_history_holds_come_from_redis(web):
    _, _, client, _ = web
    held = stream_ids(client)
    small = FeedConfig(block_ms=200, tally_interval=0.1, history_max=4, idle_seconds=1.0)  # holds the newest 4
    assert len(held) > small.history_max
    with WebServer(settings_on_db(WEB_REDIS_DB).model_copy(update={"election": ELECTION}), small) as server:
        for after, expected in ((FROM_START, held), (held[0], held[1:])):
            with httpx.stream("GET", f"{server.url}/e/{ELECTION}/events?after={after}", timeout=10) as response:
                alerts, _ = SseReader(response.iter_lines()).until_tally()
            assert [e.id for e in alerts] == expected


def test_a_seat_still_to_declare_has_its_page_and_one_not_in_the_night_is_404(web):
    # The map and the seat list link every seat of the night, declared or not.
    server, sink, client, _ = web
    waiting = NightSeat(ons_id=seat_id(5), constituency="Seat five", expected_at="2024-07-05T04:30:00+01:00")
    sink.write_update(ResultUpdate(election=ELECTION, night=[waiting]))
    assert not client.exists(ElectionKeys(ELECTION).seat(seat_id(5)))
    page = httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(5)}", timeout=10)
    assert page.status_code == 200
    assert "Seat five" in page.text and "Not declared yet" in page.text and "04:30" in page.text
    assert httpx.get(f"{server.url}/e/{ELECTION}/seat/{seat_id(98)}", timeout=10).status_code == 404


def test_a_feed_ends_when_cancelled_at_any_moment_of_its_redis_reads():
    """redis-py can turn a cancel that lands during a command into a ConnectionError, which the feed
    catches and retries: 66 of 1,000 such loops outlived their cancel before the feed checked for it."""
    import random

    from redis.asyncio import BlockingConnectionPool, Redis

    from tallyroom.consumers.web.events import ElectionFeed

    settings = settings_on_db(WEB_REDIS_DB)
    config = FeedConfig(block_ms=20, tally_interval=0.01)
    rounds = random.Random(9)

    async def cancel_feeds() -> list[int]:
        pool = BlockingConnectionPool.from_url(settings.redis_url, max_connections=20, **settings.redis_kwargs())
        client = Redis(connection_pool=pool)
        survivors = []
        try:
            for round_ in range(300):
                task = asyncio.create_task(ElectionFeed("web-cancel", config).run(client))
                await asyncio.sleep(rounds.uniform(0, 0.06))
                task.cancel()
                done, _ = await asyncio.wait([task], timeout=2.0)
                if not done:
                    survivors.append(round_)
                    while not task.done():  # end it for good, so the next round starts clean
                        task.cancel()
                        await asyncio.wait([task], timeout=0.1)
        finally:
            await client.aclose()
            await pool.aclose()
        return survivors

    assert asyncio.run(cancel_feeds()) == []
