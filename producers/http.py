"""Live entry over HTTP: the same JSON as `tallyroom declare`, posted to /declarations.

The body is one JSON object, a JSON array of objects, or (as
``application/x-ndjson``) one object a line. Every record goes through
``tallyroom.producers.live`` — the same validation and sending as the command — so an
invalid record is answered with its number and field while the valid ones
around it are still sent, and the response waits for the broker's acks.

Status: 202 every record accepted and acknowledged; 422 some refused (the
rest sent and acknowledged); 503 the broker did not acknowledge what was
accepted (safe to resend: a seat's revision already held is ignored);
413 body over ``MAX_BODY_BYTES``.
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
from tallyroom.producers.kafka import DeclarationSender
from tallyroom.producers.live import EntryReport, NightSeats, Refusal, send_records
from tallyroom.settings import Settings

MAX_BODY_BYTES = 5 * 1024 * 1024
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})


class BodyTooLarge(Exception):
    pass


def _answer(
    status: int, accepted: int = 0, acknowledged: int = 0, errors: Iterable[Refusal] = (), **extra
) -> JSONResponse:
    body = {"accepted": accepted, "acknowledged": acknowledged, "errors": [e.as_dict() for e in errors]}
    return JSONResponse(body | extra, status_code=status)


def _refuse_payload(status: int, message: str) -> JSONResponse:
    return _answer(status, errors=[Refusal(1, "payload", message)])


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
) -> FastAPI:
    make_sender = sender_factory or DeclarationSender

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

    @app.post("/declarations")
    async def declarations(request: Request) -> JSONResponse:
        answer = await declare(request)
        metrics.count_answer(json.loads(bytes(answer.body)))
        return answer

    async def declare(request: Request) -> JSONResponse:
        try:
            body = await _read_body(request)
        except BodyTooLarge as exc:
            return _refuse_payload(413, f"body of {exc.args[0]} bytes is over the {MAX_BODY_BYTES} byte limit")
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            records = await run_in_threadpool(split_body, body, media_type in NDJSON_TYPES)
        except UnicodeDecodeError as exc:
            return _refuse_payload(422, f"body is not UTF-8: {exc}")
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError, or nested too deep
            return _refuse_payload(422, f"body is not JSON: {exc}")
        if not any(isinstance(r, bytes) or r.strip() for r in records):
            return _refuse_payload(422, "no records in the body")

        sender: DeclarationSender = request.app.state.sender
        async with request.app.state.send_lock:
            try:
                report: EntryReport = await run_in_threadpool(send_records, records, sender, seats)
            except Exception as exc:  # noqa: BLE001 - a send or flush that raised (broker unreachable)
                sender.futures.clear()  # not this request's to count any more, nor the next's
                return _answer(503, failures=[f"broker did not acknowledge: {exc!r}"])

        if report.failures:
            return _answer(
                503, report.accepted, report.acknowledged, report.errors, failures=[repr(f) for f in report.failures]
            )
        return _answer(422 if report.errors else 202, report.accepted, report.acknowledged, report.errors)

    return app
