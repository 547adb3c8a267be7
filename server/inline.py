"""The hot paths answered inside the HTTP protocol's own callbacks (no ASGI task per request).

uvicorn answers a request with an ASGI task: on the request's headers it makes the ASGI scope,
a ``RequestResponseCycle`` with its ``asyncio.Event``, and a task that the event loop runs on
its next pass; the app then reads the body through ``receive`` and answers through two ``send``
messages, each checked and turned into bytes by the cycle (the headers matched against two
regular expressions each). For ``POST /v1/recommend`` and ``POST /v1/events`` with a small
body of a declared length (every request the widget sends) ``InlineProtocol`` does the same
work without that machinery: it keeps the body as the parser hands it over, and once the
request is complete calls the app's hot-path handler (``app.HotPaths``: the same handler and
error handlers, the same latency metric and access log) on a Starlette ``Request`` that holds
the body already (``read_body`` finds it), at once, within the parser's callback; a handler
that finishes without waiting for anything (a recommendation, the usual case) has its reply
made there and then (the status line, uvicorn's default headers (``date``), the reply's own
and the body, as uvicorn writes them) and written with the other inline replies of the loop's
pass at its end, one ``write`` each (``_Outbox``: the client's side woken once a burst). A
handler that waits (an event batch waits for the shard writer's commit; a tenant's first
model) is carried on by a task from the point where it waited, with the same context.

Everything else goes the usual way (``super()``): other paths and methods, a body without a
``content-length`` (chunked) or over 64 KB, ``Expect: 100-continue``, pipelined requests
arriving while another is being answered, upgrades, uvicorn's concurrency limit or access
log, and any app wrapped by uvicorn's own middleware (``proxy_headers``: funnelrec's
``trust_forwarded_for``): their answers are unchanged. ``tests/test_inline_protocol.py``
checks the inline replies byte for byte against uvicorn's.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import time

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from . import workers

log = logging.getLogger("funnelrec.http")

INLINE_BODY_MAX = 64 * 1024   # larger bodies take uvicorn's path (it pauses reading past 64 KB)


async def _no_receive() -> dict:   # (the body is on the request already: ``read_body`` never calls it)
    return {"type": "http.disconnect"}


class _Event:
    """What uvicorn's callbacks call on a cycle's ``message_event``; nothing waits on it."""
    __slots__ = ()

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


_EVENT = _Event()


class _Cycle:
    """An inline request's state, with the attributes uvicorn's callbacks read and write on
    ``protocol.cycle`` (``on_body``, ``connection_lost``, ``shutdown``, pipelining)."""
    __slots__ = ("method", "path", "raw_path", "query", "body", "more_body", "response_complete",
                 "disconnected", "keep_alive", "message_event", "http_version")

    def __init__(self, method: str, path: str, raw_path: bytes, query: bytes, keep_alive: bool, http_version: str):
        self.method, self.path, self.raw_path, self.query = method, path, raw_path, query
        self.body = b""
        self.more_body = True
        self.response_complete = False
        self.disconnected = False
        self.keep_alive = keep_alive
        self.message_event = _EVENT
        self.http_version = http_version


def _hot_paths(app):
    """What answering inline reads of uvicorn's app: (the ``App``, its ``HotPaths``), or None when the app is wrapped by uvicorn's middleware or
    has no hot paths (e.g. bench/empty_app: everything goes uvicorn's way)."""
    from .app import App, HotPaths   # (here: the module imports no engine)

    if not isinstance(app, App) or app.hot_paths is None:
        return None
    if app.middleware_stack is None:   # (Starlette builds it on its first call)
        app.middleware_stack = app.build_middleware_stack()
    hot = app.middleware_stack
    return (app, hot) if isinstance(hot, HotPaths) else None


async def _carry_on(coro, waited):
    """Run ``coro`` on from where it waited for ``waited`` (what it yielded: a future, or None
    for a bare yield), as its task would have: its result is this coroutine's."""
    while True:
        if waited is None:
            await asyncio.sleep(0)
        elif not asyncio.isfuture(waited):   # (what a task refuses: "Task got bad yield")
            try:
                waited = coro.throw(RuntimeError(f"bad yield: {waited!r}"))
            except StopIteration as stop:
                return stop.value
            continue
        else:   # (as a task does with a future its coroutine yields: not blocking, then waited for)
            waited._asyncio_future_blocking = False
            try:
                await waited   # (cancelling this task cancels ``waited``: the coroutine sees it)
            except BaseException:
                pass           # (its outcome is the coroutine's to read, as it resumes)
        try:
            waited = coro.send(None)
        except StopIteration as stop:
            return stop.value


if workers.HttpProtocol is not None:
    class InlineProtocol(workers.HttpProtocol):
        """``workers.HttpProtocol`` answering the app's hot paths inline (see the module)."""

        _hot = None   # (``_hot_paths``' answer for this connection's app: set in ``connection_made``)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            found = _INLINE.get(id(self.app))
            if found is None:
                got = _hot_paths(self.app) if self.limit_concurrency is None and not self.access_log else None
                found = _INLINE[id(self.app)] = (self.app, got)
            self._hot = found[1]

        def on_headers_complete(self) -> None:
            hot = self._hot
            if hot is None or self.expect_100_continue:
                return super().on_headers_complete()
            parser = self.parser
            method = parser.get_method()
            if method != b"POST" or not (self.cycle is None or self.cycle.response_complete) or parser.should_upgrade():
                return super().on_headers_complete()
            path = self.url
            query = b""
            if b"?" in path:
                path, _, query = path.partition(b"?")
            if b"%" in path or b"#" in path:
                return super().on_headers_complete()
            spath = path.decode("ascii", "replace")
            if ("POST", spath) not in hot[1].routes:
                return super().on_headers_complete()
            length = None
            for name, value in self.headers:
                if name == b"content-length":
                    length = value
                elif name == b"transfer-encoding":
                    return super().on_headers_complete()
            if length is None or not length.isdigit() or int(length) > INLINE_BODY_MAX:
                return super().on_headers_complete()
            version = parser.get_http_version()
            self.cycle = _Cycle("POST", spath, path, query, version != "1.0" and parser.should_keep_alive(), version)

        def on_body(self, body: bytes) -> None:
            cycle = self.cycle
            if type(cycle) is _Cycle:   # (mostly one piece: kept as it is)
                cycle.body = cycle.body + body if cycle.body else body
            else:
                super().on_body(body)

        def on_message_complete(self) -> None:
            cycle = self.cycle
            if type(cycle) is not _Cycle:
                return super().on_message_complete()
            if cycle.response_complete:
                return
            cycle.more_body = False
            self._answer(cycle)

        # -- the answer ------------------------------------------------------------------
        def _answer(self, cycle: _Cycle) -> None:
            app, hot = self._hot
            scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
                     "http_version": cycle.http_version, "server": self.server, "client": self.client,
                     "scheme": self.scheme, "root_path": "", "headers": self.headers, "method": cycle.method,
                     "path": cycle.path, "raw_path": cycle.raw_path, "query_string": cycle.query, "app": app,
                     "state": self.app_state.copy()}
            request = Request(scope, _no_receive)
            request._body = cycle.body
            start = time.perf_counter()
            context = contextvars.copy_context()
            coro = hot.respond(hot.routes["POST", cycle.path], request)
            try:
                waited = context.run(coro.send, None)
            except StopIteration as stop:
                self._sent(cycle, hot, scope, stop.value, start)
            except BaseException as exc:   # (the error handlers' own failure: uvicorn's 500)
                self._failed(cycle, exc)
            else:   # it waits: a task carries it on from there, in the same context
                task = self.loop.create_task(_carry_on(coro, waited), context=context)
                task.add_done_callback(lambda t: self._done(t, cycle, hot, scope, start))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

        def _done(self, task, cycle: _Cycle, hot, scope: dict, start: float) -> None:
            if task.cancelled():
                self._failed(cycle, asyncio.CancelledError())
                return
            exc = task.exception()
            if exc is not None:
                self._failed(cycle, exc)
            else:
                self._sent(cycle, hot, scope, task.result(), start)

        def _sent(self, cycle: _Cycle, hot, scope: dict, response, start: float) -> None:
            try:
                self._send(cycle, hot, scope, response, start)
            except Exception as exc:   # (a reply that is not a plain ``Response``: none of the hot paths')
                if not cycle.response_complete:
                    self._failed(cycle, exc)
                else:
                    log.exception("after the reply")

        def _send(self, cycle: _Cycle, hot, scope: dict, response, start: float) -> None:
            """The reply's bytes as uvicorn writes a response of a known length, queued in the
            loop pass's ``_Outbox`` (one ``write`` at the pass's end; at once, after what is
            queued, when the connection closes after it); then the latency metric and access
            log as ``HotPaths`` keeps them, and the connection's next request
            (``on_response_complete``)."""
            if cycle.disconnected:
                return
            body = response.body
            status = response.status_code
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content += (name, b": ", value, b"\r\n")
            keep_alive = cycle.keep_alive
            for name, value in response.raw_headers:
                if name == b"connection" and b"close" in value.lower():
                    keep_alive = False
                content += (name, b": ", value, b"\r\n")
            if not keep_alive and not any(n == b"connection" for n, _ in response.raw_headers):
                content.append(b"connection: close\r\n")
            content += (b"\r\n", body)
            cycle.response_complete = True
            transport = self.transport
            raw = getattr(transport, "_transport", transport)   # (past the one-write transport: one write already)
            outbox = _outbox(self.loop)
            if keep_alive:
                outbox.add(raw, b"".join(content))
            else:   # (what is queued before it leaves first)
                outbox.flush()
                raw.write(b"".join(content))
                transport.close()
            hot.observe(scope, status, time.perf_counter() - start)
            background = response.background
            if background is not None:   # (none of the hot paths' replies has one)
                self.loop.create_task(background())
            self.on_response_complete()

        def _failed(self, cycle: _Cycle, exc: BaseException) -> None:
            """As uvicorn's ``run_asgi`` when the app raised: logged, a 500 with ``connection: close``."""
            log.error("Exception in ASGI application", exc_info=exc)
            cycle.response_complete = True
            if not cycle.disconnected and not self.transport.is_closing():
                content = [STATUS_LINE[500]]
                for name, value in self.server_state.default_headers:
                    content += (name, b": ", value, b"\r\n")
                content += (b"content-type: text/plain; charset=utf-8\r\ncontent-length: 21\r\n"
                            b"connection: close\r\n\r\nInternal Server Error",)
                transport = self.transport
                _outbox(self.loop).flush()
                getattr(transport, "_transport", transport).write(b"".join(content))
                transport.close()
            self.on_response_complete()
else:
    InlineProtocol = None


_INLINE: dict = {}   # id of uvicorn's loaded app -> (the app, its (App, HotPaths) or None)


class _Outbox:
    """The replies answered inline during one pass of the event loop, written at its end, in
    order. The requests a pass reads (several connections' at once under load) are answered one
    after the other; writing each reply as soon as it is made would wake the client's side once
    a reply (on loopback: inside our ``send``, a wake-up of a sleeping reader on another CPU, ~10
    µs of this process's system time each); written together, the first wakes it and the rest
    find it awake. A reply waits at most for the others of its pass (uvicorn's own path writes
    its replies on the next pass too: its tasks run there)."""
    __slots__ = ("loop", "items")

    def __init__(self, loop):
        self.loop = loop
        self.items: list = []   # (transport, bytes)

    def add(self, transport, data: bytes) -> None:
        if not self.items:
            self.loop.call_soon(self.flush)
        self.items.append((transport, data))

    def flush(self) -> None:
        items, self.items = self.items, []
        for transport, data in items:
            if not transport.is_closing():   # (a client gone meanwhile: nothing to send)
                transport.write(data)


_OUTBOXES: dict = {}   # event loop -> its _Outbox


def _outbox(loop) -> _Outbox:
    box = _OUTBOXES.get(loop)
    if box is None:
        if len(_OUTBOXES) > 64:   # (loops of finished servers: tests start many)
            for old in [lp for lp in _OUTBOXES if lp.is_closed()]:
                del _OUTBOXES[old]
        box = _OUTBOXES[loop] = _Outbox(loop)
    return box
