"""Replay the train part of a log into a scratch tenant through the product's own code.

Only what the shop knew at the cut goes in: the train rows and the catalog as of the cut
(``catalog_as_of``).

The rows become funnelrec events (``page_view`` + ``engagement`` for views with measured
engaged time, ``add_to_cart``, one ``purchase`` per order with its lines) and products, written
as NDJSON files and loaded with ``server.catalog.importer.import_file`` (what ``funnelrec
import`` runs); then ``server.recommenders.model.build_model`` reads the shard exactly as the
server's background builder does. The scratch shard lives in a temporary folder.
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from pathlib import Path

from ..catalog.importer import import_file
from ..recommenders import registry
from ..recommenders.dataset import build_dataset
from ..recommenders.model import Model, build_model
from ..signals.weights import DEFAULT, SignalConfig
from ..shards import Shard
from .formats import CART, PURCHASE, VIEW, Log, Row, _products_from_rows, safe_id

MAX_LINES = 500


def events_of(rows: list[Row], start: int = 0, users: set[str] | frozenset = frozenset()):
    """Rows -> event dicts of the ingestion schema (ids ``ev<n>`` from ``start``); a visitor
    in ``users`` is a logged-in user of that id (its profile is imported as a user)."""
    n = start
    orders: "OrderedDict[str, list]" = OrderedDict()
    for ts, visitor, session, kind, product, order, qty, price, engaged, scroll in rows:
        if kind == PURCHASE:
            key = order or session
            o = orders.get(key)
            if o is None:
                o = orders[key] = [ts, visitor, session, {}]

            lines = o[3]
            if product in lines:
                lines[product]["quantity"] += qty
            else:
                line = {"product": product, "quantity": max(qty, 1e-6)}
                if price is not None:
                    line["price"] = max(price, 0.0)
                lines[product] = line
            continue
        n += 1
        base = {"id": f"ev{n}", "visitor": visitor, "session": session, "ts": int(ts)}
        if visitor in users:
            base["user"] = visitor
        if kind == VIEW:
            yield {**base, "type": "page_view", "page": "detail", "product": product}
            if engaged is not None:
                n += 1
                ev = {**base, "id": f"ev{n}", "type": "engagement", "page": "detail", "product": product,
                      "engaged_ms": int(max(engaged, 0))}
                if scroll is not None:
                    ev["scroll_pct"] = float(min(max(scroll, 0), 100))
                yield ev
        elif kind == CART:
            yield {**base, "type": "add_to_cart", "product": product, "quantity": max(qty, 1e-6)}
    for key, (ts, visitor, session, lines) in orders.items():
        items = list(lines.values())
        for part in range(0, len(items), MAX_LINES):
            n += 1
            oid = safe_id(key, 120) + (f"-{part // MAX_LINES}" if part else "")
            ev = {"id": f"ev{n}", "type": "purchase", "visitor": visitor, "session": session, "ts": int(ts),
                  "order": oid, "lines": items[part:part + MAX_LINES]}
            if visitor in users:
                ev["user"] = visitor
            yield ev


def catalog_as_of(log: Log, rows: list[Row]) -> dict[str, dict]:
    """The catalog the shop had at the cut: products of the train rows only, their price and
    first-seen time (``created_at``) from the train rows (titles and categories are catalog
    data). Products first seen after the cut are not in it: otherwise ``new_arrivals`` would
    know which products are about to appear, and unseen products would be learnable targets."""
    out: dict[str, dict] = {}
    fresh = _products_from_rows(rows)
    for pid, d in fresh.items():
        base = log.products.get(pid, {})
        out[pid] = {**{k: v for k, v in base.items() if k in ("title", "category", "description", "brand", "tags")}, **d,
                    "title": base.get("title") or d["title"]}
    return out


def write_files(log: Log, rows: list[Row], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    pp, ep = folder / "products.ndjson", folder / "events.ndjson"
    if log.users:
        with open(folder / "users.ndjson", "w", encoding="utf-8") as f:
            for prof in log.users.values():
                f.write(json.dumps(prof, ensure_ascii=False) + "\n")
    with open(pp, "w", encoding="utf-8") as f:
        for p in catalog_as_of(log, rows).values():
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(ep, "w", encoding="utf-8") as f:
        for ev in events_of(rows, users=frozenset(log.users)):
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
    return pp, ep


def replay(log: Log, rows: list[Row], folder: Path, slug: str = "evaluation") -> tuple[Shard, dict]:
    """Import ``rows`` (the train part) and the products into a new shard in ``folder``."""
    t0 = time.perf_counter()
    pp, ep = write_files(log, rows, folder)
    shard = Shard(slug, folder / f"{slug}.db", synchronous="OFF")
    rp = import_file(shard, "products", pp)
    if log.users:
        import_file(shard, "users", folder / "users.ndjson")
    re_ = import_file(shard, "events", ep)
    if re_.rejected:
        first = re_.errors[:3]
        raise ValueError(f"{re_.rejected} events rejected by the importer, e.g. {first}")
    return shard, {"products": rp.as_dict(), "events": re_.as_dict(), "seconds": round(time.perf_counter() - t0, 2)}


def build(shard: Shard, cfg: SignalConfig | None = None):
    """The model of the scratch tenant with the server's own steps (``build_model``: read the
    ``Dataset``, fit every registered recommender, one failure recorded and skipped). With a
    non-default ``cfg`` (the time-signal experiments) the dataset is read with those weights."""
    conn = shard.connect_read()
    try:
        if cfg is None or cfg == DEFAULT:
            return build_model(conn)          # exactly the server's background build
        t0 = time.perf_counter()
        ds = build_dataset(conn, cfg=cfg)
        fitted, inst, errors, secs = {}, {}, {}, {"_dataset": ds.read_seconds}
        for name, cls in sorted(registry.all_recommenders().items()):
            t1 = time.perf_counter()
            try:
                rec = cls()
                fitted[name] = rec.fit(ds)
                inst[name] = rec
            except Exception as exc:
                errors[name] = repr(exc)
            secs[name] = time.perf_counter() - t1
        return Model(ds=ds, fitted=fitted, recommenders=inst, errors=errors, fit_seconds=secs,
                     build_seconds=time.perf_counter() - t0, built_at=time.time())
    finally:
        conn.close()
