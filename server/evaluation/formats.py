"""Input formats of ``funnelrec eval``: every loader returns one ``Log`` (products + interactions).

Formats (``--format``):

``events``       CSV or NDJSON (optionally .gz), one interaction a row, the generic format::

                     session,visitor,type,product,time[,order,quantity,price,engaged_ms,scroll_pct,
                     device,referrer,title,category]

                 ``type``: view (or page_view), cart (or add_to_cart), purchase; ``time``: ISO 8601
                 text or epoch seconds / milliseconds; ``order`` groups purchase lines into one
                 order (default: the session); ``visitor`` defaults to the session.
``online-retail``  the UCI Online Retail invoice CSV (InvoiceNo, StockCode, Description, Quantity,
                 InvoiceDate, UnitPrice, CustomerID, Country): an invoice is an order of customer
                 ``c<CustomerID>`` (guests: visitor ``g<InvoiceNo>``); cancellations and
                 non-positive quantities are skipped; category = "Gifts > <last word of the
                 title>" (the data has none), price = the median unit price.
``sessions``     ``SessionId ItemId Time`` (tab, comma, ';' or space separated, a header line),
                 views; Time in epoch seconds, milliseconds or ISO text.
``movielens``    MovieLens in RecBole's atomic format (``.inter`` + ``.item`` + ``.user``): ratings as
                 views (4-5 stars also purchases), one session and order per user and day, the
                 users' profiles imported as users (see ``load_movielens``).
``diginetica``   the CIKM Cup 2016 view log ``session_id;user_id;item_id;timeframe;eventdate``:
                 time = eventdate + timeframe (ms offset in the session); ``NA`` user = anonymous.

A row of ``Log.rows`` is a tuple ``(ts_ms, visitor, session, kind, product, order, qty, price,
engaged_ms, scroll_pct)`` with kind one of VIEW / CART / PURCHASE below (None: not measured).
"""
from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

VIEW, CART, PURCHASE = "view", "cart", "purchase"
FORMATS = ("online-retail", "events", "sessions", "diginetica", "movielens")
_KINDS = {"view": VIEW, "page_view": VIEW, "detail": VIEW, "click": VIEW, "cart": CART, "add_to_cart": CART,
          "addtocart": CART, "purchase": PURCHASE, "buy": PURCHASE, "transaction": PURCHASE, "order": PURCHASE}
_ID_BAD = re.compile(r"[^A-Za-z0-9_.:\-]")

# (ts_ms, visitor, session, kind, product, order, qty, price, engaged_ms, scroll_pct)
Row = tuple


@dataclass
class Log:
    name: str
    rows: list[Row]                                   # sorted by time
    products: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    skipped: int = 0
    users: dict[str, dict] = field(default_factory=dict)   # visitor id -> profile (the users import)

    @property
    def kinds(self) -> set[str]:
        return {r[3] for r in self.rows}

    def summary(self) -> dict:
        return {"name": self.name, "rows": len(self.rows), "products": len(self.products),
                "visitors": len({r[1] for r in self.rows}), "sessions": len({r[2] for r in self.rows}),
                "kinds": sorted(self.kinds), "skipped": self.skipped,
                "first": _iso(self.rows[0][0]) if self.rows else None,
                "last": _iso(self.rows[-1][0]) if self.rows else None}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def safe_id(s: str, limit: int = 64) -> str:
    """An id the event schema accepts (``[A-Za-z0-9_.:-]``, at most 64 characters)."""
    s = _ID_BAD.sub("_", str(s).strip()) or "_"
    return s[:limit]


def parse_time(v) -> int:
    """ISO text, epoch seconds or epoch milliseconds -> ms."""
    if isinstance(v, (int, float)):
        x = float(v)
    else:
        s = str(v).strip()
        try:
            x = float(s)
        except ValueError:
            s = s.replace("Z", "+00:00")
            if len(s) == 10:
                s += "T00:00:00"
            d = dt.datetime.fromisoformat(s)
            if d.tzinfo is None:
                d = d.replace(tzinfo=dt.timezone.utc)
            return int(d.timestamp() * 1000)
    return int(x if x > 1e11 else x * 1000)


def _open_text(path: Path):
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", errors="replace", newline="")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


def _products_from_rows(rows: Iterable[Row], titles: dict | None = None, categories: dict | None = None) -> dict[str, dict]:
    prices: dict[str, list] = defaultdict(list)
    first: dict[str, int] = {}
    for r in rows:
        p = r[4]
        if p not in first or r[0] < first[p]:
            first[p] = r[0]
        if r[7] is not None:
            prices[p].append(r[7])
    titles, categories = titles or {}, categories or {}
    out = {}
    for p, ts in first.items():
        d = {"id": p, "title": titles.get(p) or p, "created_at": ts}
        if categories.get(p):
            d["category"] = categories[p]
        if prices.get(p):
            d["price"] = round(statistics.median(prices[p]), 2)
        out[p] = d
    return out


# -- online-retail ---------------------------------------------------------------------
def load_online_retail(path: Path) -> Log:
    rows: list[Row] = []
    titles: dict[str, str] = {}
    skipped = 0
    with _open_text(path) as f:
        for row in csv.DictReader(f):
            inv = (row.get("InvoiceNo") or "").strip()
            stock = (row.get("StockCode") or "").strip()
            try:
                qty = float(row["Quantity"])
                price = float(row["UnitPrice"])
            except (TypeError, ValueError, KeyError):
                skipped += 1
                continue
            if not inv or inv.startswith("C") or qty <= 0 or price <= 0 or not stock:
                skipped += 1
                continue
            ts = parse_time(row["InvoiceDate"].replace(" ", "T"))
            desc = (row.get("Description") or "").strip()
            if desc and stock not in titles:
                titles[stock] = desc.title()
            cust = (row.get("CustomerID") or "").strip()
            visitor = "c" + cust.split(".")[0] if cust else "g" + inv
            rows.append((ts, safe_id(visitor), safe_id("s" + inv), PURCHASE, stock[:128], inv[:128], qty, price, None, None))
    rows.sort(key=lambda r: r[0])
    cats = {p: "Gifts > " + (t.split()[-1] if t.split() else "Other") for p, t in titles.items()}
    log = Log("online-retail", rows, _products_from_rows(rows, titles, cats), skipped=skipped)
    log.notes.append("purchases only (no views, carts or engagement); categories derived from the last word of the title")
    return log


# -- diginetica ------------------------------------------------------------------------
def load_diginetica(path: Path) -> Log:
    rows: list[Row] = []
    skipped = 0
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=";")
        header = next(reader, None)
        if header and header[0].strip().lower() != "session_id":
            f.seek(0)
            reader = csv.reader(f, delimiter=";")
        for rec in reader:
            if len(rec) < 5:
                skipped += 1
                continue
            sess, user, item, frame, date = (x.strip() for x in rec[:5])
            try:
                ts = parse_time(date) + int(float(frame))
            except ValueError:
                skipped += 1
                continue
            visitor = "u" + user if user and user.upper() != "NA" else "s" + sess
            rows.append((ts, safe_id(visitor), safe_id("s" + sess), VIEW, item[:128], None, 1.0, None, None, None))
    rows.sort(key=lambda r: r[0])
    log = Log("diginetica", rows, _products_from_rows(rows), skipped=skipped)
    log.notes.append("views only, with the time between views (timeframe); no engagement measurements, no purchases")
    return log


# -- sessions ---------------------------------------------------------------------------
def load_sessions(path: Path) -> Log:
    rows: list[Row] = []
    skipped = 0
    with _open_text(path) as f:
        first = f.readline()
        delim = next((d for d in ("\t", ";", ",") if d in first), None)
        cols = [c.strip().lower() for c in (first.split(delim) if delim else first.split())]
        try:
            si, ii, ti = cols.index("sessionid"), cols.index("itemid"), cols.index("time")
        except ValueError:
            si, ii, ti = 0, 1, 2
            f.seek(0)
        for line in f:
            parts = line.rstrip("\r\n").split(delim) if delim else line.split()
            if len(parts) <= max(si, ii, ti):
                skipped += 1
                continue
            try:
                ts = parse_time(parts[ti])
            except ValueError:
                skipped += 1
                continue
            s = safe_id("s" + parts[si].strip())
            rows.append((ts, s, s, VIEW, parts[ii].strip()[:128], None, 1.0, None, None, None))
    rows.sort(key=lambda r: r[0])
    return Log("sessions", rows, _products_from_rows(rows), skipped=skipped)


# -- generic events -----------------------------------------------------------------------
def _records(path: Path):
    name = path.name.lower().removesuffix(".gz")
    with _open_text(path) as f:
        if name.endswith((".ndjson", ".jsonl", ".json")):
            for line in f:
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        yield None
        else:
            yield from csv.DictReader(f)


def _num(v):
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def load_events(path: Path) -> Log:
    rows: list[Row] = []
    titles: dict[str, str] = {}
    cats: dict[str, str] = {}
    skipped = 0
    for rec in _records(path):
        if not isinstance(rec, dict):
            skipped += 1
            continue
        rec = {str(k).strip().lower(): v for k, v in rec.items() if k is not None}
        kind = _KINDS.get(str(rec.get("type") or "view").strip().lower())
        product = str(rec.get("product") or rec.get("item") or "").strip()
        session = str(rec.get("session") or "").strip()
        when = rec.get("time", rec.get("ts", rec.get("timestamp")))
        if kind is None or not product or not session or when in (None, ""):
            skipped += 1
            continue
        try:
            ts = parse_time(when)
        except ValueError:
            skipped += 1
            continue
        visitor = str(rec.get("visitor") or "").strip() or session
        order = str(rec.get("order") or "").strip() or (session if kind == PURCHASE else None)
        qty = _num(rec.get("quantity")) or 1.0
        if rec.get("title"):
            titles.setdefault(product, str(rec["title"]))
        if rec.get("category"):
            cats.setdefault(product, str(rec["category"]))
        rows.append((ts, safe_id(visitor), safe_id(session), kind, product[:128], order and order[:128], qty,
                     _num(rec.get("price")), _num(rec.get("engaged_ms")), _num(rec.get("scroll_pct"))))
    rows.sort(key=lambda r: r[0])
    return Log("events", rows, _products_from_rows(rows, titles, cats), skipped=skipped)


# -- movielens ----------------------------------------------------------------------------
def _atomic(path: Path):
    """RecBole atomic files: a typed header (``name:type``), tab-separated rows."""
    with _open_text(path) as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\r\n").split("\t")]
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == len(header):
                yield dict(zip(header, parts))


def load_movielens(path: Path) -> Log:
    """MovieLens in RecBole's atomic format (``ml-100k.inter`` with ``.item`` and ``.user`` beside
    it, or their folder). Not shop data: every rating is a view of the movie by user ``u<id>``,
    one session per user and day; a rating of 4 or 5 is also a purchase, one order per user and
    day. The users file gives profiles (age, gender, occupation as an interest): the only public
    set here for the demographic and customer-group recommenders."""
    path = Path(path)
    inter = path if path.is_file() else next(iter(sorted(path.glob("*.inter"))), None)
    if inter is None:
        raise ValueError(f"no .inter file in {path}")
    rows: list[Row] = []
    skipped = 0
    for rec in _atomic(inter):
        try:
            ts = parse_time(float(rec["timestamp"]))
            rating = float(rec.get("rating") or 0)
        except (KeyError, ValueError):
            skipped += 1
            continue
        user, item = "u" + rec["user_id"], rec["item_id"]
        day = ts // 86_400_000
        rows.append((ts, user, f"s{user}_{day}", VIEW, item, None, 1.0, None, None, None))
        if rating >= 4:
            rows.append((ts, user, f"s{user}_{day}", PURCHASE, item, f"o{user}_{day}", 1.0, None, None, None))
    rows.sort(key=lambda r: r[0])
    titles, cats = {}, {}
    item_file = inter.with_suffix(".item")
    if item_file.exists():
        for rec in _atomic(item_file):
            titles[rec["item_id"]] = rec.get("movie_title") or rec["item_id"]
            genres = (rec.get("class") or "").split()
            if genres:
                cats[rec["item_id"]] = "Movies > " + genres[0]
    log = Log("movielens", rows, _products_from_rows(rows, titles, cats), skipped=skipped)
    user_file = inter.with_suffix(".user")
    if user_file.exists():
        for rec in _atomic(user_file):
            uid = "u" + rec["user_id"]
            prof = {"id": uid}
            if (rec.get("age") or "").isdigit():
                prof["age"] = int(rec["age"])
            if rec.get("gender"):
                prof["gender"] = rec["gender"].lower()
            if rec.get("occupation"):
                prof["interests"] = [rec["occupation"]]
            log.users[uid] = prof
    log.notes.append("ratings, not shop events: a rating is a view, 4-5 stars also a purchase (an order per user "
                     "and day), a session per user and day; profiles (age, gender, occupation) from the users file")
    return log


MIN_TS = 946_684_800_000      # the event schema takes times from 2000-01-01 on
WEEK_MS = 7 * 86_400_000


def shift_old_times(log: Log) -> Log:
    """A log older than 2000 (MovieLens-100k is from 1997-98) moved forward by whole weeks, so
    the events validate and hour of day and weekday stay the same."""
    if not log.rows or log.rows[0][0] >= MIN_TS:
        return log
    weeks = -(-(MIN_TS - log.rows[0][0]) // WEEK_MS)
    d = weeks * WEEK_MS
    log.rows = [(r[0] + d,) + tuple(r[1:]) for r in log.rows]
    for p in log.products.values():
        if isinstance(p.get("created_at"), int):
            p["created_at"] += d
    log.notes.append(f"times moved forward by {weeks} weeks (the event schema starts in 2000; hours and weekdays kept)")
    return log


LOADERS = {"online-retail": load_online_retail, "movielens": load_movielens, "events": load_events, "sessions": load_sessions,
           "diginetica": load_diginetica}


def load(fmt: str, path: Path) -> Log:
    if fmt not in LOADERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return shift_old_times(LOADERS[fmt](Path(path)))
