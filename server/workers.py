"""``funnelrec serve --workers N`` with N > 1: N uvicorn worker processes, each with its own
listening socket bound with ``SO_REUSEPORT``, so that the kernel spreads new connections over
the workers.

Why not uvicorn's own ``workers=N``: it shares one listening socket, and whichever worker wakes
first accepts. Under a burst of new keep-alive connections one worker can take them all: in
about half of the ``bench/serve.py`` runs one worker held all 32 connections (~100 % CPU of
the 200 % available) while the other idled. With one socket per worker the kernel hashes each
new connection to a worker.

The supervisor (the ``funnelrec serve`` process, which also runs the sidecars) starts the
workers, restarts one that exits unexpectedly, and on SIGTERM / SIGINT stops them gracefully
(uvicorn's own shutdown in each: requests in flight are answered). A worker dies with the
supervisor (``PR_SET_PDEATHSIG``): a ``kill -9`` of the server leaves no worker holding the port.
On a platform without ``SO_REUSEPORT`` uvicorn's shared socket is used.

Every worker (1 or N) serves HTTP with ``HttpProtocol``: uvicorn's httptools protocol, each
response sent with one ``write`` instead of two (``_OneWriteTransport``).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

log = logging.getLogger("funnelrec.workers")

APP = "server.app:app_from_env"


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port(host: str, port: int) -> None:
    """Fail early and clearly when another program holds the port (bind only, no listen: a
    listening socket here would take a share of the connections and never answer them)."""
    sock = _listen_socket(host, port)
    sock.close()


def _worker(host: str, port: int, options: dict, app: str = APP, factory: bool = True) -> None:
    from .sidecars import die_with_parent

    die_with_parent()
    import uvicorn

    sock = _listen_socket(host, port)
    config = uvicorn.Config(app, factory=factory, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def run(host: str, port: int, workers: int, options: dict, app: str = APP, factory: bool = True) -> None:
    """Run ``workers`` worker processes of ``app`` until SIGTERM / SIGINT."""
    check_port(host, port)
    ctx = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    procs: list = [None] * workers

    def start(k: int) -> None:
        p = ctx.Process(target=_worker, args=(host, port, options, app, factory), name=f"funnelrec-worker-{k}",
                        daemon=False)
        p.start()
        procs[k] = p

    def stop(*_) -> None:
        stopping.set()

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for k in range(workers):
            start(k)
        while not stopping.wait(0.5):
            for k, p in enumerate(procs):
                if p is not None and not p.is_alive() and not stopping.is_set():
                    log.error("worker exited; restarting it", extra={"worker": k, "code": p.exitcode})
                    time.sleep(0.5)  # a worker that fails at start-up must not spin
                    start(k)
    finally:
        for p in procs:
            if p is not None and p.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in procs:
            if p is not None:
                p.join(max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join()
        for sig, handler in old.items():
            signal.signal(sig, handler)


# -- the HTTP protocol ------------------------------------------------------------------------
class _OneWriteTransport:
    """A connection's transport as uvicorn's HTTP protocol sees it, with each response head held
    until its body. uvicorn writes the status line and headers, then the body, each with its own
    ``write``: a ``send`` system call, a TCP segment and a wake-up of the reader each. Held, the
    head goes out with the body in one (bench/serve: -3 to -5 µs of the server's system time a
    request). A head is held at most until the end of the event loop's current pass (a
    streaming response's first chunk may come later); ``close`` sends it first; what is written
    keeps its order. Everything else is the transport's own."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport, loop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[:9] == b"HTTP/1.1 ":   # a response head: uvicorn's status line starts it
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def pause_reading(self) -> None:   # (these two: per request, past ``__getattr__``)
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name):
        return getattr(self._transport, name)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's own choice of protocol
    _HttpToolsProtocol = None

if _HttpToolsProtocol is not None:
    class HttpProtocol(_HttpToolsProtocol):
        """uvicorn's httptools protocol writing each response at once (``_OneWriteTransport``)."""

        def connection_made(self, transport) -> None:
            super().connection_made(_OneWriteTransport(transport, self.loop))
else:
    HttpProtocol = None


def http_options() -> dict:
    """uvicorn options for funnelrec's workers: ``inline.InlineProtocol`` (``HttpProtocol``
    answering funnelrec's hot paths inside its callbacks, server/inline.py) when httptools is
    there. An app without funnelrec's hot paths (bench/empty_app) is served by it exactly as
    by ``HttpProtocol``: through uvicorn's ASGI path."""
    from .inline import InlineProtocol   # (here: inline imports this module)
    return {"http": InlineProtocol} if InlineProtocol is not None else {}
