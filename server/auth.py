"""Who is calling: the tenant behind a site key or a secret key, the client IP, CORS.

The tenant is always found from the key, never from ids in the request, so tenant A's keys can
reach nothing of tenant B whatever the request names.
"""
from __future__ import annotations

from starlette.requests import Request

from .errors import ApiError
from .tenants import Tenant


def header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as ``request.headers.get`` finds it,
    without building the ``Headers`` object: the public hot paths read two or three headers."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def client_ip(request: Request, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        fwd = header(request, b"x-forwarded-for")
        if fwd:
            return fwd.split(",")[0].strip()
    client = request.scope.get("client")  # ``request.client`` would make an Address tuple per request
    return client[0] if client else "unknown"


def public_tenant(request: Request, site_key: str | None) -> Tenant:
    """The tenant of a public (site key) request, checked against its allowed origins."""
    return public_caller(request, site_key)[0]


def public_caller(request: Request, site_key: str | None) -> tuple[Tenant, str | None]:
    """``public_tenant`` and the request's origin (allowed for that tenant, or None): the CORS
    headers are ``cors_for(origin)``, without reading the headers again."""
    registry = request.app.state.registry
    key = site_key or header(request, b"x-funnelrec-key") or request.query_params.get("site_key")
    if not key:
        raise ApiError(401, "missing_key", "no site key: send it as `site_key` in the body")
    tenant = registry.by_site_key(key)
    if tenant is None:
        if registry.by_secret_key(key) is not None:
            raise ApiError(401, "wrong_key_kind", "a secret key must never be used in a browser; use the site key")
        raise ApiError(401, "unknown_key", "unknown site key")
    origin = header(request, b"origin")
    if not tenant.origin_allowed(origin):
        raise ApiError(403, "origin_not_allowed", f"origin {origin or '(none)'} is not allowed for this site key")
    return tenant, origin


def secret_tenant(request: Request) -> Tenant:
    """The tenant of a server-to-server request: ``Authorization: Bearer sk_...``."""
    registry = request.app.state.registry
    auth = request.headers.get("authorization", "")
    scheme, _, key = auth.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "missing_key", "send the secret key as `Authorization: Bearer sk_...`")
    key = key.strip()
    tenant = registry.by_secret_key(key)
    if tenant is None:
        if registry.by_site_key(key) is not None:
            raise ApiError(403, "wrong_key_kind", "a site key may only send events and read recommendations")
        raise ApiError(401, "unknown_key", "unknown secret key")
    return tenant


def cors_headers(request: Request, tenant: Tenant | None = None) -> dict[str, str]:
    origin = header(request, b"origin")
    if not origin:
        return {}
    if tenant is not None and not tenant.origin_allowed(origin):
        return {}
    return cors_for(origin)


def cors_for(origin: str | None) -> dict[str, str]:
    """The CORS headers of a reply to ``origin``, once it is allowed (``public_caller``)."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
