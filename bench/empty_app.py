"""The baseline for ``bench/ingest.py``: an empty Starlette POST endpoint.

It reads the body and answers a small constant JSON, nothing else. It is served exactly the way
``funnelrec serve`` serves the real app (server/cli.py): ``uvicorn.run`` with 1 worker (with
``--workers N``: N processes with one SO_REUSEPORT socket each, server/workers.py), the
default (auto) loop and HTTP implementations — uvloop and httptools when installed, as they are
with ``uvicorn[standard]`` — ``log_level="warning"``, no access log, no server header, and
funnelrec's HTTP protocol (``server.workers.http_options()``: each response in one write), so
that a comparison is about the app, not the HTTP stack.

    python -m bench.empty_app --port 8500 [--workers 2] [--inline]

``--inline``: the same endpoint served as funnelrec serves its hot paths (``server/inline.py``:
answered inside the protocol's callbacks, no ASGI task, the replies of a loop pass written at
its end), through an ``App`` whose hot path it is: what funnelrec's own stack costs for an
empty answer (bench/serve reports it beside the Starlette baseline).
"""
from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REPLY = {"ok": True, "accepted": 0, "duplicates": 0, "dropped": 0, "rejected": []}


async def events(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse(REPLY)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/v1/events", events, methods=["POST"]), Route("/healthz", healthz)])


def inline_app():
    """The endpoint as a hot path of funnelrec's ``App`` (``--inline``)."""
    from server.app import App
    from server.config import Settings

    routes = [Route("/v1/events", events, methods=["POST"]), Route("/healthz", healthz)]
    a = App(routes=routes)
    a.hot_paths = {"settings": Settings.from_env(env={}), "routes": {("POST", "/v1/events"): events}, "handlers": {}}
    return a


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--inline", action="store_true", help="served as funnelrec's hot paths (server/inline.py)")
    a = p.parse_args()
    from server import workers

    options = dict(log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                   **workers.http_options())
    target, factory = ("bench.empty_app:inline_app", True) if a.inline else ("bench.empty_app:app", False)
    if a.workers > 1:  # served like `funnelrec serve --workers N`: one SO_REUSEPORT socket per worker
        workers.run(a.host, a.port, a.workers, options, app=target, factory=factory)
    else:
        uvicorn.run(target, host=a.host, port=a.port, workers=1, factory=factory, **options)


if __name__ == "__main__":
    main()
