"""The per-request glue of ``POST /v1/recommend`` made cheaper must answer as what it replaced:
the body read from ``receive`` (as ``Request.body()``), headers found in the raw list (as
``request.headers.get``), the reply's raw headers (as ``Response(..., headers=cors)``), the
request's hour and weekday (as ``time.gmtime``)."""
from __future__ import annotations

import asyncio
import time

import pytest

from server.localtime import LocalTime
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from server import serving
from server.auth import cors_for, header
from server.errors import ApiError
from server.ingest.handler import read_body


def _request(messages: list[dict], headers: list[tuple[bytes, bytes]]) -> Request:
    queue = list(messages)

    async def receive():
        return queue.pop(0) if queue else {"type": "http.disconnect"}
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}, receive)


def _chunks(body: bytes, n: int) -> list[dict]:
    step = max(1, -(-len(body) // n))
    parts = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    return [{"type": "http.request", "body": p, "more_body": k < len(parts) - 1} for k, p in enumerate(parts)]


@pytest.mark.parametrize("chunks", [1, 3, 7])
@pytest.mark.parametrize("declared", [True, False])
def test_read_body_reads_what_request_body_reads(chunks, declared):
    body = b'{"slots": [' + b'{"id": "a"},' * 40 + b'{"id": "z"}]}'
    headers = [(b"content-length", str(len(body)).encode())] if declared else []
    got = _request(_chunks(body, chunks), headers)
    assert asyncio.run(read_body(got, 10_000)) == body
    assert asyncio.run(got.body()) == body  # kept on the request, as Request.body() keeps it
    assert asyncio.run(read_body(got, 10_000)) == body
    ref = _request(_chunks(body, chunks), headers)
    assert asyncio.run(ref.body()) == body


def test_read_body_refuses_too_large_bodies_and_sees_disconnects():
    body = b"x" * 5000
    with pytest.raises(ApiError) as declared:
        asyncio.run(read_body(_request(_chunks(body, 1), [(b"content-length", b"5000")]), 4096))
    assert declared.value.status == 413 and "5000 bytes" in declared.value.message
    with pytest.raises(ApiError) as chunked:  # no content-length: refused once past the limit
        asyncio.run(read_body(_request(_chunks(body, 5), []), 4096))
    assert chunked.value.status == 413 and chunked.value.message == "body exceeds the limit of 4096 bytes"
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(_request(_chunks(body, 5)[:2], []), 10_000))
    assert asyncio.run(read_body(_request([{"type": "http.request"}], []), 10)) == b""


def test_header_finds_what_request_headers_get_finds():
    raw = [(b"host", b"x"), (b"origin", b"https://a.example"), (b"x-funnelrec-key", b"pk_1"),
           (b"origin", b"https://second.example"), (b"x-forwarded-for", b"1.2.3.4, 5.6.7.8"),
           (b"content-length", b"12"), (b"x-latin", "caf\xe9".encode("latin-1"))]
    request = _request([], raw)
    for name in ("origin", "x-funnelrec-key", "x-forwarded-for", "content-length", "x-latin", "missing", "host"):
        assert header(request, name.encode()) == request.headers.get(name)


@pytest.mark.parametrize("origin", [None, "https://shop.example", "https://ünï.example"])
def test_reply_headers_are_those_of_a_response(origin):
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
    assert cors_for(origin) == cors
    for body in (b'{"ok":true}', b"[]" * 600):
        for _ in range(2):  # made, then from the kept raw headers
            reply = serving._Reply(body, origin)
            ref = Response(body, media_type="application/json", headers=cors)
            assert reply.raw_headers == ref.raw_headers and reply.body == ref.body and reply.status_code == 200


def test_hour_and_weekday_are_those_of_gmtime():
    now = int(time.time() * 1000)
    for now_ms in [0, 1, 3_599_999, 3_600_000, 86_399_999, 86_400_000, now, now + 123_456_789,
                   *range(now, now + 8 * 86_400_000, 1_234_567)]:
        for offset_min in (0, 60, -60, 330, -570, 840, -720):
            lt = time.gmtime(now_ms / 1000 + offset_min * 60)
            if now_ms // 1000 + offset_min * 60 < 0:
                continue
            assert LocalTime(offset_min=offset_min).at(now_ms) == (lt.tm_hour, lt.tm_wday), (now_ms, offset_min)


def test_items_of_an_empty_cart_are_one_shared_read_only_array():
    items = serving._items({"p1": 0, "p2": 1}.get, [])
    assert items is serving._items(None, []) and len(items) == 0 and items.dtype.name == "int32"
    with pytest.raises(ValueError):
        items[:] = 1  # shared by requests: no one may write into it

    def item(p):
        return {"p1": 0, "p2": 1}.get(p, -1)
    got = serving._items(item, ["p2", "nope", "p1"])
    assert got.tolist() == [1, 0] and got.dtype.name == "int32" and got.flags.writeable
