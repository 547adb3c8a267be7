"""Features of the candidates of one slot: every signal the request and the tenant's data have.

Per candidate (``FeatureSpace.names`` lists them in order):
  per source recommender s of the layout: ``s:score`` (its score / its best score in the pool,
      0 when s did not propose it) and ``s:rrank`` (1 / (1 + rank of the candidate in s's list))
  blend: the blended score (/ the pool's best) and its reciprocal rank; how many sources agree
  product: log popularity, days since its last interaction (log), age in days (log), log price
      (and "price unknown"), price relative to the session (log of price / median price of the
      seed products)
  context match: same category as the current product, share of seed products in the same
      category, candidate's category is the requested category (category pages)
  engagement on related products (``ctx.recent``: weights are engagement-weighted views,
      carts, purchases): the strongest weight of a recent product of the same category, the
      candidate's own recent weight (re-visit), bought before
  visit time: hour (sin, cos), weekend, the product's affinity to this hour (its share of
      interactions within +-2 h of the hour / the shop's share)
  device (desktop, mobile, tablet) and referrer (search engine, social, other site): from
      ``ctx.device`` / ``ctx.referrer`` when the serving context carries them, else 0
  visitor: known person, log history length, segment (vip, heavy, normal, other)
  repeat purchase: how many of the person's orders had the candidate (log), days since they
      last bought it (log; 0 when never)
  placement one-hot (one model serves every placement it was trained for)
Groups that can be switched off for ablations (``disabled``): ``TIME`` and ``ENGAGEMENT``.
"""
from __future__ import annotations

import numpy as np

from ..signals import weights as sig

DAY = 86_400_000.0
SEGMENTS = ("vip", "heavy", "normal")
DEVICES = ("desktop", "mobile", "tablet")
TIME = ("hour_sin", "hour_cos", "weekend", "hour_affinity")
ENGAGEMENT = ("related_engaged_max", "own_recent_weight")
_SEARCH = ("google.", "naver.", "daum.", "bing.", "yahoo.", "duckduckgo.")
_SOCIAL = ("facebook.", "instagram.", "t.co", "twitter.", "kakao", "youtube.", "tiktok.", "pinterest.")


class FeatureSpace:
    def __init__(self, sources: list[str], placements: list[str], disabled: tuple[str, ...] = ()):
        self.sources = list(sources)
        self.placements = list(placements)
        self.disabled = tuple(disabled)
        self.col = {s: k for k, s in enumerate(self.sources)}
        base = ["blend:score", "blend:rrank", "n_sources", "pop_log", "last_days_log", "age_days_log", "price_log",
                "price_missing", "price_rel_session", "same_category_product", "seed_category_share",
                "requested_category", "related_engaged_max", "own_recent_weight", "bought_before", "hour_sin",
                "hour_cos", "weekend", "hour_affinity", *[f"device:{d}" for d in DEVICES], "ref:search", "ref:social",
                "ref:other", "person_known", "history_log", *[f"segment:{s}" for s in SEGMENTS], "segment:other",
                "orders_of_item_log", "days_since_bought_log"]
        self.names = ([f"{s}:score" for s in self.sources] + [f"{s}:rrank" for s in self.sources] + base
                      + [f"placement:{p}" for p in self.placements])
        self.n_base = len(base)
        self.off = np.array([k for k, name in enumerate(self.names)
                             if name in self.disabled or name.split(":")[0] in self.disabled], np.int64)

    @property
    def width(self) -> int:
        return len(self.names)

    def state(self) -> dict:
        return {"sources": self.sources, "placements": self.placements, "disabled": list(self.disabled)}


def item_table(ds) -> dict:
    """Per product arrays the features need, computed once per dataset (``ds.derived``):
    ``dense`` the product columns of the matrix side by side, float32 (pop_log, last_days_log,
    age_days_log, price_log, price_missing: one gather a request), ``affinity`` hour x product
    (float32), ``price`` (float64, NaN when unknown), ``price1`` (price + 1, 1 when unknown),
    ``cat`` category codes (-1: none)."""
    def build(ds):
        n = ds.n_items
        pref = ds.fb_kind <= sig.REVIEW
        cnt = np.bincount(ds.fb_item[pref], minlength=n).astype(np.float64)
        last = np.zeros(n, np.int64)
        if len(ds.fb_ts):
            np.maximum.at(last, ds.fb_item, ds.fb_ts)
        clock = ds.clock_ms or (int(ds.fb_ts.max()) if len(ds.fb_ts) else 0)
        last_days = np.where(last > 0, (clock - last) / DAY, 365.0)
        created = ds.created_at.astype(np.float64)
        age = np.where(created > 0, (clock - created) / DAY, 365.0)
        hours = np.zeros((n, 24), np.float32)
        if len(ds.fb_item):
            np.add.at(hours, (ds.fb_item, ds.fb_hour.astype(np.int64) % 24), 1.0)
        glob = hours.sum(axis=0) + 1.0
        glob = glob / glob.sum()
        window = np.zeros((24, 24), np.float32)
        for h in range(24):
            for d in (-2, -1, 0, 1, 2):
                window[(h + d) % 24, h] = 1.0
        near = hours @ window                                   # item x hour: interactions within +-2 h
        share = (near + 5 * (glob @ window)) / (hours.sum(axis=1, keepdims=True) + 5)
        affinity = np.log(share / (glob @ window)).astype(np.float32)
        price = ds.price.astype(np.float64)
        dense = np.column_stack([np.log1p(cnt), np.log1p(np.maximum(last_days, 0)), np.log1p(np.maximum(age, 0)),
                                 np.where(np.isnan(price), 0, np.log1p(np.nan_to_num(price))), np.isnan(price)])
        return {"dense": dense.astype(np.float32), "affinity": np.ascontiguousarray(affinity.T), "price": price,
                "price1": np.nan_to_num(price) + 1, "cat": ds.category_code}
    return ds.derived("ranker_items", build)


def _referrer_kind(ref: str | None) -> int:
    if not ref:
        return -1
    r = ref.lower()
    if any(s in r for s in _SEARCH):
        return 0
    if any(s in r for s in _SOCIAL):
        return 1
    return 2


def _lookups(tables: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several per-candidate look-ups in small tables, in one search. For each table
    (keys >= -1, values, probes >= -1; the same number of probes in each): each probe's value as
    a dict built from zip(keys, values) in order gives it (the last of equal keys wins), 0.0 when
    absent, and whether it is a key. Returns (len(tables) x probes) float64 values and bool
    found; keys not all empty."""
    offs = np.arange(len(tables), dtype=np.int64) << 32     # table g's numbers in a range of their own
    keys = np.concatenate([k for k, _, _ in tables], dtype=np.int64) + np.repeat(offs, [len(k) for k, _, _ in tables])
    probes = (np.concatenate([p for _, _, p in tables], dtype=np.int64).reshape(len(tables), -1) + offs[:, None]).ravel()
    order = np.argsort(keys, kind="stable")
    pos = order[np.searchsorted(keys[order], probes, side="right") - 1]   # -1: the largest key, not a match
    found = keys[pos] == probes
    values = np.where(found, np.concatenate([v for _, v, _ in tables], dtype=np.float64)[pos], 0.0)
    return values.reshape(len(tables), -1), found.reshape(len(tables), -1)


def _keys_values(d: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.fromiter(d, np.int64, len(d)), np.fromiter(d.values(), np.float64, len(d))


def features(space: FeatureSpace, model, ctx, cands) -> np.ndarray:
    """Feature matrix (len(cands.items) x space.width), float32, for a ``CandidateSet``.

    A request ranks one pool with it (``ranker.ranked_order``), so it is written for ~150 rows
    and few numpy steps: the request's constants as one row copied to every candidate, one
    gather of the product columns, the per-candidate look-ups (seed categories, recent
    engagement, purchases) in one search (``_lookups``)."""
    ds = model.ds
    items = np.asarray(cands.items, np.int64)
    n, S = len(items), len(space.sources)
    b = 2 * S
    # the request's constants: visit time, device, referrer, visitor, placement
    row = np.zeros(space.width, np.float32)
    h = ctx.hour % 24
    row[b + 15] = np.sin(2 * np.pi * h / 24)
    row[b + 16] = np.cos(2 * np.pi * h / 24)
    row[b + 17] = ctx.weekday >= 5
    dev = getattr(ctx, "device", None)
    if dev in DEVICES:
        row[b + 19 + DEVICES.index(dev)] = 1
    rk = _referrer_kind(getattr(ctx, "referrer", None))
    if rk >= 0:
        row[b + 22 + rk] = 1
    if ctx.person >= 0:
        row[b + 25] = 1
        row[b + 26] = np.log1p(ds.R.indptr[ctx.person + 1] - ds.R.indptr[ctx.person]) if ctx.person < ds.R.shape[0] else 0
    seg = ((ctx.profile or {}).get("segment") or "").lower()
    if seg:
        row[b + 27 + (SEGMENTS.index(seg) if seg in SEGMENTS else 3)] = 1
    if ctx.placement in space.placements:
        row[b + space.n_base + space.placements.index(ctx.placement)] = 1
    X = np.empty((n, space.width), np.float32)
    X[:] = row
    recip = (1.0 / np.arange(1, n + 1)).astype(np.float32)    # 1 / (1 + rank)
    pairs = {}                                                # space column -> cands column (the last wins)
    for k, name in enumerate(cands.sources):
        j = space.col.get(name)
        if j is not None:
            pairs[j] = k
    if pairs and n:   # a source the pool lacks has score 0 and rrank 0
        js = np.fromiter(pairs, np.int64, len(pairs))
        sc = cands.per_source[:, np.fromiter(pairs.values(), np.int64, len(pairs))].astype(np.float32, copy=False)
        X[:, js] = sc
        ranks = np.empty(sc.shape, np.float32)
        ranks[np.argsort(-sc, axis=0, kind="stable"), np.arange(len(js))] = recip[:, None]
        X[:, S + js] = np.where(sc > 0, ranks, 0)
    blend = np.asarray(cands.score, np.float32)
    top = float(blend.max()) if n else 1.0
    X[:, b] = blend / (top if top > 0 else 1.0)
    X[np.argsort(-blend, kind="stable"), b + 1] = recip
    if cands.per_source.size:
        X[:, b + 2] = (cands.per_source > 0).sum(axis=1)
    t = item_table(ds)
    X[:, b + 3:b + 8] = t["dense"][items]
    X[:, b + 18] = t["affinity"][h][items]
    seeds = ctx.seed_items()
    seed_idx = np.array([s for s, _ in seeds], np.int64)
    if len(seed_idx):
        sp_ = sorted(p for p in t["price"][seed_idx].tolist() if p == p)   # known prices (NaN != NaN)
        if sp_:
            m = len(sp_) // 2
            med = sp_[m] if len(sp_) % 2 else (sp_[m - 1] + sp_[m]) / 2     # np.median, exactly
            X[:, b + 8] = np.where(X[:, b + 7] > 0, 0, np.log(  # b + 7: price unknown
                t["price1"][items] / (med + 1)))
    cat = t["cat"][items]
    if ctx.item >= 0:
        c0 = t["cat"][ctx.item]
        X[:, b + 9] = (cat == c0) & (c0 >= 0)
    if ctx.category:
        in_cat = ds.category_items(ctx.category)   # sorted
        if len(in_cat):
            X[:, b + 11] = in_cat.take(np.searchsorted(in_cat, items), mode="clip") == items
    tables, at = [], {}   # the look-ups, and which table is which
    seed_cats = [c for c in t["cat"][seed_idx].tolist() if c >= 0]
    if seed_cats:
        at["seed_share"] = len(tables)
        count: dict[int, int] = {}
        for c in seed_cats:
            count[c] = count.get(c, 0) + 1
        tables.append((*_keys_values({c: k / len(seed_cats) for c, k in count.items()}), cat))
    if ctx.recent:
        own: dict[int, float] = {}
        catw: dict[int, float] = {}
        rec = [(r.item, r.weight) for r in ctx.recent if r.item >= 0]
        for (i, w), c in zip(rec, t["cat"][[i for i, _ in rec]].tolist()):
            own[i] = own.get(i, 0.0) + max(w, 0.0)
            if c >= 0:
                catw[c] = max(catw.get(c, 0.0), w)
        if catw:
            at["catw"] = len(tables)
            tables.append((*_keys_values(catw), cat))
        if own:
            at["own"] = len(tables)
            tables.append((*_keys_values(own), items))
    if 0 <= ctx.person < ds.P.shape[0]:
        P = ds.P
        a0, a1 = P.indptr[ctx.person], P.indptr[ctx.person + 1]
        if a1 > a0:
            at["orders"] = len(tables)
            tables.append((P.indices[a0:a1], P.data[a0:a1], items))
    if ctx.bought:   # {item: last purchase ts}
        index = ds.item_index.get   # (ds.item, without a call per product)
        at["bought"] = len(tables)
        tables.append((*_keys_values({index(p, -1): ts for p, ts in ctx.bought.items()}), items))
    if tables:
        values, found = _lookups(tables)
        if "seed_share" in at:
            X[:, b + 10] = values[at["seed_share"]]
        if "catw" in at:
            X[:, b + 12] = values[at["catw"]]
        if "own" in at:
            X[:, b + 13] = values[at["own"]]
        if "orders" in at:
            X[:, b + 31] = np.log1p(values[at["orders"]])
        if "bought" in at:
            f = found[at["bought"]]
            X[:, b + 14] = f
            now = max(ctx.clock_ms, ctx.now_ms)
            X[f, b + 32] = np.log1p(np.maximum(now - values[at["bought"]][f], 0) / DAY)
    if len(space.off):
        X[:, space.off] = 0  # ablations: features switched off (``FeatureSpace.disabled``)
    return X
