"""The floor under ``POST /v1/recommend`` in this stack: how fast can ANY Python recommendation
endpoint be on Starlette + uvicorn here? Served exactly as ``bench/empty_app.py`` (and funnelrec).

Three endpoints, each a strict subset of what a fresh personalised request has to do:

- ``/floor/reply``: read and decode the request body (msgspec, the shape of a real request),
  answer a constant reply of a real reply's size (one slot of 8 products, ~2 KB);
- ``/floor/one_source``: the same, plus ONE item-to-item source for the visitor: their 2-5
  viewed products' neighbour rows (a 4,000 x 50 table) summed with one ``bincount``, the top 44
  by ``argpartition`` + ``argsort``, the best 8 encoded from per-product JSON heads (what
  ``realtime_personal`` does, without reasons, rules, blending or a live state);
- ``/floor/three_sources``: the same source computation three times (a main page blends 3 such
  personal sources and 3 cached ones), then one blend (``concatenate`` + ``bincount`` + top 8).

Nothing here is part of the product: it measures the ceiling that the engine's per-request
Python and numpy calls have to fit under. ``bench/floor.py`` runs it beside the empty endpoint.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

N_ITEMS, WIDTH, K, COUNT = 4000, 50, 44, 8


class Page(msgspec.Struct):
    type: str
    product: str | None = None
    category: str | None = None
    cart: list[str] = []


class Slot(msgspec.Struct):
    id: str
    placement: str
    count: int = 8


class Body(msgspec.Struct):
    site_key: str
    visitor: str
    session: str
    page: Page
    slots: list[Slot]
    user: str | None = None
    locale: str | None = None


_decode = msgspec.json.Decoder(Body).decode
_rng = np.random.default_rng(5)
# a neighbour table like the engine's (top 50 per product, scores descending, padding = N_ITEMS)
IDX = np.stack([_rng.choice(N_ITEMS, WIDTH, replace=False) for _ in range(N_ITEMS)]).astype(np.int32)
SCORE = np.sort(_rng.random((N_ITEMS, WIDTH), np.float32), axis=1)[:, ::-1].copy()
HEADS = [msgspec.json.encode({"id": f"p{i}", "title": f"Product number {i} with a realistic title length",
                              "url": f"https://shop.example/products/p{i}", "image": f"https://shop.example/img/p{i}.jpg",
                              "price": 12.5, "currency": "GBP", "reason": ""})[:-3] for i in range(N_ITEMS)]
_REASON = msgspec.json.encode("viewed together with a product you viewed")
REPLY = msgspec.json.encode({"ok": True, "currency": "GBP", "locale": "en", "slots": {"home": {
    "rec_id": "r_0123456789abcdef", "placement": "main", "strategy": "personal", "variant": "A",
    "items": msgspec.Raw(b"[" + b",".join(h + _REASON + b"}" for h in HEADS[:COUNT]) + b"]")}}})


def _load_history() -> dict[str, list[int]]:
    """visitor -> their viewed products, newest first (the live state a real engine keeps in
    memory): the visitors of ``bench/floor.py``, made the same way, before serving."""
    from bench.floor import people
    return {p["visitor"]: [int(v[1:]) for v in reversed(p["viewed"])] for p in people(20_000)}


HISTORY = _load_history()


def _history(visitor: str) -> list[int]:
    return HISTORY.get(visitor) or [0, 1]


def _source(seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    seeds = list(dict.fromkeys(seeds))  # distinct, newest first
    s = np.array(seeds, np.intp)
    w = np.array([0.8 ** r for r in range(len(seeds))], np.float32)
    contrib = SCORE.take(s, axis=0)
    contrib *= w[:, None]
    total = np.bincount(IDX.take(s, axis=0).ravel(), weights=contrib.ravel(), minlength=N_ITEMS)
    total[s] = 0
    cand = (total > 0).nonzero()[0]
    sc = total[cand].astype(np.float32)
    if len(cand) > K:
        part = (-sc).argpartition(K - 1)[:K]
        cand, sc = cand[part], sc[part]
    order = (-sc).argsort(kind="stable")
    return cand[order], sc[order]


def _reply(items: list[int]) -> Response:
    body = msgspec.json.encode({"ok": True, "currency": "GBP", "locale": "en", "slots": {"home": {
        "rec_id": "r_0123456789abcdef", "placement": "main", "strategy": "personal", "variant": "A",
        "items": msgspec.Raw(b"[" + b",".join(HEADS[i] + _REASON + b"}" for i in items) + b"]")}}})
    return Response(body, media_type="application/json")


async def reply(request: Request) -> Response:
    _decode(await request.body())
    return Response(REPLY, media_type="application/json")


async def one_source(request: Request) -> Response:
    body = _decode(await request.body())
    items, _ = _source(_history(body.visitor))
    return _reply(items[:COUNT].tolist())


async def three_sources(request: Request) -> Response:
    body = _decode(await request.body())
    seeds = _history(body.visitor)
    parts = [_source(seeds), _source(seeds[::-1]), _source(seeds[1:] + seeds[:1])]
    items = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] / p[1][0] for p in parts if len(p[1])])
    total = np.bincount(items, weights=scores, minlength=N_ITEMS)
    cand = (total > 0).nonzero()[0]
    best = cand[(-total[cand]).argsort(kind="stable")[:COUNT]]
    return _reply(best.tolist())


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/floor/reply", reply, methods=["POST"]),
                        Route("/floor/one_source", one_source, methods=["POST"]),
                        Route("/floor/three_sources", three_sources, methods=["POST"]),
                        Route("/healthz", healthz)])


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    from server import workers

    uvicorn.run("bench.floor_app:app", host=a.host, port=a.port, workers=1, log_level="warning", access_log=False,
                server_header=False, proxy_headers=False, **workers.http_options())


if __name__ == "__main__":
    main()
