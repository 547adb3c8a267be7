"""The in-process engine bench tenant, shared by ``bench/sources.py`` and ``bench/slot_check.py``.

``bench_tenant(visitors)`` (a context manager) loads online-retail and the bench visitors of
``bench/serve.py`` (real customers who viewed 2-5 products of one of their baskets, with
engagement) into a temp shard, builds the model and yields a ``Tenant``: the model, the bench
people with their live context read from the shard, and the catalog's categories.
``contexts(tenant, page)`` builds the request ``Context`` of each person for one page type the
way ``bench/serve.py`` asks (main: no product; detail: their latest view; cart: two products
of their basket; category: one of the shop's categories, picked at random; checkout/purchase:
the basket as the order; search: a word of their latest view's title), with a visit hour that
varies over people (time_of_day) and, for one person in four, a profile (demographic).
"""
from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@dataclass
class Tenant:
    model: object
    people: list[dict]      # bench person + "recent", "bought", "newest" (their live context)
    categories: list[str]
    now_ms: int


def _live_context():
    try:
        from server.live import live_context
    except ImportError:  # before server/live.py existed
        from server.serving import live_context
    return live_context


@contextlib.contextmanager
def bench_tenant(visitors: int = 300, csv: str | None = None):
    from bench.retail import find_csv, load, read_invoices
    from bench.serve import seed_history
    from server.recommenders.model import build_model
    from server.shards import Shard

    live_context = _live_context()
    products, invoices = read_invoices(find_csv(csv))
    with tempfile.TemporaryDirectory(prefix="funnelrec-engine-") as tmp:
        shard = Shard("retail", Path(tmp) / "retail.db", synchronous="OFF")
        load(shard, products, invoices)
        people = seed_history(shard, invoices, visitors)
        conn = shard.connect_read()
        model = build_model(conn)
        ds = model.ds
        for p in people:
            t0 = time.perf_counter()
            p["recent"], p["bought"], p["newest"] = live_context(conn, ds, p["visitor"], p["session"])
            p["live_s"] = time.perf_counter() - t0
        conn.close()
        try:
            yield Tenant(model, people, sorted({p["category"] for p in products}), ds.clock_ms + 3_600_000)
        finally:
            shard.close_sync()


PAGES = ("main", "detail", "cart", "category", "checkout", "purchase", "search")
PROFILES = [{"gender": "f", "age_band": "25-34", "interests": ["candle", "garden"]},
            {"gender": "m", "age_band": "35-44"}, {"interests": ["christmas"]}]


def contexts(t: Tenant, page: str, seed: int = 5) -> list:
    """One ``Context`` per bench person for ``page`` (see the module docstring); deterministic."""
    import numpy as np

    from server.recommenders.base import Context

    ds = t.model.ds
    rng = random.Random(f"{seed}-{page}")
    out = []
    for n, p in enumerate(t.people):
        now = t.now_ms + (n % 24) * 3_600_000
        if hasattr(ds, "local"):   # the tenant's time zone (server/localtime.py)
            hour, weekday = ds.local.at(now)
        else:                      # (a tree from before it: --root of slot_check / sources)
            lt = time.gmtime(now / 1000 + ds.tz_offset_min * 60)
            hour, weekday = lt.tm_hour, lt.tm_wday
        ctx = Context(tenant="retail", visitor=p["visitor"], session=p["session"], page_type=page,
                      recent=p["recent"], bought=p["bought"], person=ds.person(None, p["visitor"]),
                      profile=PROFILES[n % 12] if n % 12 < len(PROFILES) else None,
                      clock_ms=max(ds.clock_ms, p["newest"]), now_ms=now, hour=hour, weekday=weekday)
        if page == "detail":
            ctx.product = p["viewed"][-1]
            ctx.item = ds.item(ctx.product)
        elif page == "cart":
            ctx.cart = list(p["cart"])
            ctx.cart_items = np.array([i for i in map(ds.item, ctx.cart) if i >= 0], np.int32)
        elif page in ("checkout", "purchase"):
            ctx.order = list(p["cart"])
            ctx.order_items = np.array([i for i in map(ds.item, ctx.order) if i >= 0], np.int32)
        elif page == "category":
            ctx.category = rng.choice(t.categories)
        elif page == "search":
            words = (ds.title[ds.item(p["viewed"][-1])] or "mug").split()
            ctx.query = rng.choice(words).lower() if n % 5 else "xqzzy"   # one in five: a failed search
        out.append(ctx)
    return out


# the slots of each page, as bench/serve.py and the widget ask for them
SLOTS = {"main": ["main"], "detail": ["detail_similar", "detail_complements"], "cart": ["cart"],
         "category": ["category"], "checkout": ["checkout"], "purchase": ["purchase"], "search": ["search"]}


if __name__ == "__main__":  # pragma: no cover
    sys.exit("a module for bench/sources.py and bench/slot_check.py")
