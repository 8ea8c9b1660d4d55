"""The read-only web page: seat bars, the night's clock, gains and losses, a live alert feed.

Everything comes from the Redis contract (README, "The Redis contract"); the
page never writes. Routes:

- ``/`` and ``/e/{election}``        the dashboard (HTML, updated live by ``static/dashboard.js``)
- ``/e/{election}/seat/{ons_id}``    one seat (HTML), 404 page for a seat not declared
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

from tallyroom.consumers.web import store, view
from tallyroom.consumers.web.events import FROM_START, FeedConfig, Feeds, FeedUnavailable, ViewerResponse, resume_point
from tallyroom.consumers.web.headers import SecurityHeaders
from tallyroom.consumers.web.stream_ids import parse_stream_id
from tallyroom.metrics import FeedFigures, serve_metrics, web_metrics
from tallyroom.schemas import Swing
from tallyroom.settings import Settings

log = logging.getLogger("tallyroom.web")
HERE = FilePath(__file__).resolve().parent
ELECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as schemas.common.ElectionId
ONS_PATTERN = r"^[EWSNL]\d{8}$"  # as schemas.common.OnsId
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
    default_election = settings.election or view.DEFAULT_ELECTION

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

    def not_found(request: Request, message: str, election: str = default_election) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "not_found.html", {"election": election, "message": message}, status_code=404
        )

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
        return await dashboard(request, default_election)

    @app.get("/e/{election}", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request, election: str):
        if not re.match(ELECTION_PATTERN, election):
            return not_found(request, f"{election!r} is not an election id.")
        state = await store.read_state(redis_of(request), election)
        feed = await store.latest_alerts(redis_of(request), election, FEED_ON_PAGE)
        return templates.TemplateResponse(request, "index.html", dashboard_context(election, state, feed))

    @app.get("/e/{election}/seat/{ons_id}", response_class=HTMLResponse, include_in_schema=False)
    async def seat_page(request: Request, election: str, ons_id: str):
        if not re.match(ELECTION_PATTERN, election):
            return not_found(request, f"{election!r} is not an election id.")
        seat = await store.read_seat(redis_of(request), election, ons_id) if re.match(ONS_PATTERN, ons_id) else None
        if seat is None:
            return not_found(request, f"No result for seat {ons_id} in {election} (yet).", election)
        return templates.TemplateResponse(
            request,
            "seat.html",
            {
                "election": election,
                "seat": seat,
                "candidates": view.candidate_rows(seat),
                "verdict": view.seat_verdict(seat),
                "winner_colour": view.colour(seat.winning_party),
                "declared": view.night_clock(seat.declared_at),
                "swing": view.swing_text(seat.swing),
                "points": view.points,
            },
        )

    @app.get("/e/{election}/events", include_in_schema=False)
    async def events(
        request: Request,
        election: str = ElectionParam,
        after: Annotated[str | None, Query(description="resume after this stream id"), stream_id_check("after")] = None,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID"), stream_id_check("Last-Event-ID")] = None,
    ):
        start = parse_stream_id(resume_point(last_event_id, after))
        feeds: Feeds = request.app.state.feeds
        try:
            feed = await feeds.open(election)
        except FeedUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
        return ViewerResponse(feeds, feed, start, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/e/{election}/state")
    async def state_api(request: Request, election: str = ElectionParam) -> dict:
        """Seats declared, seats in the night, seats and votes by party, and the full tally snapshot."""
        return await store.read_state(redis_of(request), election)

    @app.get("/api/e/{election}/alerts")
    async def alerts_api(
        request: Request,
        election: str = ElectionParam,
        after: Annotated[
            str, Query(description="stream id: only alerts strictly after it"), stream_id_check("after")
        ] = FROM_START,
        limit: int = Query(500, ge=1, le=API_PAGE_MAX),
    ) -> list[dict]:
        """Alerts after ``after``, oldest first; each is the Alert JSON plus its ``stream_id``."""
        entries = await store.alerts_after(redis_of(request), election, after, limit)
        return [
            {"stream_id": sid, **store.feed_item((sid, fields)).alert.model_dump(mode="json")}
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


def dashboard_context(election: str, state: dict, feed: list[view.FeedItem]) -> dict:
    tally = state["tally"]
    return {
        "election": election,
        "state": state,
        "bars": view.bars(state),
        "changes": view.changes(state),
        "blank": view.BLANK_BAR,
        "majority_position": view.majority_position(state),
        "majority_line": tally["majority_line"] if tally else "",
        "clock": view.night_clock(tally["as_of"] if tally else None),
        "swing": view.swing_text(Swing.model_validate(tally["swing"])) if tally and tally.get("swing") else None,
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
