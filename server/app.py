"""Routes only: which URL goes to which handler. ``create_app(settings)`` builds the ASGI app.

Public (site key, browsers):   POST /v1/events           -> server/ingest/handler.py
                               POST /v1/recommend        -> server/serving.py (when installed)
Secret (server to server):     POST /v1/events/import    -> server/ingest/handler.py
                               /v1/catalog/...           -> server/catalog/api.py
                               /v1/privacy/...           -> server/privacy_api.py
Operations:                    GET /healthz, GET /metrics
Widget:                        GET /w/...                -> server/widget_assets.py
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import time
import traceback

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import metrics
from .catalog import api as catalog_api
from .config import Settings
from .errors import ApiError, error_body, error_response
from .ingest import handler as ingest
from . import privacy_api
from .logs import setup_logging
from .ratelimit import RateLimiter
from .shards import ShardGone, ShardManager
from .tenants import TenantRegistry

log = logging.getLogger("funnelrec.app")
access_log = logging.getLogger("funnelrec.access")

PUBLIC_PREFIXES = ("/v1/events", "/v1/recommend")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "status": "healthy", "tenants": len(request.app.state.registry.all()),
                         "pid": os.getpid()})  # which worker answered


async def metrics_endpoint(request: Request) -> Response:
    if not request.app.state.settings.metrics_enabled:
        raise ApiError(404, "not_found", "metrics are turned off")
    body, ctype = metrics.render(request.app.state.shards)
    return Response(body, media_type=ctype)


async def preflight(request: Request) -> Response:
    origin = request.headers.get("origin")
    headers = {
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
        "Access-Control-Allow-Headers": "content-type, x-funnelrec-key",
        "Access-Control-Max-Age": "86400",
        "Vary": "Origin",
    }
    if origin:
        headers["Access-Control-Allow-Origin"] = origin
    return Response(status_code=204, headers=headers)


def _import_optional(module_name: str):
    """A part that may not be installed yet (the widget assets, the engine, the admin)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def _optional_routes(module_name: str) -> list:
    module = _import_optional(module_name)
    return list(getattr(module, "routes", [])) if module else []


def record(histograms: dict, route: str, scope, status: int, elapsed: float) -> None:
    """A request's latency (per route; ``histograms`` caches the route's batch of the latency
    histogram, ``metrics.Batch``) and, for errors or at debug level, its access-log line."""
    hist = histograms.get(route)
    if hist is None:
        hist = histograms[route] = metrics.LATENCY.batch(route)
    hist.observe(elapsed)
    if status >= 400 or access_log.isEnabledFor(logging.DEBUG):
        log_access(scope, status, elapsed)


def log_access(scope, status: int, elapsed: float) -> None:
    access_log.log(logging.INFO if status < 500 else logging.ERROR, "request", extra={
        "method": scope.get("method"), "path": scope.get("path"), "status": status, "ms": round(elapsed * 1000, 2)})


class TimingMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware: it breaks contextvars): latency metric + access log."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self._histograms: dict[str, object] = {}  # route -> its batch of the latency histogram

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            record(self._histograms, getattr(route, "path", None) or "unmatched", scope, status[0],
                   time.perf_counter() - start)


class HotPaths:
    """The two public hot paths (``POST /v1/events``, ``POST /v1/recommend``: every page view of
    every visitor) go straight to their handlers, past Starlette's middleware stack (the server
    error middleware, which wraps ``send`` in one more coroutine per message; the router, which
    tries routes one by one; the exception middleware; the timing middleware): the same
    handlers, the same error handlers (found by the exception's class, as Starlette does;
    ``Exception`` among them: the 500 of the server error middleware, which would handle only
    what escapes a handler), the same latency metric and access log, ~20-30 µs less per request.
    Everything else goes on to the full stack (``app``)."""

    def __init__(self, app, settings: Settings, routes: dict, handlers: dict):
        self.app = app
        self.settings = settings
        self.routes = routes            # (method, path) -> handler(request) -> Response
        self.handlers = handlers        # exception class -> handler(request, exc) -> Response
        self._histograms = {path: metrics.LATENCY.batch(path) for _, path in routes}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        handler = self.routes.get((scope["method"], scope["path"]))
        if handler is None:
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        response = await self.respond(handler, Request(scope, receive))
        await response(scope, receive, send)
        self.observe(scope, response.status_code, time.perf_counter() - start)

    async def respond(self, handler, request: Request) -> Response:
        """``handler``'s response to ``request``, else its error handler's (not sent: also
        ``server/inline.py``'s, which answers the hot paths inside the HTTP protocol)."""
        try:
            return await handler(request)
        except Exception as exc:
            on_error = next((self.handlers[c] for c in type(exc).__mro__ if c in self.handlers), None)
            if on_error is None:
                raise
            return await on_error(request, exc)

    def observe(self, scope, status: int, elapsed: float) -> None:
        """A hot path's latency metric and access-log line (``record``, its route one of ours)."""
        self._histograms[scope["path"]].observe(elapsed)
        if status >= 400 or access_log.isEnabledFor(logging.DEBUG):
            log_access(scope, status, elapsed)


class AppState(State):
    """``app.state`` whose values are plain attributes too: each read is an instance look-up,
    not a call of ``State``'s Python-level ``__getattr__`` (the hot paths read the engine and
    the tenant registry on every request)."""

    def __setattr__(self, key: str, value) -> None:
        self._state[key] = value
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        del self._state[key]
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


class App(Starlette):
    """Starlette with ``HotPaths`` in front of its whole middleware stack (``hot_paths``: set
    before the first request; ``None``: the plain stack), and an ``AppState``."""

    hot_paths: dict | None = None   # HotPaths' keyword arguments but the app

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.state = AppState()

    def build_middleware_stack(self):
        stack = super().build_middleware_stack()
        return stack if self.hot_paths is None else HotPaths(stack, **self.hot_paths)


def create_app(settings: Settings | None = None) -> App:
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level)

    def with_cors(request: Request, headers: dict) -> dict:
        origin = request.headers.get("origin")
        if origin and request.url.path.startswith(PUBLIC_PREFIXES) and "Access-Control-Allow-Origin" not in headers:
            headers = {**headers, "Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if origin:
            headers = {**headers, "Access-Control-Expose-Headers": "Retry-After"}
        return headers

    async def on_api_error(request: Request, exc: ApiError) -> Response:
        metrics.REQUESTS_REFUSED.labels(str(exc.status), exc.code).inc()
        return error_response(exc, with_cors(request, {}))

    async def on_shard_gone(request: Request, exc: Exception) -> Response:
        return await on_api_error(request, ApiError(401, "unknown_key", "this tenant no longer exists"))

    async def on_too_deep(request: Request, exc: Exception) -> Response:
        # JSON nested thousands deep exhausts the decoder's recursion limit, on any route
        return await on_api_error(request, ApiError(400, "invalid_body", "JSON nested too deeply"))

    async def on_http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code,
                            headers=with_cors(request, dict(exc.headers or {})))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", extra={"path": request.url.path, "error": repr(exc)}, exc_info=exc)
        extra = {"traceback": traceback.format_exception(exc)} if settings.debug else {}
        return JSONResponse(error_body(500, "internal_error", "internal server error", **extra), status_code=500,
                            headers=with_cors(request, {}))

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_endpoint),
        Route("/v1/events", ingest.post_events, methods=["POST"]),
        Route("/v1/events", preflight, methods=["OPTIONS"]),
        Route("/v1/events/import", ingest.import_events, methods=["POST"]),
        Route("/v1/catalog/stats", catalog_api.stats, methods=["GET"]),
        Route("/v1/catalog/products", catalog_api.delete_products, methods=["DELETE"]),
        Route("/v1/catalog/products/{id:path}", catalog_api.get_product, methods=["GET"]),
        Route("/v1/catalog/{kind}", catalog_api.upsert, methods=["POST"]),
        Route("/v1/privacy/{who:str}/{id:path}", privacy_api.handle, methods=["GET", "DELETE"]),
        Route("/v1/recommend", preflight, methods=["OPTIONS"]),
    ]
    routes += _optional_routes("server.widget_assets")
    routes += _optional_routes("server.serving")
    routes += _optional_routes("server.admin")
    # the router tries routes in order: the two hot public paths first (each route tried costs ~2 µs)
    routes.sort(key=lambda r: getattr(r, "path", "") not in PUBLIC_PREFIXES)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async def close_idle():
            while True:
                await asyncio.sleep(max(5, min(60, settings.shard_idle_close_s / 4)))
                with contextlib.suppress(Exception):
                    await app.state.shards.close_idle(settings.shard_idle_close_s)

        task = asyncio.create_task(close_idle())
        for hook in app.state.startup_hooks:
            await hook(app)
        try:
            yield
        finally:
            task.cancel()
            for hook in app.state.shutdown_hooks:
                with contextlib.suppress(Exception):
                    await hook(app)
            await app.state.shards.close_all()

    error_handlers = {ApiError: on_api_error, ShardGone: on_shard_gone, RecursionError: on_too_deep,
                      HTTPException: on_http_error, Exception: on_crash}
    app = App(debug=False, routes=routes, exception_handlers=error_handlers, lifespan=lifespan)
    app.state.settings = settings
    app.state.registry = TenantRegistry(settings.data_dir, settings.tenant_cache_s)
    app.state.shards = ShardManager(app.state.registry, settings)
    app.state.limiter = RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    app.state.event_listeners = []
    app.state.catalog_listeners = []

    def notify_events(tenant, shard, accepted: int) -> None:
        for fn in app.state.event_listeners:
            fn(tenant, shard, accepted)

    def notify_catalog(tenant, shard) -> None:
        for fn in app.state.catalog_listeners:
            fn(tenant, shard)

    app.state.notify_events = notify_events
    app.state.notify_catalog = notify_catalog
    for module_name in ("server.serving", "server.admin"):
        module = _import_optional(module_name)
        if module is not None and hasattr(module, "install"):
            module.install(app)
    if settings.ranker_enabled and getattr(app.state, "engine", None) is not None:
        ranking = _import_optional("server.ranking")
        if ranking is not None:
            ranking.install_app(app)  # the engine's ranker hook; one app per process
    app.add_middleware(TimingMiddleware, settings=settings)
    hot = {("POST", r.path): r.endpoint for r in routes
           if isinstance(r, Route) and r.path in PUBLIC_PREFIXES and "POST" in (r.methods or ())}
    app.hot_paths = {"settings": settings, "routes": hot, "handlers": error_handlers}  # in front of the stack
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory server.app:app_from_env`` (used by ``funnelrec serve``)."""
    return create_app(Settings.from_env())
