"""A tenant's shard read into compact numpy / scipy structures: what every ``fit`` works on.

``build_dataset(conn)`` reads one consistent snapshot (one read transaction) of a shard and
returns a ``Dataset``. It runs in the tenant's background build thread (``model.py``), never in
a request. All indices are 0-based int32 positions in the id lists below.

Ids and maps
  item_ids: list[str]        products (catalog first, then products only seen in events)
  item_index: dict[str,int]
  person_ids: list[str]      a person is a logged-in user ("u:<user id>") or else a visitor
  person_index: dict           ("v:<visitor id>"); a visitor who logged in once is that user
  session_ids / session_index  sessions with at least one product interaction or search
  categories: list[str]      distinct full category paths;  brands: list[str]

Product table (aligned with item_ids; n_items = len(item_ids))
  title, description: list[str];  category: list[str] (full path, '' when none)
  category_code: int32 -> categories (-1 none);  top_category: list[str] (first level)
  brand_code: int32 -> brands (-1 none);  tags: list[list[str]];  attrs: list[dict]
  price: float64 (nan unknown);  in_stock: bool;  in_catalog: bool (False: only seen in events)
  created_at: int64 ms;  image, url: list[str|None];  currency: list[str|None]

Profiles (aligned with person_ids; None / '' when the person has no ``users`` row)
  profile_gender, profile_age_band, profile_segment: list[str|None]
  profile_interests: list[list[str]];  person_is_user: bool array;  person_user: list[str|None]

Feedback log: one row per interaction, see ``server/signals`` (views are merged per
(session, product); purchases are order lines); aligned arrays of length n_feedback:
  fb_person, fb_session, fb_item: int32;  fb_kind: int8 (signals.VIEW, CART, REMOVE, PURCHASE,
  REVIEW, IMPRESSION, CLICK);  fb_ts: int64 ms;  fb_weight: float32 (type weight x engagement,
  no decay);  fb_decay: float32 (time decay vs the tenant clock);  fb_qty: float32 (purchases:
  quantity, else 1);  fb_engaged_ms: float32 (views: engaged time, nan unmeasured);
  fb_hour, fb_weekday: int8 (visit-time context, in the tenant's time zone)

Matrices (scipy.sparse.csr_matrix, float32)
  R       persons x items: sum of decayed weights, floored at 0 (implicit feedback)
  V       sessions x items: engagement-weighted views (no decay): co-view
  B       baskets x items: 1 where the order contains the product (basket_ids: order ids,
          basket_person: int32, basket_ts: int64)
  P       persons x items: number of orders containing the product (buy again)

Searches (aligned): search_session, search_person: int32; search_query: list[str];
  search_ts: int64; search_results: int32 (-1 unknown)
Reviews (aligned): review_item, review_person: int32; review_rating: float32 (nan);
  review_text: list[str]; review_ts: int64

Clock and bookkeeping: clock_ms (newest event ts: the tenant clock; 0 when no events),
  last_seq (highest events.seq read), built_ms (wall clock), n_events, local (the tenant's time zone).

Helpers: ``ds.derived(name, fn)`` memoises a shared derivation (fn(ds) -> value) for the
fits of one build; ``ds.window(mask, days)`` restricts a feedback mask to the last ``days``
of the tenant clock; ``ds.item(id)`` index or -1; ``ds.label(i)`` title or id for reasons.
"""
from __future__ import annotations

import gc
import json
import logging
import sqlite3
import threading
import time
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from ..localtime import UTC as UTC_LOCAL
from ..localtime import LocalTime, LocalTimeError
from ..signals import weights as sig
from ..signals.weights import CART, CLICK, IMPRESSION, PURCHASE, REMOVE, REVIEW, VIEW, SignalConfig

ORDER_CHUNK = 100_000  # order lines read per chunk

_EVENT_KIND = {"add_to_cart": CART, "remove_from_cart": REMOVE, "rec_impression": IMPRESSION,
               "rec_click": CLICK, "review": REVIEW}


_NO_ITEMS = np.zeros(0, np.int32)
_NO_ITEMS.setflags(write=False)


def _category_index(ds: "Dataset") -> dict[str, np.ndarray]:
    codes = ds.category_code
    order = np.argsort(codes, kind="stable")               # items grouped by category code
    bounds = np.searchsorted(codes[order], np.arange(len(ds.categories) + 1))
    parts: dict[str, list[np.ndarray]] = {}
    for c, name in enumerate(ds.categories):
        items = order[bounds[c]:bounds[c + 1]]
        if not len(items):
            continue
        levels = name.split(" > ")
        for depth in range(1, len(levels) + 1):
            parts.setdefault(" > ".join(levels[:depth]), []).append(items)
    out = {}
    for path, arrs in parts.items():
        a = np.sort(np.concatenate(arrs)).astype(np.int32)
        a.setflags(write=False)
        out[path] = a
    return out


_NOT_BUILT = object()


class Dataset:
    local: LocalTime = UTC_LOCAL   # the tenant's time zone (a model pickled before the setting: UTC, as it was built)

    def __init__(self) -> None:
        self._derived: dict[str, Any] = {}
        self._lock = threading.RLock()  # derivations may use other derivations

    def __getstate__(self) -> dict:  # the lock is per process (models are built in another one)
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # -- helpers ---------------------------------------------------------------------
    def derived(self, name: str, fn: Callable[["Dataset"], Any]) -> Any:
        """``fn(self)``, computed once (under the lock: one build, even when threads ask at once)."""
        # a built value is read without the lock: it is stored only once complete, and a dict
        # read is atomic under the GIL (requests ask on every call, builds only the first time)
        value = self._derived.get(name, _NOT_BUILT)
        if value is not _NOT_BUILT:
            return value
        with self._lock:
            if name not in self._derived:
                self._derived[name] = fn(self)
            return self._derived[name]

    def window(self, mask: np.ndarray | None = None, days: float | None = None) -> np.ndarray:
        m = np.ones(self.n_feedback, bool) if mask is None else mask
        if days is not None and self.clock_ms:
            m = m & (self.fb_ts >= self.clock_ms - days * sig.DAY_MS)
        return m

    def item(self, product_id: str | None) -> int:
        if product_id is None:
            return -1
        return self.item_index.get(product_id, -1)

    def label(self, i: int) -> str:
        t = self.title[i] if 0 <= i < self.n_items else ""
        return t or (self.item_ids[i] if 0 <= i < self.n_items else "?")

    def person(self, user: str | None, visitor: str | None) -> int:
        if user:
            p = self.person_index.get("u:" + user, -1)
            if p >= 0:
                return p
        if visitor:
            p = self.person_index.get("v:" + visitor, -1)
            if p >= 0:
                return p
            u = self.visitor_user.get(visitor)
            if u:
                return self.person_index.get("u:" + u, -1)
        return -1

    def category_items(self, category: str) -> np.ndarray:
        """Items whose category path equals ``category`` or lies below it (sorted indices).

        One index per model, built on first use: every category path and each of its
        ancestors (``A``, ``A > B``, ...) -> its items (a per-category scan of every path cost
        ~0.5 ms for each category not asked before)."""
        return self.derived("_category_index", _category_index).get(category, _NO_ITEMS)

    n_items: int = 0  # len(item_ids), a plain attribute: read in every request's inner loops

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    @property
    def n_sessions(self) -> int:
        return len(self.session_ids)

    @property
    def n_feedback(self) -> int:
        return len(self.fb_item)

    def summary(self) -> dict:
        return {"items": self.n_items, "persons": self.n_persons, "sessions": self.n_sessions,
                "feedback": self.n_feedback, "baskets": self.B.shape[0], "searches": len(self.search_query),
                "reviews": len(self.review_text), "clock_ms": self.clock_ms, "last_seq": self.last_seq}


class _Ids:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []

    def get(self, key: str) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.ids)
            self.ids.append(key)
        return i

    def codes(self, keys) -> np.ndarray:
        """int64 codes of many keys at once (new keys appended in order)."""
        if len(keys) == 0:
            return np.zeros(0, np.int64)
        uniq, inv = np.unique(np.array(keys, dtype=str), return_inverse=True)
        get = self.get
        mapped = np.fromiter((get(k) for k in uniq.tolist()), np.int64, len(uniq))
        return mapped[inv.ravel()]


def _tags(s: str | None) -> list[str]:
    try:
        v = json.loads(s or "[]")
        return [str(x) for x in v] if isinstance(v, list) else []
    except ValueError:
        return []


def _obj(s: str | None) -> dict:
    try:
        v = json.loads(s or "{}")
        return v if isinstance(v, dict) else {}
    except ValueError:
        return {}


def build_dataset(conn: sqlite3.Connection, cfg: SignalConfig = sig.DEFAULT, tz_offset_min: int = 0,
                  max_events: int | None = None, timezone: str | None = None) -> Dataset:
    """Read a shard (a read-only connection) into a ``Dataset``. See the module docstring.

    ``timezone``: the tenant's (IANA name; ``server/localtime.py``), or ``tz_offset_min`` a fixed
    UTC offset; UTC by default. ``max_events`` bounds the events read (the newest ones) for very
    large shards."""
    t0 = time.perf_counter()
    ds = Dataset()
    ds.cfg = cfg
    try:
        ds.local = LocalTime(timezone, tz_offset_min)
    except LocalTimeError:  # (tenant settings are validated: a zone the system no longer knows)
        logging.getLogger("funnelrec.model").warning("unknown time zone: building in UTC", extra={"timezone": timezone})
        ds.local = UTC_LOCAL
    conn.execute("BEGIN")  # one snapshot for every query below
    gc_was_on = gc.isenabled()
    gc.disable()  # hundreds of thousands of row tuples: no cycle collection passes over them
    try:
        _read(conn, ds, cfg, max_events)
    finally:
        conn.execute("COMMIT")
        if gc_was_on:
            gc.enable()
    ds.built_ms = int(time.time() * 1000)
    ds.read_seconds = time.perf_counter() - t0
    return ds


def _read(conn: sqlite3.Connection, ds: Dataset, cfg: SignalConfig, max_events: int | None) -> None:
    items, persons, sessions = _Ids(), _Ids(), _Ids()
    # -- products --------------------------------------------------------------------
    title, desc, cat, brand, tags, attrs, price, stock, created, image, url, cur = ([] for _ in range(12))
    for row in conn.execute("SELECT id, title, description, category, brand, tags, attrs, price, in_stock,"
                            " created_at, image, url, currency FROM products ORDER BY created_at, id"):
        items.get(row[0])
        title.append(row[1] or "")
        desc.append(row[2] or "")
        cat.append(row[3] or "")
        brand.append(row[4] or "")
        tags.append(_tags(row[5]))
        attrs.append(_obj(row[6]))
        price.append(np.nan if row[7] is None else row[7])
        stock.append(bool(row[8]))
        created.append(row[9] or 0)
        image.append(row[10])
        url.append(row[11])
        cur.append(row[12])
    n_catalog = len(items.ids)

    # -- profiles --------------------------------------------------------------------
    prof: dict[int, tuple] = {}
    for uid, gender, age_band, interests, segment in conn.execute(
            "SELECT id, gender, age_band, interests, segment FROM users"):
        prof[persons.get("u:" + uid)] = (gender, age_band, _tags(interests), segment)
    ds.visitor_user = dict(conn.execute("SELECT id, user_id FROM visitors WHERE user_id IS NOT NULL").fetchall())

    # -- events ----------------------------------------------------------------------
    row = conn.execute("SELECT max(ts), max(seq), count(*) FROM events").fetchone()
    ds.clock_ms = int(row[0] or 0)
    ds.last_seq = int(row[1] or 0)
    ds.n_events = int(row[2] or 0)
    min_seq = 0
    if max_events and ds.n_events > max_events:
        min_seq = ds.last_seq - max_events
    vu = ds.visitor_user

    def person_of(visitor: str, user: str | None) -> int:
        user = user or vu.get(visitor)
        return persons.get("u:" + user if user else "v:" + visitor)

    # views: page views and engagement merged per (session, product)
    fb_p, fb_s, fb_i, fb_k, fb_t, fb_w, fb_q, fb_e = ([] for _ in range(8))
    views: dict[tuple[int, int], list] = {}
    q = ("SELECT type, ts, visitor, session, user_id, product,"
         " CASE WHEN type='engagement' THEN json_extract(data,'$.engaged_ms') END,"
         " CASE WHEN type='engagement' THEN json_extract(data,'$.scroll_pct') END,"
         " CASE WHEN type='engagement' THEN coalesce(json_extract(data,'$.content_ms.description'),0)"
         "  + coalesce(json_extract(data,'$.content_ms.reviews'),0) + coalesce(json_extract(data,'$.content_ms.images'),0) END,"
         " CASE WHEN type='review' THEN json_extract(data,'$.rating') END"
         " FROM events WHERE product IS NOT NULL AND seq > ? AND type IN"
         " ('page_view','engagement','add_to_cart','remove_from_cart','rec_impression','rec_click','review')")
    for etype, ts, visitor, session, user, product, eng, scroll, content, rating in conn.execute(q, (min_seq,)):
        i = items.get(product)
        p = person_of(visitor, user)
        s = sessions.get(session)
        if etype == "page_view" or etype == "engagement":
            v = views.get((s, i))
            if v is None:
                # person, ts, page views, engaged ms (None = unmeasured), max scroll, content ms
                v = views[(s, i)] = [p, ts, 0, None, 0.0, 0.0]
            if ts > v[1]:
                v[1] = ts
            if etype == "page_view":
                v[2] += 1
            else:
                v[3] = (v[3] or 0) + (eng or 0)
                v[4] = max(v[4], scroll or 0.0)
                v[5] += content or 0
            continue
        kind = _EVENT_KIND[etype]
        w = cfg.type_weight(kind)
        if kind == REVIEW and rating is not None:
            w += (rating - 3.0) * cfg.review_rating
        fb_p.append(p); fb_s.append(s); fb_i.append(i); fb_k.append(kind); fb_t.append(ts)
        fb_w.append(w); fb_q.append(1.0); fb_e.append(np.nan)

    # purchases: order lines (columnar: the person key is computed by SQLite)
    baskets = _Ids()
    ol = conn.execute(
        "SELECT order_id, product, coalesce('u:' || user_id, 'v:' || visitor), session, quantity, ts FROM order_lines"
        + (" WHERE ts >= (SELECT min(ts) FROM events WHERE seq > ?)" if min_seq else "") + " ORDER BY order_id",
        (min_seq,) if min_seq else ())
    # rows come grouped by order (the primary key's order), read in chunks to bound memory:
    # basket, person and session are per order, so only the first row of an order is looked up
    remap = {"v:" + v: "u:" + u for v, u in vu.items()}
    iget = items.index.get
    prev_order = None
    bp_parts, bs_parts, rows_b, rows_i, rows_ts, rows_q = [], [], [], [], [], []
    while True:
        rows = ol.fetchmany(ORDER_CHUNK)
        if not rows:
            break
        c_order, c_product, c_person, c_session, c_qty, c_ts = zip(*rows)
        del rows
        n_rows = len(c_order)
        ords = np.array(c_order, dtype=object)
        start = np.ones(n_rows, bool)
        start[1:] = ords[1:] != ords[:-1]
        start[0] = c_order[0] != prev_order
        del ords
        prev_order = c_order[-1]
        offset = len(baskets.ids)
        first = np.flatnonzero(start).tolist()
        for i in first:
            baskets.get(c_order[i])
        keys = [c_person[i] for i in first]
        if remap:  # visitors who logged in at some point are that user
            keys = [remap.get(k, k) for k in keys]
        bp_parts.append(persons.codes(keys))
        bs_parts.append(sessions.codes([c_session[i] for i in first]))
        rows_b.append(offset + np.cumsum(start) - 1)  # leading rows of a straddling order: offset - 1
        cols = np.fromiter((iget(p, -1) for p in c_product), np.int64, n_rows)
        missing = np.flatnonzero(cols < 0)
        if len(missing):
            cols[missing] = items.codes([c_product[i] for i in missing.tolist()])
        rows_i.append(cols)
        rows_ts.append(np.array(c_ts, np.int64))
        rows_q.append(np.array(c_qty, np.float64))
        del c_order, c_product, c_person, c_session, c_qty, c_ts
    if rows_b:
        b_rows = np.concatenate(rows_b)
        b_cols = np.concatenate(rows_i)
        b_person = np.concatenate(bp_parts)
        b_sess = np.concatenate(bs_parts)
        o_person = b_person[b_rows]
        o_session = b_sess[b_rows]
        o_ts = np.concatenate(rows_ts)
        o_qty = np.concatenate(rows_q)
        starts = np.ones(len(b_rows), bool)
        starts[1:] = b_rows[1:] != b_rows[:-1]
        b_ts = o_ts[starts]
        del rows_b, rows_i, bp_parts, bs_parts, rows_ts, rows_q
    else:
        b_rows = b_cols = o_person = o_session = np.zeros(0, np.int64)
        o_ts = np.zeros(0, np.int64)
        o_qty = np.zeros(0)
        b_person = np.zeros(0, np.int64)
        b_ts = np.zeros(0, np.int64)

    # searches
    s_sess, s_pers, s_query, s_ts, s_res = [], [], [], [], []
    for ts, visitor, session, user, query, results in conn.execute(
            "SELECT ts, visitor, session, user_id, json_extract(data,'$.query'), json_extract(data,'$.results')"
            " FROM events WHERE type='search' AND seq > ?", (min_seq,)):
        s_sess.append(sessions.get(session))
        s_pers.append(person_of(visitor, user))
        s_query.append(query or "")
        s_ts.append(ts)
        s_res.append(-1 if results is None else int(results))

    # reviews (catalog table)
    r_item, r_pers, r_rating, r_text, r_ts = [], [], [], [], []
    for product, user, visitor, rating, text, ts in conn.execute(
            "SELECT product, user_id, visitor, rating, text, ts FROM reviews"):
        r_item.append(items.get(product))
        r_pers.append(persons.get("u:" + user) if user else (person_of(visitor, None) if visitor else -1))
        r_rating.append(np.nan if rating is None else rating)
        r_text.append(text or "")
        r_ts.append(ts)

    # -- views -> feedback rows with engagement factors ----------------------------------
    n_items = len(items.ids)
    if views:
        keys = np.array(list(views.keys()), dtype=np.int64).reshape(-1, 2)
        vals = list(views.values())
        v_person = np.fromiter((v[0] for v in vals), np.int64, len(vals))
        v_ts = np.fromiter((v[1] for v in vals), np.int64, len(vals))
        v_pv = np.fromiter((v[2] for v in vals), np.float64, len(vals))
        measured = np.fromiter((v[3] is not None for v in vals), bool, len(vals))
        v_eng = np.fromiter((v[3] or 0 for v in vals), np.float64, len(vals))
        v_scroll = np.fromiter((v[4] for v in vals), np.float64, len(vals))
        v_content = np.fromiter((v[5] for v in vals), np.float64, len(vals))
        v_item = keys[:, 1]
        usual = sig.usual_engaged_ms(v_item[measured], v_eng[measured], n_items, cfg)
        factor = sig.engagement_factor(v_eng, v_scroll, v_content, usual[v_item], measured, cfg)
        repeat = 1.0 + cfg.repeat_view * np.clip(v_pv - 1, 0, 4)
        v_w = cfg.view * factor * repeat
        ds.usual_engaged_ms = usual.astype(np.float32)
    else:
        keys = np.zeros((0, 2), np.int64)
        v_person = v_ts = np.zeros(0, np.int64)
        v_w = v_eng = np.zeros(0)
        measured = np.zeros(0, bool)
        v_item = np.zeros(0, np.int64)
        ds.usual_engaged_ms = np.full(n_items, 30_000, np.float32)

    n_o = len(b_cols)
    ds.fb_person = np.concatenate([v_person, np.array(fb_p, np.int64), o_person]).astype(np.int32)
    ds.fb_session = np.concatenate([keys[:, 0], np.array(fb_s, np.int64), o_session]).astype(np.int32)
    ds.fb_item = np.concatenate([v_item, np.array(fb_i, np.int64), b_cols]).astype(np.int32)
    ds.fb_kind = np.concatenate([np.full(len(v_item), VIEW, np.int8), np.array(fb_k, np.int8),
                                 np.full(n_o, PURCHASE, np.int8)])
    ds.fb_ts = np.concatenate([v_ts, np.array(fb_t, np.int64), o_ts])
    ds.fb_weight = np.concatenate([v_w, np.array(fb_w, np.float64), np.full(n_o, cfg.purchase)]).astype(np.float32)
    ds.fb_qty = np.concatenate([np.ones(len(v_item)), np.array(fb_q, np.float64), o_qty]).astype(np.float32)
    ds.fb_engaged_ms = np.concatenate([np.where(measured, v_eng, np.nan), np.array(fb_e, np.float64),
                                       np.full(n_o, np.nan)]).astype(np.float32)
    if ds.clock_ms == 0 and len(ds.fb_ts):
        ds.clock_ms = int(ds.fb_ts.max())
    ds.fb_decay = sig.decay(ds.fb_ts, ds.clock_ms, cfg)
    ds.fb_hour, ds.fb_weekday = ds.local.parts(ds.fb_ts)   # in the tenant's time zone; weekday 0 = Monday

    # -- ids, product table ----------------------------------------------------------
    n_items = len(items.ids)
    extra = n_items - n_catalog
    ds.item_ids, ds.item_index = items.ids, items.index
    ds.n_items = n_items
    ds.title = title + [""] * extra
    ds.description = desc + [""] * extra
    ds.category = cat + [""] * extra
    ds.categories = sorted(set(c for c in cat if c))
    cindex = {c: k for k, c in enumerate(ds.categories)}
    ds.category_code = np.array([cindex.get(c, -1) for c in ds.category], np.int32)
    ds.top_category = [c.split(" > ")[0] for c in ds.category]
    ds.brands = sorted(set(b for b in brand if b))
    bindex = {b: k for k, b in enumerate(ds.brands)}
    ds.brand_code = np.array([bindex.get(b, -1) for b in brand] + [-1] * extra, np.int32)
    ds.tags = tags + [[] for _ in range(extra)]
    ds.attrs = attrs + [{} for _ in range(extra)]
    ds.price = np.array(price + [np.nan] * extra, np.float64)
    ds.in_stock = np.array(stock + [False] * extra, bool)
    ds.in_catalog = np.arange(n_items) < n_catalog
    ds.created_at = np.array(created + [0] * extra, np.int64)
    ds.image = image + [None] * extra
    ds.url = url + [None] * extra
    ds.currency = cur + [None] * extra

    ds.person_ids, ds.person_index = persons.ids, persons.index
    ds.session_ids, ds.session_index = sessions.ids, sessions.index
    n_p = len(persons.ids)
    ds.person_is_user = np.array([pid.startswith("u:") for pid in persons.ids], bool)
    ds.person_user = [pid[2:] if pid.startswith("u:") else None for pid in persons.ids]
    ds.profile_gender = [None] * n_p
    ds.profile_age_band = [None] * n_p
    ds.profile_interests = [[] for _ in range(n_p)]
    ds.profile_segment = [None] * n_p
    for p, (g, a, ints, seg) in prof.items():
        ds.profile_gender[p], ds.profile_age_band[p], ds.profile_interests[p], ds.profile_segment[p] = g, a, ints, seg

    # -- matrices --------------------------------------------------------------------
    pref = ds.fb_kind <= REVIEW  # preference kinds (not impressions / clicks)
    w = (ds.fb_weight * ds.fb_decay)[pref]
    R = sp.csr_matrix((w, (ds.fb_person[pref], ds.fb_item[pref])), shape=(n_p, n_items), dtype=np.float32)
    R.data = np.maximum(R.data, 0)
    R.eliminate_zeros()
    ds.R = R
    vm = ds.fb_kind == VIEW
    ds.V = sp.csr_matrix((ds.fb_weight[vm], (ds.fb_session[vm], ds.fb_item[vm])),
                         shape=(len(sessions.ids), n_items), dtype=np.float32)
    ds.basket_ids = baskets.ids
    ds.basket_person = np.asarray(b_person, np.int32)
    ds.basket_ts = np.asarray(b_ts, np.int64)
    B = sp.csr_matrix((np.ones(len(b_rows), np.float32), (b_rows, b_cols)), shape=(len(baskets.ids), n_items))
    B.data[:] = 1.0  # duplicates summed: back to 0/1
    ds.B = B
    if len(b_rows):
        P = sp.csr_matrix((np.ones(len(b_rows), np.float32), (o_person, b_cols)),
                          shape=(n_p, n_items))
    else:
        P = sp.csr_matrix((n_p, n_items), dtype=np.float32)
    ds.P = P

    ds.search_session = np.array(s_sess, np.int32)
    ds.search_person = np.array(s_pers, np.int32)
    ds.search_query = s_query
    ds.search_ts = np.array(s_ts, np.int64)
    ds.search_results = np.array(s_res, np.int32)
    ds.review_item = np.array(r_item, np.int32)
    ds.review_person = np.array(r_pers, np.int32)
    ds.review_rating = np.array(r_rating, np.float32)
    ds.review_text = r_text
    ds.review_ts = np.array(r_ts, np.int64)
