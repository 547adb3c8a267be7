"""Small hand-built shards for engine tests: a catalog, events, a model built from them."""
from __future__ import annotations

import itertools
from pathlib import Path

from server.catalog.schema import convert
from server.catalog.store import UPSERT_JOBS
from server.ingest.schema import event_from_obj
from server.ingest.store import store_events_job
from server.recommenders.model import build_model
from server.shards import Shard

T0 = 1_700_000_000_000  # a fixed tenant clock base (ms)
MIN = 60_000
_ids = itertools.count()


def product(pid, title="", category="", price=10.0, **kw) -> dict:
    kw.setdefault("created_at", T0 - 86_400_000)
    return {"id": pid, "title": title or pid.upper(), "category": category, "price": price,
            "url": f"https://shop.example/p/{pid}", "image": f"https://shop.example/i/{pid}.jpg", **kw}


def rules_shop(d: "ShopData", sessions: int) -> object:
    """The rule tests' shop: 12 products p0-p11 in three categories (Mugs p0-p3, Lamps p4-p7,
    Food), price i, brands alternating, p5 out of stock; visitor n views p0..p(11-n), so p0 is
    the most viewed. Returns the built model."""
    rows = [product(f"p{i}", f"P{i}", ("Home > Mugs" if i < 4 else "Home > Lamps" if i < 8 else "Food"),
                    price=float(i), brand="acme" if i % 2 else "zeta", created_at=T0 + i) for i in range(12)]
    rows[5]["in_stock"] = False
    d.products(rows)
    return d.events([view(f"p{i}", f"v{n}", f"s{n}", T0 + n * 100 + i) for n in range(sessions) for i in range(12 - n)]).model()


def e(type_, visitor="v1", session="s1", ts=T0, **fields) -> dict:
    return {"id": f"e{next(_ids)}", "type": type_, "visitor": visitor, "session": session, "ts": ts, **fields}


def view(pid, visitor="v1", session="s1", ts=T0, **kw) -> dict:
    return e("page_view", visitor, session, ts, page="detail", product=pid, **kw)


def engage(pid, ms, visitor="v1", session="s1", ts=T0, scroll=50.0, **kw) -> dict:
    return e("engagement", visitor, session, ts, page="detail", product=pid, engaged_ms=ms, scroll_pct=scroll, **kw)


def buy(order, pids, visitor="v1", session="s1", ts=T0, user=None) -> dict:
    ev = e("purchase", visitor, session, ts, order=order, lines=[{"product": p, "quantity": 1} for p in pids])
    if user:
        ev["user"] = user
    return ev


def cart(pid, visitor="v1", session="s1", ts=T0) -> dict:
    return e("add_to_cart", visitor, session, ts, product=pid)


class ShopData:
    def __init__(self, tmp_path: Path, slug: str = "t"):
        self.shard = Shard(slug, Path(tmp_path) / f"{slug}.db", synchronous="NORMAL")

    def products(self, rows: list[dict]) -> "ShopData":
        self.shard.write_sync(UPSERT_JOBS["products"]([convert("products", r) for r in rows]))
        return self

    def users(self, rows: list[dict]) -> "ShopData":
        self.shard.write_sync(UPSERT_JOBS["users"]([convert("users", r) for r in rows]))
        return self

    def events(self, rows: list[dict]) -> "ShopData":
        self.shard.write_sync(store_events_job([event_from_obj(r) for r in rows], T0, "import"))
        return self

    def model(self, only=None):
        conn = self.shard.connect_read()
        try:
            return build_model(conn, only=only)
        finally:
            conn.close()

    def close(self):
        self.shard.close_sync()
