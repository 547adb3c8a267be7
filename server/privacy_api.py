"""``GET|DELETE /v1/privacy/visitors/{id}`` and ``/v1/privacy/users/{id}`` (secret key).

GET returns everything stored about the visitor (or every visitor linked to the user id);
DELETE erases it in one transaction and returns what was removed.
"""
from __future__ import annotations

import asyncio
import functools

from starlette.requests import Request
from starlette.responses import JSONResponse

from . import privacy
from .auth import secret_tenant
from .errors import ApiError


async def handle(request: Request) -> JSONResponse:
    tenant = secret_tenant(request)
    who = request.path_params["who"]
    ident = request.path_params["id"]
    if who not in ("visitors", "users"):
        raise ApiError(404, "not_found", "use /v1/privacy/visitors/{id} or /v1/privacy/users/{id}")
    kwargs = {"visitor": ident} if who == "visitors" else {"user": ident}
    shard = request.app.state.shards.get(tenant)
    if request.method == "DELETE":
        removed = await shard.write(functools.partial(privacy.erase, **kwargs))
        request.app.state.notify_catalog(tenant, shard)
        return JSONResponse({"ok": True, "erased": removed})

    def run():
        conn = shard.connect_read()
        try:
            return privacy.export(conn, **kwargs)
        finally:
            conn.close()

    data = await asyncio.get_running_loop().run_in_executor(None, run)
    return JSONResponse({"ok": True, **data})
