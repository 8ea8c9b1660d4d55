"""The read-only web page: seat bars, the night's clock, gains and losses, a live alert feed.

Everything comes from the Redis contract (README, "The Redis contract"); the
page never writes. Routes:

- ``/`` and ``/e/{election}``        the dashboard (HTML, updated live by ``static/dashboard.js``)
- ``/e/{election}/seat/{ons_id}``    one seat (HTML) with its alerts; a seat to come says so

``/`` shows TALLYROOM_ELECTION (``tallyroom web --election``), else the only election in Redis;
an election that is not in Redis (its night not opened) is a 404 on every route.
- ``/e/{election}/events``           Server-Sent Events: alerts (``id`` = stream entry id), ``tally`` events
- ``/api/e/{election}/state``        the tally as JSON
- ``/api/e/{election}/alerts``       alerts after a stream id, oldest first, as JSON
"""

from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tallyroom.consumers.reader import ElectionNotFound, choose_election
from tallyroom.consumers.web import store, view
from tallyroom.consumers.web.events import FROM_START, FeedConfig, Feeds, FeedUnavailable, ViewerResponse, resume_point
from tallyroom.consumers.web.headers import SecurityHeaders
from tallyroom.consumers.web.seat_alerts import SeatAlerts
from tallyroom.consumers.web.stream_ids import parse_stream_id
from tallyroom.metrics import FeedFigures, serve_metrics, web_metrics
from tallyroom.schemas import Swing
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.web")
HERE = FilePath(__file__).resolve().parent
ELECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as schemas.common.ElectionId
ONS_PATTERN = r"^[EWSNL]\d{8}$"  # as schemas.common.OnsId
LIVE_SECONDS = 25  # the page's badge says live while it has heard from the stream this recently
FEED_ON_PAGE = 2000  # alerts rendered into the first page; a whole night is about 1,000 (2024, with 422 big swings)
API_PAGE_MAX = 1000

ElectionParam = Path(pattern=ELECTION_PATTERN, description="election id, e.g. ge2024")


def stream_id_check(name: str) -> AfterValidator:
    """A parameter that must be a stream id Redis can hold; a 422 naming ``name`` otherwise (never a 500)."""

    def check(value: str | None) -> str | None:
        if value is not None:
            parse_stream_id(value, name)
        return value

    return AfterValidator(check)


REDIS_CONNECTIONS = 100  # page and API requests; each election's feed holds one more while it reads
REDIS_WAIT_SECONDS = 5.0  # a request waits this long for a free connection before a 503


def create_web_app(settings: Settings, feed_config: FeedConfig = FeedConfig()) -> FastAPI:
    configured = settings.election  # else the only election in Redis, looked up per request
    parsed_alerts = store.ParsedAlerts()  # one parse of each alert for every page and API route
    seat_alerts = SeatAlerts(parsed_alerts)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # A blocking pool: a burst of requests queues for a connection instead of failing.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_CONNECTIONS + feed_config.max_feeds,
            timeout=REDIS_WAIT_SECONDS,
            **settings.redis_kwargs(),
        )
        app.state.redis = Redis(connection_pool=pool)
        app.state.feeds = Feeds(app.state.redis, feed_config)
        app.state.seats = store.SeatsCache(feed_config.max_feeds)
        try:
            yield
        finally:
            await app.state.feeds.close()
            await app.state.redis.aclose()
            await pool.aclose()

    app = FastAPI(
        title="Tallyroom", lifespan=lifespan, docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json"
    )
    app.add_middleware(SecurityHeaders, docs_path=app.docs_url)
    app.state.seat_alerts = seat_alerts  # its read count, for tests

    def feed_figures() -> FeedFigures:
        feeds: Feeds | None = getattr(app.state, "feeds", None)  # made at startup
        if feeds is None:
            return FeedFigures()
        return FeedFigures(
            feeds.viewers, len(feeds.feeds), feeds.counts.alerts_fanned_out, feeds.counts.viewers_dropped
        )

    serve_metrics(app, web_metrics(feed_figures))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    def redis_of(request: Request) -> Redis:
        return request.app.state.redis

    def not_found(
        request: Request, message: str, election: str | None = None, present: list[str] | None = None
    ) -> HTMLResponse:
        context = {"election": election or configured or "", "message": message, "present": present or []}
        return templates.TemplateResponse(request, "not_found.html", context, status_code=404)

    class UnknownElection(Exception):
        def __init__(self, failure: ElectionNotFound):
            self.failure = failure

    async def known(request: Request, election: str) -> None:
        """Nothing to do for an election in Redis; else ``UnknownElection`` (a 404 listing those present)."""
        if not await store.election_known(redis_of(request), election):
            present = await store.present_elections(redis_of(request))
            try:
                choose_election(election, present)
            except ElectionNotFound as failure:
                raise UnknownElection(failure) from None

    @app.exception_handler(UnknownElection)
    async def unknown_election(request: Request, exc: UnknownElection):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc.failure), "elections": exc.failure.present}, status_code=404)
        return not_found(request, f"{exc.failure}.", present=exc.failure.present)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # People get a page, programs get JSON.
        if exc.status_code == 404 and not request.url.path.startswith("/api/"):
            return not_found(request, f"There is no page at {request.url.path}.")
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, exc: RedisError):
        # Redis is a dependency, not a bug of the page: say what is wrong, as a 503.
        problem = store.redis_problem(exc, settings)
        log.warning("%s %s: %s", request.method, request.url.path, problem)
        return JSONResponse({"detail": problem}, status_code=503, headers={"Retry-After": "5"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request):
        if configured is not None:
            return await dashboard(request, configured)
        try:
            election = choose_election(None, await store.present_elections(redis_of(request)))
        except ElectionNotFound as failure:
            return not_found(request, f"{failure}.", present=failure.present)
        return await dashboard(request, election)

    @app.get("/e/{election}", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request, election: str):
        if not re.match(ELECTION_PATTERN, election):
            return not_found(request, f"{election!r} is not an election id.")
        await known(request, election)
        state = await store.read_state(redis_of(request), election)
        feed = await store.latest_alerts(redis_of(request), election, FEED_ON_PAGE, parsed_alerts)
        seats = await request.app.state.seats.get(redis_of(request), election)
        return templates.TemplateResponse(request, "index.html", dashboard_context(election, state, feed, seats))

    @app.get("/e/{election}/map", response_class=HTMLResponse, include_in_schema=False)
    async def map_fragment(request: Request, election: str = ElectionParam):
        """The map alone (SVG markup), for a page opened before its night: it draws the map when the night opens."""
        seats: store.NightSeats = await request.app.state.seats.get(redis_of(request), election)
        context = {"map": seats.map, "cells": seats.cells, "seat_href": lambda ons_id: f"/e/{election}/seat/{ons_id}"}
        return templates.TemplateResponse(request, "_map.html", context, headers={"Cache-Control": "no-store"})

    @app.get("/e/{election}/seat/{ons_id}", response_class=HTMLResponse, include_in_schema=False)
    async def seat_page(request: Request, election: str, ons_id: str):
        if not re.match(ELECTION_PATTERN, election):
            return not_found(request, f"{election!r} is not an election id.")
        await known(request, election)
        seat = await store.read_seat(redis_of(request), election, ons_id) if re.match(ONS_PATTERN, ons_id) else None
        if seat is None:
            # A seat of the night still to declare has its page (the seat list and map link every seat).
            to_come = (await store.read_night(redis_of(request), election)).get(ons_id)
            if to_come is None:
                return not_found(request, f"No seat {ons_id} in {election}'s night.", election)
            alerts = await seat_alerts.for_seat(redis_of(request), election, ons_id)
            expected = view.night_clock(to_come.expected_at) if to_come.expected_at else None
            context = {"election": election, "seat": to_come, "expected": expected, "alerts": alerts}
            return templates.TemplateResponse(request, "seat_to_come.html", context)
        alerts = await seat_alerts.for_seat(redis_of(request), election, ons_id)
        return templates.TemplateResponse(request, "seat.html", view.seat_context(election, seat, alerts))

    @app.get("/e/{election}/events", include_in_schema=False)
    async def events(
        request: Request,
        election: str = ElectionParam,
        after: Annotated[str | None, Query(description="resume after this stream id"), stream_id_check("after")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID"), stream_id_check("Last-Event-ID")] = None,
    ):
        start = parse_stream_id(resume_point(last_event_id, after))
        await known(request, election)
        feeds: Feeds = request.app.state.feeds
        try:
            feed = await feeds.open(election)
        except FeedUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
        return ViewerResponse(feeds, feed, start, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/e/{election}/state")
    async def state_api(request: Request, election: str = ElectionParam) -> dict:
        """Seats declared, seats in the night, seats and votes by party, and the full tally snapshot
        (404 for an election not in Redis)."""
        await known(request, election)
        return await store.read_state(redis_of(request), election)

    @app.get("/api/e/{election}/seats")
    async def seats_api(request: Request, election: str = ElectionParam) -> dict:
        """Every seat of the night by name, each with its expected time and its result's summary (or null),
        as of ``version``; served from one read per tally version per process."""
        seats: store.NightSeats = await request.app.state.seats.get(redis_of(request), election)
        return {"version": seats.version, "seats": seats.rows}

    @app.get("/api/e/{election}/alerts")
    async def alerts_api(
        request: Request,
        election: str = ElectionParam,
        after: Annotated[
            str, Query(description="stream id: only alerts strictly after it"), stream_id_check("after")
        ] = FROM_START,
        limit: int = Query(500, ge=1, le=API_PAGE_MAX),
    ) -> list[dict]:
        """Alerts after ``after``, oldest first; each is the Alert JSON plus its ``stream_id``
        (404 for an election not in Redis)."""
        await known(request, election)
        entries = await store.alerts_after(redis_of(request), election, after, limit)
        return [
            {"stream_id": sid, **store.feed_item((sid, fields), parsed_alerts).alert.model_dump(mode="json")}
            for sid, fields in entries
        ]

    @app.get("/healthz", include_in_schema=False)
    async def health(request: Request):
        """200 ``{"redis": "ok"}``; 503 with what is down (unreachable, credentials refused) otherwise."""
        try:
            await redis_of(request).ping()
        except RedisError as exc:
            return JSONResponse(
                {"redis": "down", "detail": store.redis_problem(exc, settings)},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return {"redis": "ok"}

    return app


NEXT_SEATS = 5  # seats listed as expected next


def dashboard_context(election: str, state: dict, feed: list[view.FeedItem], seats: store.NightSeats) -> dict:
    tally = state["tally"]
    coming = view.to_come(seats.night, seats.winners)
    return {
        "map": seats.map,
        "cells": seats.cells,
        "banner": view.night_banner([item.alert for item in feed]),
        "to_come": len(coming) if seats.night else max(state["total"] - state["declared"], 0),
        "next_seats": [s for s in coming if s.expected_at is not None][:NEXT_SEATS],
        "timetable": any(s.expected_at is not None for s in seats.night.values()),
        "night_clock": view.night_clock,
        "election": election,
        "state": state,
        "bars": view.bars(state),
        "changes": view.changes(state),
        "blank": view.BLANK_BAR,
        "majority_position": view.majority_position(state),
        "majority_line": tally["majority_line"] if tally else "",
        "clock": view.night_clock(tally["as_of"] if tally else None),
        "swing": view.swing_in_full(Swing.model_validate(tally["swing"])) if tally and tally.get("swing") else None,
        "progress": round(100 * state["declared"] / state["total"], 2) if state["total"] else 0,
        "feed": feed,
        "labels": view.kind_labels(),
        "seat_href": lambda ons_id: f"/e/{election}/seat/{ons_id}" if ons_id else "",
        "config": {
            "election": election,
            "events": f"/e/{election}/events",
            "after": feed[0].stream_id if feed else FROM_START,
            "parties": view.parties_json(),
            "unknownColour": view.UNKNOWN_COLOUR,
            "kinds": view.kinds_json(),
            "feedMax": FEED_ON_PAGE,
            "seatsApi": f"/api/e/{election}/seats",
            "mapFragment": f"/e/{election}/map",
            "seatsVersion": seats.version,
            "seats": seats.rows,
            "hasNight": bool(seats.night),
            # Opened before the night: the page fetches its map (/e/E/map) once the night opens.
            "awaitingNight": not seats.night and not state["total"],
            "undeclaredColour": view.UNDECLARED_COLOUR,
            "nextSeats": NEXT_SEATS,
            "liveSeconds": LIVE_SECONDS,
        },
    }


def serve_web(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` under uvicorn; on SIGTERM/SIGINT every event stream ends first, with a retry hint."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            feeds: Feeds | None = getattr(app.state, "feeds", None)
            if feeds is not None:
                feeds.end_all()  # else open streams hold the server up until the graceful timeout
            await super().shutdown(sockets)

    Server(uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=5)).run()
