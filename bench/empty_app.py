"""The baseline for ``bench/ingest.py``: an empty Starlette POST endpoint.

It reads the body and answers a small constant JSON, nothing else. It is served exactly the way
``funnelrec serve`` serves the real app (server/cli.py): ``uvicorn.run`` with 1 worker (with
``--workers N``: N processes with one SO_REUSEPORT socket each, server/workers.py), the
default (auto) loop and HTTP implementations — uvloop and httptools when installed, as they are
with ``uvicorn[standard]`` — ``log_level="warning"``, no access log, no server header, and
funnelrec's HTTP protocol (``server.workers.http_options()``: each response in one write), so
that a comparison is about the app, not the HTTP stack.

    python -m bench.empty_app --port 8500 [--workers 2]
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


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args()
    from server import workers

    options = dict(log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                   **workers.http_options())
    if a.workers > 1:  # served like `funnelrec serve --workers N`: one SO_REUSEPORT socket per worker
        workers.run(a.host, a.port, a.workers, options, app="bench.empty_app:app", factory=False)
    else:
        uvicorn.run("bench.empty_app:app", host=a.host, port=a.port, workers=1, **options)


if __name__ == "__main__":
    main()
