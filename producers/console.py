"""The operator console: ``/console`` on the entry server, for typing a count's results by hand.

An operator signs in with their token once; it is kept in a cookie that is HttpOnly (page
scripts cannot read it), Secure and SameSite=Strict (never sent on a request from another
site), and checked again on every request, so a revoked token stops working at once. Every
write also passes the entry server's own-Origin check, and goes through the same checks,
role rules, sending and audit as ``POST /declarations`` (``source`` "console").

The page is plain HTML forms; ``static/console.js`` finds seats, shows a seat's nominations,
works out the winner, majority and turnout while the votes are typed, warns of anything
inconsistent before sending, and shows what was sent and what the worker raised from it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import redis
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from tallyroom.consumers.keys import ElectionKeys, stream_entries
from tallyroom.producers.audit import REFUSED, Attempt, AuditTrail
from tallyroom.producers.http import JSON_TYPE, foreign_origin, refusal_response
from tallyroom.producers.live import NightSeats
from tallyroom.producers.operators import Operator, OperatorStore, Role
from tallyroom.schemas import SeatResult
from tallyroom.schemas.common import read_stored
from tallyroom.settings import Settings

COOKIE = "tallyroom_console"
COOKIE_SECONDS = 12 * 3600  # a night's shift
HERE = Path(__file__).resolve().parent
SEARCH_LIMIT = 20
SIGN_IN_MAX_BYTES = 4096
SEAT_ALERTS_SCANNED = 2000  # the latest alerts of the election looked through for one seat's


@dataclass
class EntryServer:
    """What the console shares with ``POST /declarations`` (``tallyroom.producers.http``)."""

    settings: Settings
    seats: NightSeats | None
    operators: OperatorStore
    trail: AuditTrail
    refuse: Callable[..., Awaitable[JSONResponse]]
    read_records: Callable[..., Awaitable[list | JSONResponse]]
    accept: Callable[..., Awaitable[JSONResponse]]


def seat_matches(seats: NightSeats, text: str, limit: int = SEARCH_LIMIT) -> list[tuple[str, str]]:
    """Seats whose name contains ``text`` (any case), names that start with it first; or whose ONS id is it."""
    needle = text.strip().casefold()
    if not needle:
        return []
    found = [
        (not name.casefold().startswith(needle), name, ons_id)
        for ons_id, name in seats.names.items()
        if needle in name.casefold() or needle == ons_id.casefold()
    ]
    return [(ons_id, name) for _, name, ons_id in sorted(found)[:limit]]


def add_console(app: FastAPI, entry: EntryServer) -> None:
    from tallyroom.consumers.redis_sink import redis_client

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    client: redis.Redis = redis_client(entry.settings)
    seats = entry.seats

    def signed_in(request: Request) -> Operator | None:
        token = request.cookies.get(COOKIE)
        return entry.operators.authenticate(token) if token else None

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        election = seats.election if seats else None
        return templates.TemplateResponse(
            request, name, {"election": election, "seats": seats, **context}, status_code=status
        )

    def unauthorised() -> JSONResponse:
        return refusal_response(401, "Cookie", "not signed in, or the token was revoked: sign in again at /console")

    @app.get("/console", response_class=HTMLResponse)
    async def console(request: Request) -> Response:
        operator = signed_in(request)
        if operator is None:
            return page(request, "sign-in.html")
        return page(request, "console.html", operator=operator, is_admin=operator.role is Role.ADMIN)

    @app.post("/console/sign-in", response_class=HTMLResponse)
    async def sign_in(request: Request) -> Response:
        if origin := foreign_origin(request):
            return page(request, "sign-in.html", 403, error=f"{origin[:100]!r} is not this server's origin")
        # A plain form (application/x-www-form-urlencoded) of one short field: the stdlib reads it.
        body = await request.body()
        fields = parse_qs(body[:SIGN_IN_MAX_BYTES].decode("utf-8", "replace")) if len(body) <= SIGN_IN_MAX_BYTES else {}
        token = (fields.get("token") or [""])[0].strip()
        operator = entry.operators.authenticate(token) if token else None
        if operator is None:
            await run_in_threadpool(
                entry.trail.record,
                [
                    Attempt(
                        outcome=REFUSED,
                        source="console",
                        action="sign-in",
                        status="401",
                        reason="the token is not an active operator's (unknown or revoked)",
                        client=request.client.host if request.client else "",
                    )
                ],
            )
            return page(request, "sign-in.html", 401, error="That token is not an active operator's.")
        response = RedirectResponse("/console", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=COOKIE_SECONDS,
            path="/console",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    @app.post("/console/sign-out")
    async def sign_out(request: Request) -> Response:
        response = RedirectResponse("/console", status_code=303)
        response.delete_cookie(COOKIE, path="/console", secure=True, httponly=True, samesite="strict")
        return response

    @app.get("/console/api/seats")
    async def find_seats(request: Request, q: str = "") -> JSONResponse:
        if signed_in(request) is None:
            return unauthorised()
        if seats is None:
            return JSONResponse({"seats": []})
        return JSONResponse({"seats": [{"ons_id": o, "constituency": n} for o, n in seat_matches(seats, q)]})

    @app.get("/console/api/seat/{ons_id}")
    async def seat(request: Request, ons_id: str) -> JSONResponse:
        if signed_in(request) is None:
            return unauthorised()
        if seats is None or ons_id not in seats.ons_ids:
            return JSONResponse({"error": f"seat {ons_id!r} is not in the night being entered"}, status_code=404)
        keys = ElectionKeys(seats.election)
        raw = await run_in_threadpool(client.get, keys.seat(ons_id))
        held = read_stored(SeatResult, raw) if raw else None
        entries = stream_entries(await run_in_threadpool(client.xrevrange, keys.alerts, "+", "-", SEAT_ALERTS_SCANNED))
        alerts = [
            {"kind": f.get("kind"), "headline": f.get("headline"), "id": f.get("id")}
            for _, f in entries
            if f.get("ons_id") == ons_id
        ]
        return JSONResponse(
            {
                "election": seats.election,
                "ons_id": ons_id,
                "constituency": seats.names.get(ons_id),
                "held_by": seats.held_by.get(ons_id),
                "nominees": [n.model_dump() for n in seats.nominations.get(ons_id, ())],
                "held": json.loads(held.model_dump_json()) if held else None,
                "alerts": alerts,
            }
        )

    @app.post("/console/api/send")
    async def send(request: Request) -> JSONResponse:
        if origin := foreign_origin(request):
            message = f"{origin[:100]!r} is not this server's origin: no cross-site writes"
            return await entry.refuse(request, refusal_response(403, "Origin", message), None, "console")
        operator = signed_in(request)
        if operator is None:
            return await entry.refuse(request, unauthorised(), None, "console")
        records = await entry.read_records(request, operator, "console", frozenset({JSON_TYPE}))
        if isinstance(records, JSONResponse):
            return records
        return await entry.accept(request, records, operator, "console")
