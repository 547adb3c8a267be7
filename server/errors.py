"""The one JSON error shape of the whole API.

Every error response is ``{"ok": false, "status": <http status>, "error": <code>,
"message": <text for a human>}`` plus optional extra fields (``rejected`` for event batches,
``retry_after`` for 429). A test pins this shape.
"""
from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_body(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "status": status, "error": code, "message": message}
    body.update(extra)
    return body


def error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    h = dict(exc.headers)
    if headers:
        h.update(headers)
    return JSONResponse(error_body(exc.status, exc.code, exc.message, **exc.extra), status_code=exc.status, headers=h)
