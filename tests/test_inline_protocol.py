"""``server/inline.InlineProtocol``: the hot paths answered inside the protocol's callbacks give
the same bytes as uvicorn's ASGI path (a real uvicorn on a free port, the real app, raw
sockets), and everything it does not take (chunked, large, expect-100, pipelined behind a
waiting request, other paths) still goes the usual way."""
from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest

from server import inline
from server.app import create_app
from tests.engine.fixtures import product
from tests.helpers import BROWSER_UA, ORIGIN, make_settings

pytestmark = pytest.mark.skipif(inline.InlineProtocol is None, reason="no httptools")

ASGI = {"on": False}   # the next connections take uvicorn's path (the reference)
ANSWERED = []          # paths answered inline


if inline.InlineProtocol is not None:
    class Probe(inline.InlineProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            if ASGI["on"]:
                self._hot = None

        def _answer(self, cycle):
            ANSWERED.append(cycle.path)
            super()._answer(cycle)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import uvicorn

    app = create_app(make_settings(tmp_path_factory.mktemp("inline")))
    t, secret = app.state.registry.create("shop", [ORIGIN])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                            http=Probe)   # (as funnelrec serve runs it)
    server = uvicorn.Server(config)
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield app, port, t, secret
    server.should_exit = True
    th.join(20)


def _raw(port: int, data: bytes, until: int = 1, timeout: float = 10.0) -> bytes:
    """Sends ``data`` on a new connection, reads until ``until`` whole responses arrived (or close)."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(data)
        buf = b""
        deadline = time.monotonic() + timeout
        while _complete(buf) < until and time.monotonic() < deadline:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        c.close()


def _complete(buf: bytes) -> int:
    n, at = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", at)
        if end < 0:
            return n
        m = re.search(rb"content-length: (\d+)", buf[at:end], re.I)
        size = int(m.group(1)) if m else 0
        if len(buf) < end + 4 + size:
            return n
        n, at = n + 1, end + 4 + size


def _post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1", f"User-Agent: {BROWSER_UA}", f"Origin: {ORIGIN}",
            "Content-Type: text/plain", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _masked(data: bytes) -> bytes:
    data = re.sub(rb"date: [^\r]*", b"date: -", data)
    return re.sub(rb'"rec_id":"r_[0-9a-z_]+"', b'"rec_id":"-"', data)


def _both(port: int, data: bytes, until: int = 1) -> tuple[bytes, bytes]:
    """The same bytes answered by uvicorn's ASGI path, then inline."""
    ASGI["on"] = True
    try:
        ref = _raw(port, data, until)
    finally:
        ASGI["on"] = False
    del ANSWERED[:]
    return ref, _raw(port, data, until)


@pytest.fixture(scope="module")
def shop(served):
    """A catalog, sessions and a model (the events posted inline: they wait for the writer)."""
    app, port, t, secret = served
    rows = [product(f"p{i}", f"Product {i}", "Home > Mugs" if i < 5 else "Food", price=5 + i) for i in range(10)]
    auth = f"Authorization: Bearer {secret}"
    got = _raw(port, _post("/v1/catalog/products", json.dumps(rows).encode(), auth, "Content-Type: application/json"))
    assert got.startswith(b"HTTP/1.1 200"), got
    now = int(time.time() * 1000) - 60_000
    evs = []
    for s in range(12):
        evs += [{"id": f"a{s}", "type": "page_view", "page": "detail", "product": "p1", "visitor": f"u{s}",
                 "session": f"x{s}", "ts": now + s},
                {"id": f"b{s}", "type": "page_view", "page": "detail", "product": "p2", "visitor": f"u{s}",
                 "session": f"x{s}", "ts": now + s + 1}]
    del ANSWERED[:]
    got = _raw(port, _post("/v1/events", json.dumps({"site_key": t.site_key, "events": evs}).encode()))
    assert got.startswith(b"HTTP/1.1 200") and b'"accepted":24' in got, got
    assert ANSWERED == ["/v1/events"]   # inline, then carried on by a task while the writer commits
    got = _raw(port, _post("/v1/engine/rebuild?wait=1", b"", auth))
    assert got.startswith(b"HTTP/1.1 200"), got
    return t


def _rec(site_key: str, **kw) -> bytes:
    body = {"site_key": site_key, "visitor": "u1", "session": "x1", "page": {"type": "detail", "product": "p1"},
            "slots": [{"id": "sim", "placement": "detail_similar", "count": 4},
                      {"id": "cmp", "placement": "detail_complements", "count": 4}]}
    body.update(kw)
    return json.dumps(body).encode()


def test_a_recommendation_is_the_same_bytes_inline(served, shop):
    _, port, _, _ = served
    ref, got = _both(port, _post("/v1/recommend", _rec(shop.site_key)))
    assert ANSWERED == ["/v1/recommend"]
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"access-control-allow-origin: " + ORIGIN.encode() in got
    assert _masked(got) == _masked(ref)
    assert json.loads(got.partition(b"\r\n\r\n")[2])["slots"]["sim"]["items"]


@pytest.mark.parametrize("body", [b"{not json", json.dumps({"site_key": "nope", "visitor": "v", "page": {"type": "main"},
                                                                "slots": [{"id": "a", "placement": "main"}]}).encode(),
                                  b'{"site_key": "x"}'])
def test_errors_are_the_same_bytes_inline(served, shop, body):
    _, port, _, _ = served
    ref, got = _both(port, _post("/v1/recommend", body))
    assert ANSWERED == ["/v1/recommend"] and re.match(rb"HTTP/1.1 4\d\d ", got), got
    assert _masked(got) == _masked(ref)


def test_keep_alive_pipelining_and_close(served, shop):
    _, port, _, _ = served
    one = _post("/v1/recommend", _rec(shop.site_key))
    ref, got = _both(port, one * 3, until=3)             # three in one segment: answered in order
    assert _complete(got) == 3 and ANSWERED == ["/v1/recommend"] * 3
    assert _masked(got) == _masked(ref)
    closing = _post("/v1/recommend", _rec(shop.site_key), "Connection: close")
    ref, got = _both(port, closing)
    assert b"connection: close" in got.lower() and _masked(got) == _masked(ref)
    ref, got = _both(port, _post("/v1/recommend", _rec(shop.site_key), version="1.0"))   # HTTP/1.0: closes
    assert b"connection: close" in got.lower() and _masked(got) == _masked(ref)


def test_an_event_then_a_recommendation_pipelined_behind_it(served, shop):
    """A request pipelined behind one that waits (an event batch waits for the writer) is
    queued by uvicorn and answered after it, in order."""
    _, port, _, _ = served
    e = json.dumps({"site_key": shop.site_key, "events": [{"id": "pipe1", "type": "page_view", "page": "detail",
                                                           "product": "p4", "visitor": "u1", "session": "x1",
                                                           "ts": int(time.time() * 1000)}]}).encode()
    del ANSWERED[:]
    got = _raw(port, _post("/v1/events", e) + _post("/v1/recommend", _rec(shop.site_key)), until=2)
    first, _, rest = got.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b'"accepted":1' in rest and _complete(got) == 2
    assert ANSWERED[0] == "/v1/events"   # the second went uvicorn's way (queued) or inline after it
    assert rest.count(b"HTTP/1.1 200") == 1 and b'"slots"' in rest


def test_what_it_does_not_take_goes_the_usual_way(served, shop):
    _, port, _, _ = served
    body = _rec(shop.site_key)
    chunked = (b"POST /v1/recommend HTTP/1.1\r\nHost: x\r\nOrigin: " + ORIGIN.encode() +
               b"\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    ref, got = _both(port, chunked)
    assert ANSWERED == [] and got.startswith(b"HTTP/1.1 200") and _masked(got) == _masked(ref)
    large = _post("/v1/recommend", b" " * (inline.INLINE_BODY_MAX + 1) + body)   # (JSON allows the spaces)
    ref, got = _both(port, large)
    assert ANSWERED == [] and got.startswith(b"HTTP/1.1 200") and _masked(got) == _masked(ref)
    too_large = _post("/v1/recommend", b" " * 300_000 + body)                    # over max_body_bytes
    ref, got = _both(port, too_large)
    assert ANSWERED == [] and got.startswith(b"HTTP/1.1 413") and _masked(got) == _masked(ref)
    ref, got = _both(port, _post("/v1/recommend", body, "Expect: 100-continue"), until=2)
    assert ANSWERED == [] and b"HTTP/1.1 200 OK" in got
    got = _raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ANSWERED == [] and got.startswith(b"HTTP/1.1 200")
    got = _raw(port, _post("/v1/recommend?x=1", body))
    assert ANSWERED == ["/v1/recommend"] and got.startswith(b"HTTP/1.1 200")


def test_a_client_gone_mid_body_leaves_the_server_serving(served, shop):
    _, port, _, _ = served
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(_post("/v1/recommend", _rec(shop.site_key))[:-10])
    c.close()
    time.sleep(0.1)
    got = _raw(port, _post("/v1/recommend", _rec(shop.site_key)))
    assert got.startswith(b"HTTP/1.1 200")


def test_a_handler_that_crashes_answers_500_and_the_server_goes_on(served, shop, monkeypatch):
    app, port, _, _ = served
    from server import serving

    def boom(*a, **k):
        raise RuntimeError("boom")
    monkeypatch.setattr(serving, "run_slot", boom)
    monkeypatch.setattr(app.state.engine, "cache", None)
    ref, got = _both(port, _post("/v1/recommend", _rec(shop.site_key, visitor="crash")))
    assert got.startswith(b"HTTP/1.1 500") and b"internal_error" in got and _masked(got) == _masked(ref)
    monkeypatch.undo()
    assert _raw(port, _post("/v1/recommend", _rec(shop.site_key))).startswith(b"HTTP/1.1 200")


def test_carry_on_resumes_a_coroutine_where_it_waited():
    import asyncio

    async def waits(x):
        await asyncio.sleep(0)
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_result, x)
        got = await fut
        try:
            await asyncio.get_running_loop().run_in_executor(None, lambda: 1 / 0)
        except ZeroDivisionError:
            return got * 2

    async def go():
        coro = waits(21)
        first = coro.send(None)
        return await inline._carry_on(coro, first)
    assert asyncio.run(go()) == 42
