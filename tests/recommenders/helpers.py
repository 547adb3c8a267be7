"""Shared helpers for the recommender tests: hand-built shards and one-recommender fits."""
from __future__ import annotations

from server.catalog.schema import convert
from server.catalog.store import UPSERT_JOBS
from server.recommenders import registry
from server.recommenders.base import Context, Recent
from server.recommenders.dataset import build_dataset
from server.signals import VIEW
from tests.engine.fixtures import MIN, T0, ShopData, buy, cart, e, engage, product, view  # noqa: F401

HOUR = 60 * MIN
DAY = 24 * HOUR


def search(query, visitor="v1", session="s1", ts=T0, results=None) -> dict:
    ev = e("search", visitor, session, ts, query=query)
    if results is not None:
        ev["results"] = results
    return ev


def impression(pid, visitor="v1", session="s1", ts=T0, rec_id="r1") -> dict:
    return e("rec_impression", visitor, session, ts, rec_id=rec_id, product=pid)


def click(pid, visitor="v1", session="s1", ts=T0, rec_id="r1") -> dict:
    return e("rec_click", visitor, session, ts, rec_id=rec_id, product=pid)


def reviews(d: ShopData, rows: list[dict]) -> ShopData:
    d.shard.write_sync(UPSERT_JOBS["reviews"]([convert("reviews", r) for r in rows]))
    return d


def dataset(d: ShopData):
    conn = d.shard.connect_read()
    try:
        return build_dataset(conn)
    finally:
        conn.close()


def fit(d: ShopData, name: str):
    """(recommender, fitted model, dataset) for one recommender on a shard."""
    ds = dataset(d)
    rec = registry.get(name)()
    return rec, rec.fit(ds), ds


def recs(rec, model, ds, ctx: Context, k: int = 10) -> list[tuple[str, float, str]]:
    """[(product id, score, reason)] best first."""
    c = rec.recommend(model, ds, ctx, k)
    return [(ds.item_ids[int(i)], float(s), c.reason(n)) for n, (i, s) in enumerate(zip(c.items, c.scores))]


def ids(rows) -> list[str]:
    return [r[0] for r in rows]


def session_ctx(ds, pids: list[str], visitor="new", **kw) -> Context:
    """A visitor unknown to the model whose live session viewed ``pids`` (newest last)."""
    recent = [Recent(p, ds.item(p), VIEW, T0 + n, 1.0, True) for n, p in enumerate(pids)][::-1]
    return Context(visitor=visitor, recent=recent, **kw)
