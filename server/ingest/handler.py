"""Where an event goes: ``POST /v1/events`` (browsers) and ``POST /v1/events/import`` (secret).

body -> size check -> decode -> tenant from key (+ origin) -> rate limit -> per-event validation
-> bot / privacy filter -> the shard's writer (group commit) -> reply after COMMIT.
"""
from __future__ import annotations

import logging
import time

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from .. import metrics
from ..auth import client_ip, cors_headers, header, public_tenant, secret_tenant
from ..errors import ApiError
from .bots import bot_reason
from .schema import Event, TypedBatch, check_ids, decode_batch, decode_event, event_from_obj, explain
from .store import StoreResult, count_drops_job, store_events_job

log = logging.getLogger("funnelrec.ingest")

MAX_REJECTED_LISTED = 1000
_encode_json = msgspec.json.Encoder().encode


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it passes ``limit`` bytes. Read from the ASGI
    ``receive`` as ``Request.body()`` does, without its async generator (a few µs on every
    event and recommendation request), and kept on the request as it keeps it."""
    declared = header(request, b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes")
    if hasattr(request, "_body"):  # read already (``Request.body()`` keeps it there)
        return request._body
    receive = request.receive
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:  # no (valid) content-length: a chunked upload
                    raise ApiError(413, "body_too_large", f"body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body  # what ``request.body()`` answers from now on
    return body


def validate(raw_events, max_future_ms: int, now_ms: int, from_obj: bool = False, decoded: bool = False):
    """Split into (valid events, rejected [{index, reason}]). ``decoded``: the events are already
    typed (``TypedBatch``), only the id characters and the time are left to check."""
    valid: list[Event] = []
    rejected: list[dict] = []
    limit = now_ms + max_future_ms
    convert = check_ids if decoded else event_from_obj if from_obj else decode_event
    for i, raw in enumerate(raw_events):
        try:
            ev = convert(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            rejected.append({"index": i, "reason": explain(exc)})
            continue
        if ev.ts > limit:
            rejected.append({"index": i, "reason": f"`ts` {ev.ts} is in the future (server time {now_ms})"})
            continue
        valid.append(ev)
    return valid, rejected


async def post_events(request: Request) -> JSONResponse:
    app = request.app
    settings = app.state.settings
    body = await read_body(request, settings.max_body_bytes)
    try:
        batch = decode_batch(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, "invalid_body", f"expected a JSON object with an `events` array: {exc}")
    tenant = public_tenant(request, batch.site_key)
    cors = cors_headers(request, tenant)
    if len(batch.events) > settings.max_events_per_batch:
        raise ApiError(413, "too_many_events",
                       f"{len(batch.events)} events in one batch; the limit is {settings.max_events_per_batch}", headers=cors)
    ip = client_ip(request, settings.trust_forwarded_for)
    wait = app.state.limiter.check(tenant.slug, ip)
    if wait:
        retry = app.state.limiter.retry_after_header(wait)
        raise ApiError(429, "rate_limited", f"too many requests; retry after {retry} s",
                       headers={**cors, "Retry-After": retry}, retry_after=int(retry))
    now_ms = int(time.time() * 1000)
    valid, rejected = validate(batch.events, settings.max_clock_skew_s * 1000, now_ms,
                               decoded=isinstance(batch, TypedBatch))
    if rejected:
        metrics.EVENTS_REJECTED.labels(tenant.slug, "invalid").inc(len(rejected))
    ctx = batch.ctx
    drop = None
    if not tenant.test_mode:
        drop = bot_reason(request.headers.get("user-agent"), bool(ctx and ctx.webdriver))
        if drop is None and ctx is not None and ctx.dnt and tenant.honor_dnt:
            drop = "do_not_track"
    shard = app.state.shards.get(tenant)
    accepted = duplicates = dropped = 0
    if valid and drop:
        dropped = len(valid)
        metrics.EVENTS_DROPPED.labels(tenant.slug, drop).inc(dropped)
        await shard.write(count_drops_job(drop, dropped, now_ms))
    elif valid:
        result = await shard.write(store_events_job(valid, now_ms, "web"))
        accepted, duplicates = result.accepted, result.duplicates
        metrics.accepted(tenant.slug).inc(accepted)
        if duplicates:
            metrics.EVENTS_DUPLICATE.labels(tenant.slug).inc(duplicates)
    app.state.notify_events(tenant, shard, accepted)
    body = {"ok": True, "accepted": accepted, "duplicates": duplicates, "dropped": dropped,
            "rejected": rejected[:MAX_REJECTED_LISTED]}
    if drop:
        body["drop_reason"] = drop
    return Response(_encode_json(body), media_type="application/json", headers=cors)


def parse_records(body: bytes, content_type: str) -> list:
    """A JSON array, a JSON object with a list under a known key, or NDJSON lines.

    A line of NDJSON that is not JSON becomes a ``BadLine`` so it is rejected on its own."""
    text = body.strip()
    if not text:
        return []
    if "ndjson" not in content_type and "jsonlines" not in content_type:
        try:
            data = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            if b"\n" not in text:
                raise ApiError(400, "invalid_body", f"expected a JSON array or NDJSON: {exc}")
        else:
            if isinstance(data, dict):
                for key in ("events", "products", "users", "reviews", "records", "ids"):
                    if isinstance(data.get(key), list):
                        return data[key]
                return [data]
            if isinstance(data, list):
                return data
            raise ApiError(400, "invalid_body", "expected a JSON array, an object with a list, or NDJSON")
    out: list = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            out.append(msgspec.json.decode(line))
        except msgspec.DecodeError as exc:
            out.append(BadLine(f"line {n}: not JSON: {exc}"))
    return out


class BadLine:
    def __init__(self, reason: str):
        self.reason = reason


async def import_events(request: Request) -> JSONResponse:
    """Historical or server-side events (secret key): original timestamps kept, no bot filter."""
    app = request.app
    settings = app.state.settings
    tenant = secret_tenant(request)
    body = await read_body(request, settings.max_import_body_bytes)
    records = parse_records(body, request.headers.get("content-type", ""))
    if len(records) > settings.max_import_records:
        raise ApiError(413, "too_many_records", f"{len(records)} records; the limit is {settings.max_import_records}")
    source = request.query_params.get("source", "import")
    if source not in ("import", "api"):
        raise ApiError(400, "invalid_parameter", "`source` must be import or api")
    result, rejected = await ingest_records(app, tenant, records, source)
    return JSONResponse({"ok": True, "accepted": result.accepted, "duplicates": result.duplicates,
                         "rejected": rejected[:MAX_REJECTED_LISTED], "rejected_count": len(rejected)})


async def ingest_records(app, tenant, records: list, source: str):
    settings = app.state.settings
    now_ms = int(time.time() * 1000)
    good, bad_lines = [], []
    for i, r in enumerate(records):
        if isinstance(r, BadLine):
            bad_lines.append({"index": i, "reason": r.reason})
        else:
            good.append((i, r))
    valid, rejected = validate([r for _, r in good], settings.max_clock_skew_s * 1000, now_ms, from_obj=True)
    for r in rejected:
        r["index"] = good[r["index"]][0]
    rejected = sorted(bad_lines + rejected, key=lambda r: r["index"])
    shard = app.state.shards.get(tenant)
    result = StoreResult()
    if valid:
        result = await shard.write(store_events_job(valid, now_ms, source))
        metrics.EVENTS_ACCEPTED.labels(tenant.slug).inc(result.accepted)
    if rejected:
        metrics.EVENTS_REJECTED.labels(tenant.slug, "invalid").inc(len(rejected))
    app.state.notify_events(tenant, shard, result.accepted)
    return result, rejected
