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
    """Per product arrays the features need, computed once per dataset (``ds.derived``)."""
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
        return {"pop_log": np.log1p(cnt).astype(np.float32),
                "last_days_log": np.log1p(np.maximum(last_days, 0)).astype(np.float32),
                "age_days_log": np.log1p(np.maximum(age, 0)).astype(np.float32),
                "price": price, "price_log": np.where(np.isnan(price), 0, np.log1p(np.nan_to_num(price))).astype(np.float32),
                "affinity": affinity, "cat": ds.category_code}
    return ds.derived("ranker_item_table", build)


def _referrer_kind(ref: str | None) -> int:
    if not ref:
        return -1
    r = ref.lower()
    if any(s in r for s in _SEARCH):
        return 0
    if any(s in r for s in _SOCIAL):
        return 1
    return 2


def features(space: FeatureSpace, model, ctx, cands) -> np.ndarray:
    """Feature matrix (len(cands.items) x space.width), float32, for a ``CandidateSet``."""
    ds = model.ds
    items = np.asarray(cands.items, np.int64)
    n, S = len(items), len(space.sources)
    X = np.zeros((n, space.width), np.float32)
    col = space.col
    for k, name in enumerate(cands.sources):
        j = col.get(name)
        if j is not None:
            X[:, j] = cands.per_source[:, k]
    blend = np.asarray(cands.score, np.float32)
    nsrc = (cands.per_source > 0).sum(axis=1) if cands.per_source.size else np.zeros(n)
    if n:
        sc = X[:, :S]
        order = np.argsort(-sc, axis=0, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(n)[:, None].repeat(S, 1), axis=0)
        X[:, S:2 * S] = np.where(sc > 0, 1.0 / (1.0 + ranks), 0.0)
    b = 2 * S
    top = float(blend.max()) if n else 1.0
    X[:, b] = blend / (top if top > 0 else 1.0)
    border = np.argsort(-blend, kind="stable")
    brank = np.empty(n, np.float32)
    brank[border] = np.arange(n)
    X[:, b + 1] = 1.0 / (1.0 + brank)
    X[:, b + 2] = nsrc
    t = item_table(ds)
    X[:, b + 3] = t["pop_log"][items]
    X[:, b + 4] = t["last_days_log"][items]
    X[:, b + 5] = t["age_days_log"][items]
    X[:, b + 6] = t["price_log"][items]
    price = t["price"][items]
    X[:, b + 7] = np.isnan(price)
    seeds = ctx.seed_items()
    seed_idx = np.array([s for s, _ in seeds], np.int64)
    if len(seed_idx):
        sp_ = t["price"][seed_idx]
        sp_ = sp_[~np.isnan(sp_)]
        if len(sp_):
            med = float(np.median(sp_))
            X[:, b + 8] = np.where(np.isnan(price), 0, np.log((np.nan_to_num(price) + 1) / (med + 1)))
    cat = t["cat"][items]
    if ctx.item >= 0:
        c0 = t["cat"][ctx.item]
        X[:, b + 9] = (cat == c0) & (c0 >= 0)
    if len(seed_idx):
        sc_ = t["cat"][seed_idx]
        sc_ = sc_[sc_ >= 0]
        if len(sc_):
            X[:, b + 10] = (cat[:, None] == sc_[None, :]).mean(axis=1)
    if ctx.category:
        cset = set(ds.category_items(ctx.category).tolist())
        X[:, b + 11] = [i in cset for i in items.tolist()]
    if ctx.recent:
        own: dict[int, float] = {}
        catw: dict[int, float] = {}
        for r in ctx.recent:
            if r.item < 0:
                continue
            own[r.item] = own.get(r.item, 0.0) + max(r.weight, 0.0)
            c = int(t["cat"][r.item])
            if c >= 0:
                catw[c] = max(catw.get(c, 0.0), r.weight)
        X[:, b + 12] = [catw.get(int(c), 0.0) for c in cat.tolist()]
        X[:, b + 13] = [own.get(i, 0.0) for i in items.tolist()]
    if ctx.bought:
        bought = {ds.item(p) for p in ctx.bought}
        X[:, b + 14] = [i in bought for i in items.tolist()]
    h = ctx.hour % 24
    X[:, b + 15] = np.sin(2 * np.pi * h / 24)
    X[:, b + 16] = np.cos(2 * np.pi * h / 24)
    X[:, b + 17] = ctx.weekday >= 5
    X[:, b + 18] = t["affinity"][items, h]
    dev = getattr(ctx, "device", None)
    if dev in DEVICES:
        X[:, b + 19 + DEVICES.index(dev)] = 1
    rk = _referrer_kind(getattr(ctx, "referrer", None))
    if rk >= 0:
        X[:, b + 22 + rk] = 1
    if ctx.person >= 0:
        X[:, b + 25] = 1
        X[:, b + 26] = np.log1p(ds.R.indptr[ctx.person + 1] - ds.R.indptr[ctx.person]) if ctx.person < ds.R.shape[0] else 0
    seg = ((ctx.profile or {}).get("segment") or "").lower()
    if seg:
        X[:, b + 27 + (SEGMENTS.index(seg) if seg in SEGMENTS else 3)] = 1
    if 0 <= ctx.person < ds.P.shape[0]:
        P = ds.P
        a0, a1 = P.indptr[ctx.person], P.indptr[ctx.person + 1]
        if a1 > a0:
            row = dict(zip(P.indices[a0:a1].tolist(), P.data[a0:a1].tolist()))
            X[:, b + 31] = np.log1p([row.get(i, 0.0) for i in items.tolist()])
    if ctx.bought:
        now = max(ctx.clock_ms, ctx.now_ms)
        last = {ds.item(p): ts for p, ts in ctx.bought.items()}
        X[:, b + 32] = [np.log1p(max(now - last[i], 0) / DAY) if i in last else 0.0 for i in items.tolist()]
    if ctx.placement in space.placements:
        X[:, b + space.n_base + space.placements.index(ctx.placement)] = 1
    if len(space.off):
        X[:, space.off] = 0  # ablations: features switched off (``FeatureSpace.disabled``)
    return X
