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

import re
from contextlib import asynccontextmanager
from pathlib import Path as FilePath

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from redis.asyncio import Redis
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tallyroom.consumers.web import store, view
from tallyroom.consumers.web.events import FROM_START, FeedTiming, live_events, resume_point
from tallyroom.schemas import Swing
from tallyroom.settings import Settings

HERE = FilePath(__file__).resolve().parent
ELECTION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as schemas.common.ElectionId
ONS_PATTERN = r"^[EWSNL]\d{8}$"  # as schemas.common.OnsId
STREAM_ID_PATTERN = view.STREAM_ID.pattern
FEED_ON_PAGE = 2000  # alerts rendered into the first page; a whole night is about 1,000 (2024, with 422 big swings)
API_PAGE_MAX = 1000

ElectionParam = Path(pattern=ELECTION_PATTERN, description="election id, e.g. ge2024")


def create_web_app(settings: Settings, timing: FeedTiming = FeedTiming()) -> FastAPI:
    default_election = settings.election or view.DEFAULT_ELECTION

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.redis = Redis.from_url(settings.redis_url, **settings.redis_kwargs())
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="Tallyroom", lifespan=lifespan, docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json"
    )
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
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

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
        after: str | None = Query(None, pattern=STREAM_ID_PATTERN, description="resume after this stream id"),
        last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    ):
        if last_event_id is not None and not view.valid_stream_id(last_event_id):
            raise HTTPException(422, f"header Last-Event-ID: {last_event_id!r} is not a Redis stream id")
        start = resume_point(last_event_id, after)
        return EventSourceResponse(
            live_events(redis_of(request), election, start, timing),
            ping=15,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/api/e/{election}/state")
    async def state_api(request: Request, election: str = ElectionParam) -> dict:
        """Seats declared, seats in the night, seats and votes by party, and the full tally snapshot."""
        return await store.read_state(redis_of(request), election)

    @app.get("/api/e/{election}/alerts")
    async def alerts_api(
        request: Request,
        election: str = ElectionParam,
        after: str = Query(
            FROM_START, pattern=STREAM_ID_PATTERN, description="stream id: only alerts strictly after it"
        ),
        limit: int = Query(500, ge=1, le=API_PAGE_MAX),
    ) -> list[dict]:
        """Alerts after ``after``, oldest first; each is the Alert JSON plus its ``stream_id``."""
        entries = await store.alerts_after(redis_of(request), election, after, limit)
        return [
            {"stream_id": sid, **store.feed_item((sid, fields)).alert.model_dump(mode="json")}
            for sid, fields in entries
        ]

    @app.get("/healthz", include_in_schema=False)
    async def health(request: Request) -> dict:
        await redis_of(request).ping()
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
        "labels": view.ALERT_LABELS,
        "seat_href": lambda ons_id: f"/e/{election}/seat/{ons_id}" if ons_id else "",
        "config": {
            "election": election,
            "events": f"/e/{election}/events",
            "after": feed[0].stream_id if feed else FROM_START,
            "colours": view.PARTY_COLOURS,
            "unknownColour": view.UNKNOWN_COLOUR,
            "labels": view.ALERT_LABELS,
            "feedMax": FEED_ON_PAGE,
        },
    }
