"""UCI Online Retail invoices -> a funnelrec tenant: products and purchase events.

    .venv/bin/python -m bench.retail --data-dir ./data --tenant retail [--scale 2] [--until 2011-08-31]

The data set (../shared/data/online-retail/*.csv.gz, or ``--csv``) holds invoice lines only:
- a product per StockCode: title = Description, price = the median UnitPrice, created_at = the
  first day it was sold, category = "Gifts > <last word of the description>" (the data has no
  categories; the last word — HOLDER, MUG, BAG... — is the product type), a URL and image URL
  made up from the id;
- one ``purchase`` event per invoice (lines over 500 split into several orders), visitor
  ``c<CustomerID>`` (``g<InvoiceNo>`` for guest checkouts, a quarter of the lines), session =
  the invoice, ts = the invoice time; cancellations (``C...``) and non-positive quantities are
  skipped.
``--scale N`` writes N copies of the events, copy k > 0 with visitor ``...-xk``, order ids
``...-xk`` and times shifted by k hours, for the build-time growth figures (synthetic up-scaling).
``--until`` keeps invoices before that date (time split for the offline check).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "online-retail"


def find_csv(path: str | None) -> Path:
    if path:
        p = Path(path)
    else:
        files = sorted(DEFAULT_DIR.glob("*.csv.gz")) if DEFAULT_DIR.is_dir() else []
        if not files:
            raise SystemExit(f"online-retail data not found under {DEFAULT_DIR}; pass --csv PATH "
                             "(UCI Online Retail as CSV: InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country)")
        p = files[0]
    if not p.is_file():
        raise SystemExit(f"no such file: {p}")
    return p


def _ms(s: str) -> int:
    return int(dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def read_invoices(path: Path, until: str | None = None, since: str | None = None):
    """(products: list[dict], invoices: list[(invoice, visitor, ts, [(stock, qty, price)])])"""
    until_ms = _ms(until + " 00:00:00") if until else None
    since_ms = _ms(since + " 00:00:00") if since else None
    opener = gzip.open if str(path).endswith(".gz") else open
    lines: dict[str, list] = {}
    meta: dict[str, tuple] = {}
    prices: dict[str, list] = defaultdict(list)
    first: dict[str, int] = {}
    titles: dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
        for row in csv.DictReader(f):
            inv = row["InvoiceNo"]
            if inv.startswith("C"):
                continue
            try:
                qty = float(row["Quantity"])
                price = float(row["UnitPrice"])
            except ValueError:
                continue
            stock = row["StockCode"].strip()
            if qty <= 0 or price <= 0 or not stock:
                continue
            ts = _ms(row["InvoiceDate"] if len(row["InvoiceDate"]) > 16 else row["InvoiceDate"] + ":00")
            desc = (row["Description"] or "").strip()
            if desc and stock not in titles:
                titles[stock] = desc
            prices[stock].append(price)
            first[stock] = min(first.get(stock, ts), ts)
            if (until_ms and ts >= until_ms) or (since_ms and ts < since_ms):
                continue
            cust = (row["CustomerID"] or "").strip()
            visitor = "c" + cust.split(".")[0] if cust else "g" + inv
            if inv not in meta:
                meta[inv] = (visitor, ts)
                lines[inv] = []
            lines[inv].append((stock, qty, price))
    products = []
    for stock, ps in prices.items():
        title = titles.get(stock, stock).title()
        word = title.split()[-1] if title.split() else "Other"
        products.append({"id": stock, "title": title, "category": f"Gifts > {word}",
                         "price": round(statistics.median(ps), 2), "currency": "GBP",
                         "url": f"https://retail.example/p/{quote(stock)}", "image": f"https://retail.example/i/{quote(stock)}.jpg",
                         "created_at": first[stock]})
    invoices = [(inv, meta[inv][0], meta[inv][1], ls) for inv, ls in lines.items()]
    invoices.sort(key=lambda x: x[2])
    return products, invoices


def purchase_events(invoices, scale: int = 1):
    for k in range(scale):
        sfx = f"-x{k}" if k else ""
        shift = k * 3_600_000
        for inv, visitor, ts, ls in invoices:
            merged: dict[str, list] = {}
            for stock, qty, price in ls:
                m = merged.setdefault(stock, [0.0, price])
                m[0] += qty
            items = list(merged.items())
            for part in range(0, len(items), 500):
                chunk = items[part:part + 500]
                order = inv + sfx + (f"-{part // 500}" if part else "")
                yield {"id": f"inv-{order}", "type": "purchase", "visitor": (visitor + sfx)[:64],
                       "session": ("s" + inv + sfx)[:64], "ts": ts + shift, "order": order, "currency": "GBP",
                       "lines": [{"product": s, "quantity": q, "price": p} for s, (q, p) in chunk]}


def load(shard, products, invoices, scale: int = 1, batch: int = 2000) -> dict:
    """Write products and purchase events into ``shard`` (a server.shards.Shard)."""
    from server.catalog.schema import convert
    from server.catalog.store import UPSERT_JOBS
    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job

    t0 = time.perf_counter()
    for i in range(0, len(products), 5000):
        shard.write_sync(UPSERT_JOBS["products"]([convert("products", p) for p in products[i:i + 5000]]))
    n = 0
    buf = []
    now = int(time.time() * 1000)
    for ev in purchase_events(invoices, scale):
        buf.append(event_from_obj(ev))
        if len(buf) >= batch:
            n += shard.write_sync(store_events_job(buf, now, "import")).accepted
            buf = []
    if buf:
        n += shard.write_sync(store_events_job(buf, now, "import")).accepted
    return {"products": len(products), "purchases": n, "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=None)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--tenant", required=True, help="an existing tenant slug")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--until", default=None, help="YYYY-MM-DD: keep invoices before this day")
    a = ap.parse_args(argv)
    from server.config import Settings
    from server.shards import Shard
    from server.tenants import TenantRegistry

    settings = Settings.from_env(data_dir=Path(a.data_dir))
    reg = TenantRegistry(settings.data_dir, 0)
    if reg.get(a.tenant) is None:
        raise SystemExit(f"no tenant {a.tenant!r} in {a.data_dir}: create it first (funnelrec tenant create)")
    products, invoices = read_invoices(find_csv(a.csv), until=a.until)
    shard = Shard(a.tenant, reg.shard_path(a.tenant), synchronous="NORMAL")
    try:
        print(load(shard, products, invoices, a.scale))
    finally:
        shard.close_sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
