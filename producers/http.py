"""Live entry over HTTP: the same JSON as `tallyroom declare`, posted to /declarations.

The body is one JSON object, a JSON array of objects, or (as
``application/x-ndjson``) one object a line. Every record goes through
``tallyroom.producers.live`` — the same validation and sending as the command — so an
invalid record is answered with its number and field while the valid ones
around it are still sent, and the response waits for the broker's acks.

Every write acts as a named operator (``tallyroom.producers.operators``): the request
carries ``Authorization: Bearer <token>``. Only JSON and NDJSON bodies are read, and a
request from a page on another site (an ``Origin`` other than this server's own) is
refused, so a browser cannot be made to post results from elsewhere.

Status: 202 every record accepted and acknowledged; 422 some refused (the
rest sent and acknowledged); 503 the broker did not acknowledge what was
accepted (safe to resend: a seat's revision already held is ignored);
413 body over ``MAX_BODY_BYTES``; 401 no token, or one that is unknown or revoked;
403 a foreign ``Origin``, or a record the operator's role may not send (an entry
operator opening a night): then nothing in the request is sent; 415 a body that is
neither JSON nor NDJSON. A refusal of the request as a whole names record 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tallyroom.metrics import entry_metrics, serve_metrics
from tallyroom.producers.audit import REFUSED, UNACKNOWLEDGED, Attempt, AuditTrail
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.live import (
    Author,
    Checked,
    EntryReport,
    NightSeats,
    Refusal,
    audit_attempts,
    check_records,
    send_checked,
)
from tallyroom.producers.operators import Operator, OperatorStore, may_send
from tallyroom.schemas.events import Source
from tallyroom.schemas.limits import Limits
from tallyroom.settings import Settings

MAX_BODY_BYTES = 5 * 1024 * 1024
JSON_TYPE = "application/json"
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})
BODY_TYPES = NDJSON_TYPES | {JSON_TYPE}


class BodyTooLarge(Exception):
    pass


def _answer(
    status: int, accepted: int = 0, acknowledged: int = 0, errors: Iterable[Refusal] = (), **extra
) -> JSONResponse:
    body = {"accepted": accepted, "acknowledged": acknowledged, "errors": [e.as_dict() for e in errors]}
    return JSONResponse(body | extra, status_code=status)


def _refuse_payload(status: int, message: str) -> JSONResponse:
    return _answer(status, errors=[Refusal(1, "payload", message)])


def refusal_response(status: int, header: str, message: str, **headers: str) -> JSONResponse:
    response = _answer(status, errors=[Refusal(0, header, message)])
    response.headers.update(headers)
    return response


def own_origin(request: Request) -> str:
    """This server's origin as the browser sees it: the scheme and the Host it was asked for."""
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def foreign_origin(request: Request) -> str | None:
    """The request's Origin when it is not this server's own (absent: not a browser's cross-site request)."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    return None if origin.rstrip("/").lower() == own_origin(request).lower() else origin


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _read_body(request: Request) -> bytes:
    """The body, refused as soon as it is known to pass the cap (header or bytes read)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def split_body(body: bytes, ndjson: bool) -> list[str | bytes]:
    """The body's records, each as raw JSON for ``check_record``.

    Raises ValueError when a JSON body is not JSON at all. NDJSON lines are
    passed on as they are (a bad line is refused by number, blank lines are
    skipped but counted, as `tallyroom declare` does with a file's lines).
    """
    if ndjson:
        # "\n" only: splitlines() also splits on U+2028, U+2029 and U+0085, which JSON
        # allows unescaped inside strings (a name with one became two bad records).
        return [line for line in body.decode("utf-8").split("\n")]
    document = json.loads(body)
    items = document if isinstance(document, list) else [document]
    # Re-encoded so the schema parses JSON (timestamps as strings) exactly as from a line.
    return [json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() for item in items]


def create_entry_app(
    settings: Settings,
    sender_factory: Callable[[Settings], DeclarationSender] | None = None,
    seats: NightSeats | None = None,
    audit: AuditTrail | None = None,
) -> FastAPI:
    """The entry server. ``audit`` defaults to the trail in ``settings.redis_url``."""
    from tallyroom.consumers.redis_sink import redis_client

    make_sender = sender_factory or DeclarationSender
    operators = OperatorStore(settings.operators_path)
    limits = Limits.from_settings(settings)
    trail = audit or AuditTrail(redis_client(settings), seats.election if seats else settings.election)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # One producer for the app's life; connecting blocks, so off the event loop.
        app.state.sender = await run_in_threadpool(make_sender, settings)
        # A request's sends and its flush must not interleave with another's:
        # the sender's flush waits on (and clears) every future it holds.
        app.state.send_lock = anyio.Lock()
        try:
            yield
        finally:
            await run_in_threadpool(app.state.sender.close)

    app = FastAPI(title="Tallyroom live entry", lifespan=lifespan)
    metrics = entry_metrics()
    serve_metrics(app, metrics)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    async def refuse(
        request: Request, response: JSONResponse, operator: Operator | None = None, source: str = "http"
    ) -> JSONResponse:
        """Audit a request refused as a whole (one entry), then answer it."""
        error = json.loads(bytes(response.body))["errors"][0]
        await run_in_threadpool(
            trail.record,
            [
                Attempt(
                    outcome=REFUSED,
                    source=source,
                    operator=operator.name if operator else "",
                    role=operator.role.value if operator else "",
                    record=error["record"],
                    status=str(response.status_code),
                    reason=f"{error['field']}: {error['message']}",
                    client=request.client.host if request.client else "",
                )
            ],
        )
        return response

    async def read_records(
        request: Request, operator: Operator, source: str, media_types: frozenset[str]
    ) -> list[str | bytes] | JSONResponse:
        """The body's records, or the refusal (audited) of a body of another type, too large, or not JSON."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in media_types:
            message = f"{media_type or 'none'!r}: send {' or '.join(sorted(media_types))}"
            return await refuse(request, refusal_response(415, "Content-Type", message), operator, source)
        try:
            body = await _read_body(request)
        except BodyTooLarge as exc:
            message = f"body of {exc.args[0]} bytes is over the {MAX_BODY_BYTES} byte limit"
            return await refuse(request, _refuse_payload(413, message), operator, source)
        try:
            records = await run_in_threadpool(split_body, body, media_type in NDJSON_TYPES)
        except UnicodeDecodeError as exc:
            return await refuse(request, _refuse_payload(422, f"body is not UTF-8: {exc}"), operator, source)
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError, or nested too deep
            return await refuse(request, _refuse_payload(422, f"body is not JSON: {exc}"), operator, source)
        if not any(isinstance(r, bytes) or r.strip() for r in records):
            return await refuse(request, _refuse_payload(422, "no records in the body"), operator, source)
        return records

    async def accept(request: Request, records: list[str | bytes], operator: Operator, source: Source) -> JSONResponse:
        """Check, authorise, send and audit the records of one request, as ``operator``."""
        client = request.client.host if request.client else ""
        author = Author(operator.name, source, operator.role.value, client)
        checked: list[Checked] = await run_in_threadpool(check_records, records, limits, seats)
        forbidden = [
            Refusal(
                c.number,
                c.event.kind,
                f"operator {operator.name!r} ({operator.role}) may not send a {c.event.kind}: admin only",
            )
            for c in checked
            if c.event is not None and not may_send(operator.role, c.event.kind)
        ]
        if forbidden:
            why = {r.record: f"{r.field}: {r.message}" for r in forbidden}
            await run_in_threadpool(trail.record, audit_attempts(checked, author, None, 403, why))
            return _answer(403, errors=forbidden)

        sender: DeclarationSender = request.app.state.sender
        async with request.app.state.send_lock:
            try:
                report: EntryReport = await run_in_threadpool(send_checked, checked, sender, author)
            except Exception as exc:  # noqa: BLE001 - a send or flush that raised (broker unreachable)
                sender.futures.clear()  # not this request's to count any more, nor the next's
                why = {c.number: f"broker did not acknowledge: {exc!r}" for c in checked}
                await run_in_threadpool(trail.record, audit_attempts(checked, author, None, 503, why, UNACKNOWLEDGED))
                return _answer(503, failures=[f"broker did not acknowledge: {exc!r}"])

        status = 503 if report.failures else 422 if report.errors else 202
        await run_in_threadpool(trail.record, audit_attempts(checked, author, report, status))
        if report.failures:
            return _answer(
                503, report.accepted, report.acknowledged, report.errors, failures=[repr(f) for f in report.failures]
            )
        return _answer(status, report.accepted, report.acknowledged, report.errors)

    @app.post("/declarations")
    async def declarations(request: Request) -> JSONResponse:
        answer = await declare(request)
        metrics.count_answer(json.loads(bytes(answer.body)))
        return answer

    async def declare(request: Request) -> JSONResponse:
        if origin := foreign_origin(request):
            message = f"{origin[:100]!r} is not this server's origin: no cross-site writes"
            return await refuse(request, refusal_response(403, "Origin", message))
        token = bearer_token(request)
        operator: Operator | None = operators.authenticate(token) if token else None
        if operator is None:
            message = (
                "the token is not an active operator's (unknown or revoked)"
                if token
                else "no operator token: send Authorization: Bearer <token>"
            )
            return await refuse(
                request, refusal_response(401, "Authorization", message, **{"WWW-Authenticate": "Bearer"})
            )
        records = await read_records(request, operator, "http", BODY_TYPES)
        if isinstance(records, JSONResponse):
            return records
        return await accept(request, records, operator, "http")

    from tallyroom.producers.console import EntryServer, add_console  # it builds on this module's helpers

    add_console(app, EntryServer(settings, seats, operators, trail, refuse, read_records, accept))

    return app
