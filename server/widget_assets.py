"""The widget's script, served by the backend, and the snippet a merchant pastes.

GET /w/{version}/funnelrec.js   the built widget at its versioned URL, cached for a year as
                                immutable (the version carries a content hash, so a URL never
                                serves two different files); earlier releases stay served from
                                dist/v/<version>.js; 404 for any other version.
GET /w/funnelrec.js             the current widget under a stable URL, cached for 5 minutes
                                (for tag managers that cannot carry an SRI hash).

Both send ``Access-Control-Allow-Origin: *``: the snippet loads the script with
``crossorigin="anonymous"`` so that the browser can check its ``integrity`` (SRI) hash.

The files come from ``widget/dist/`` (``funnelrec.min.js`` and ``manifest.json``, committed and
rebuilt by ``npm run build`` in ``widget/``). They are re-read when their modification time
changes, so a rebuilt widget is served without a restart.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import Settings
from .errors import error_body

DIST = Settings().widget_dir  # the default; the server passes its FUNNELREC_WIDGET_DIR
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
JS_TYPE = "text/javascript; charset=utf-8"

# The one CSS rule the snippet carries: it reserves each slot's height before the script runs,
# so that the carousel arriving later shifts nothing (CLS 0).
RESERVE_CSS = "[data-funnelrec-slot]{display:block;min-height:var(--funnelrec-height,360px)}"
# The command-queue stub: calls made before the script loads are kept and run in order.
STUB_JS = "window.funnelrec=window.funnelrec||function(){(funnelrec.q=funnelrec.q||[]).push(arguments)};"


@dataclass(frozen=True)
class Bundle:
    version: str
    sri: str
    code: bytes
    mtime: float


_cache: dict[Path, Bundle] = {}


def load_bundle(dist: Path | None = None) -> Bundle | None:
    """The built widget and its manifest, or None when it has not been built."""
    dist = dist or DIST
    js, manifest = dist / "funnelrec.min.js", dist / "manifest.json"
    try:
        mtime = max(js.stat().st_mtime, manifest.stat().st_mtime)
    except OSError:
        return None
    cached = _cache.get(dist)
    if cached and cached.mtime == mtime:
        return cached
    try:
        meta = json.loads(manifest.read_text("utf-8"))
        bundle = Bundle(version=str(meta["version"]), sri=str(meta["sri"]), code=js.read_bytes(), mtime=mtime)
    except (OSError, ValueError, KeyError):
        return None
    _cache[dist] = bundle
    return bundle


def _not_found(message: str) -> JSONResponse:
    return JSONResponse(error_body(404, "not_found", message), status_code=404,
                        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"})


def _script(bundle: Bundle, cache_control: str) -> Response:
    return Response(bundle.code, media_type=JS_TYPE, headers={
        "Cache-Control": cache_control,
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "ETag": f'"{bundle.version}"',
    })


_VERSION = re.compile(r"[0-9A-Za-z.+-]{1,64}")


async def versioned(request: Request) -> Response:
    dist = request.app.state.settings.widget_dir
    bundle = load_bundle(dist)
    version = request.path_params["version"]
    if bundle is None:
        return _not_found("the widget is not built (run `npm run build` in widget/)")
    if version == bundle.version:
        return _script(bundle, IMMUTABLE)
    # an earlier release: snippets pasted before an upgrade carry its URL and SRI hash
    old = dist / "v" / f"{version}.js"
    if _VERSION.fullmatch(version) and old.is_file():
        return _script(Bundle(version=version, sri="", code=old.read_bytes(), mtime=0.0), IMMUTABLE)
    return _not_found(f"no widget version {version!r}; the current one is {bundle.version!r}")


async def latest(request: Request) -> Response:
    bundle = load_bundle(request.app.state.settings.widget_dir)
    if bundle is None:
        return _not_found("the widget is not built (run `npm run build` in widget/)")
    return _script(bundle, SHORT)


routes: list = [
    Route("/w/funnelrec.js", latest, methods=["GET", "HEAD"]),
    Route("/w/{version}/funnelrec.js", versioned, methods=["GET", "HEAD"]),
]


def script_url(endpoint: str, bundle: Bundle | None = None) -> str:
    bundle = bundle or load_bundle()
    base = endpoint.rstrip("/")
    return f"{base}/w/{bundle.version}/funnelrec.js" if bundle else f"{base}/w/funnelrec.js"


def snippet_html(site_key: str, endpoint: str, locale: str = "en", *, respect_dnt: bool = True,
                 consent_required: bool = False, nonce: str | None = None, dist: Path | None = None) -> str:
    """The HTML to paste into every page of the shop, just before ``</head>``.

    ``respect_dnt=False`` (a tenant that does not honour Do-Not-Track / Global Privacy Control)
    adds ``data-respect-dnt="false"``; ``consent_required`` makes the widget wait for
    ``funnelrec('consent', true)``; ``nonce`` is put on the inline tags for a strict CSP."""
    bundle = load_bundle(dist)
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    n = f' nonce="{e(nonce)}"' if nonce else ""
    attrs = [f'src="{e(script_url(endpoint, bundle))}"']
    if bundle:
        attrs.append(f'integrity="{e(bundle.sri)}"')
    attrs += ['crossorigin="anonymous"', f'data-site-key="{e(site_key)}"',
              f'data-endpoint="{e(endpoint.rstrip("/"))}"', f'data-locale="{e(locale)}"']
    if not respect_dnt:
        attrs.append('data-respect-dnt="false"')
    if consent_required:
        attrs.append('data-consent="required"')
    return (
        "<!-- funnelrec -->\n"
        f"<style{n}>{RESERVE_CSS}</style>\n"
        f"<script{n}>{STUB_JS}</script>\n"
        f"<script async {' '.join(attrs)}{n}></script>\n"
        "<!-- /funnelrec -->\n"
    )
