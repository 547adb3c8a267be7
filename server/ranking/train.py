"""Training the learned ranker of one tenant from its own log (``train_ranker``).

1. The cut: the newest ``recent_share`` of the tenant's feedback (by time) is where training
   queries come from; ``history.truncate`` gives the data before the cut, and the candidate
   recommenders of the ranked placements are fitted on it alone (no leakage, see history.py).
2. Queries after the cut, each a request the server would have answered, with its truth:
   - next item (placement ``detail_similar``): in a session, after each viewed product, the next;
   - next basket (``main``): an order of a person who bought before, its products;
   - bought together (``cart``, ``detail_complements``, ``checkout``, ``purchase``): one product of
     an order given (cart / order), the rest;
   - shown recommendations (once the widget has logged ``rec_impression`` / ``rec_click``): the
     products shown in one served list, the clicked ones positive (a shown product bought
     within a day: positive with twice a click's weight), each weighted by the inverse
     propensity of its position, 1 / P(seen | position) with P = (1 + position)^-eta (eta = 1,
     the usual position-bias prior; capped at 10), so a click at position 8 counts more than
     one at position 0, undoing the bias of the old ranking that put it there.
   The live context of each query (recent products with their engagement weights, purchases,
   visit time) is built from the log before the query's time, as serving reads it.
3. Candidates: the placement's default sources on the past model (``pool.candidate_set``),
   the blend's top ``POOL`` kept; features (``features.py``); queries without a positive in
   the pool teach nothing and are left out.
4. By time: the oldest 65 % train, the next 15 % validate (early stopping), the newest 20 % are
   the guard slice. The MLP (``mlp.py``) is trained; then on the guard slice, per placement,
   NDCG@20 of the pool ordered by the ranker vs by the blend: the ranker serves a placement only
   if it is better there (and the slice has at least ``MIN_GUARD`` queries); else the blend serves.
"""
from __future__ import annotations

import math
import random
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..placements.defaults import DEFAULT_STRATEGIES
from ..recommenders.base import Context, Recent
from ..recommenders.model import Model
from ..signals import weights as sig
from .features import FeatureSpace, features
from .history import truncate
from .mlp import MLP
from .pool import candidate_set, with_items

FAMILY = {"detail_similar": "next_item", "main": "next_basket", "cart": "bought_together",
          "detail_complements": "bought_together", "checkout": "bought_together", "purchase": "bought_together"}
POOL = 150
K = 20
MIN_GUARD = 30
PURCHASE_WEIGHT = 2.0   # a purchase of a shown product, relative to a click
RECENT = 60
# recommenders whose fit reads only the catalog (text, images), never the feedback: the past
# model reuses the serving model's fit (no leakage, and the costliest fits are not repeated)
CATALOG_ONLY = {"content_based", "similar_image", "new_arrivals"}


@dataclass
class RankerState:
    version: str
    space: FeatureSpace
    mlp: MLP
    placements: list[str]                 # placements the ranker was trained for
    serving: list[str]                    # placements where it passed the guard
    guard: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    trained_at: float = 0.0

    def report(self) -> dict:
        return {"version": self.version, "placements": self.placements, "serving": self.serving,
                "guard": self.guard, **self.info}


def ipw_weight(position: int | None, eta: float = 1.0, cap: float = 10.0) -> float:
    """1 / P(seen | position), P = (1 + position)^-eta, capped."""
    if position is None or position < 0:
        return 1.0
    return float(min((1.0 + position) ** eta, cap))


def ndcg_at(order_items: np.ndarray, weights: dict[int, float], k: int = K) -> float:
    rel = [weights.get(int(i), 0.0) > 0 for i in order_items[:k]]
    dcg = sum(1.0 / math.log2(p + 2) for p, r in enumerate(rel) if r)
    n_rel = sum(1 for w in weights.values() if w > 0)
    idcg = sum(1.0 / math.log2(p + 2) for p in range(min(n_rel, k)))
    return dcg / idcg if idcg else 0.0


# -- the context of a past request ---------------------------------------------------------
class _History:
    """Per person, their feedback rows sorted by time, to build live contexts of past requests."""

    def __init__(self, ds):
        self.ds = ds
        order = np.lexsort((ds.fb_ts, ds.fb_person))
        self.order = order
        p = ds.fb_person[order]
        self.start = np.searchsorted(p, np.arange(ds.n_persons + 1))

    def rows(self, person: int, before: int) -> np.ndarray:
        if person < 0:
            return np.zeros(0, np.int64)
        r = self.order[self.start[person]:self.start[person + 1]]
        ts = self.ds.fb_ts[r]
        return r[:np.searchsorted(ts, before)][-RECENT:]

    def context(self, person: int, before: int, session: int = -1, page: str = "main") -> Context:
        ds = self.ds
        recent, bought = [], {}
        for r in self.rows(person, before).tolist():
            kind = int(ds.fb_kind[r])
            if kind not in (sig.VIEW, sig.CART, sig.PURCHASE, sig.REVIEW, sig.CLICK):
                continue
            pid = ds.item_ids[ds.fb_item[r]]
            if kind == sig.PURCHASE:
                bought[pid] = max(bought.get(pid, 0), int(ds.fb_ts[r]))
            recent.append(Recent(pid, int(ds.fb_item[r]), kind, int(ds.fb_ts[r]), float(ds.fb_weight[r]),
                                 session >= 0 and int(ds.fb_session[r]) == session))
        recent.sort(key=lambda x: -x.ts)
        hour, weekday = ds.local.at(before)
        profile = None
        if 0 <= person < ds.n_persons and ds.person_is_user[person] and (
                ds.profile_gender[person] or ds.profile_age_band[person] or ds.profile_interests[person]):
            profile = {"gender": ds.profile_gender[person], "age_band": ds.profile_age_band[person],
                       "interests": ds.profile_interests[person], "segment": ds.profile_segment[person]}
        return Context(tenant="", page_type=page, recent=recent, bought=bought, person=person, now_ms=before,
                       clock_ms=before, hour=hour, weekday=weekday, profile=profile,
                       user=ds.person_user[person] if 0 <= person < ds.n_persons else None)


# -- queries -------------------------------------------------------------------------------
@dataclass
class Query:
    ts: int
    placement: str
    ctx: Context
    truth: dict[int, float]               # item -> positive weight
    restrict: np.ndarray | None = None    # shown products (click queries): rank among these only


def log_queries(ds, cut: int, hist: _History, per_family: int, rng: random.Random,
                family: dict[str, str] | None = None) -> list[Query]:
    family = family or FAMILY
    baskets = sorted(p for p, f in family.items() if f == "next_basket")
    complements = sorted(p for p, f in family.items() if f == "bought_together")
    next_items = sorted(p for p, f in family.items() if f == "next_item")
    out: list[Query] = []
    # orders after the cut
    after = np.flatnonzero(ds.basket_ts >= cut)
    had_before = set(ds.basket_person[ds.basket_ts < cut].tolist())
    nb, bt = [], []
    for b in after.tolist():
        items = ds.B.indices[ds.B.indptr[b]:ds.B.indptr[b + 1]]
        if not len(items):
            continue
        p = int(ds.basket_person[b])
        if p in had_before:
            nb.append(b)
        if len(items) >= 2:
            bt.append(b)
    for b in rng.sample(nb, min(per_family, len(nb)) if baskets else 0):
        items = ds.B.indices[ds.B.indptr[b]:ds.B.indptr[b + 1]]
        ts = int(ds.basket_ts[b])
        ctx = hist.context(int(ds.basket_person[b]), ts, page="main")
        out.append(Query(ts, rng.choice(baskets), ctx, {int(i): 1.0 for i in items}))
    for b in rng.sample(bt, min(per_family, len(bt)) if complements else 0):
        items = ds.B.indices[ds.B.indptr[b]:ds.B.indptr[b + 1]].tolist()
        ts = int(ds.basket_ts[b])
        given = rng.choice(items)
        placement = rng.choice(complements)
        ctx = hist.context(-1, ts, page=placement)
        ctx.recent, ctx.bought = [], {}
        ctx.product, ctx.item = ds.item_ids[given], given
        if placement in ("checkout", "purchase"):
            ctx.order, ctx.order_items = [ctx.product], np.array([given], np.int32)
        else:
            ctx.cart, ctx.cart_items = [ctx.product], np.array([given], np.int32)
        out.append(Query(ts, placement, ctx, {int(i): 1.0 for i in items if i != given}))
    # sessions after the cut: the next viewed product
    vm = np.flatnonzero((ds.fb_kind == sig.VIEW) | (ds.fb_kind == sig.CART))
    if len(vm) and next_items:
        sess = ds.fb_session[vm]
        first = np.full(ds.n_sessions, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first, sess, ds.fb_ts[vm])
        keep = vm[first[sess] >= cut]
        order = keep[np.lexsort((ds.fb_ts[keep], ds.fb_session[keep]))]
        cand = []
        s_arr = ds.fb_session[order]
        bounds = np.flatnonzero(np.diff(s_arr)) + 1
        for seg in np.split(order, bounds):
            seq = []
            for r in seg.tolist():
                if not seq or ds.fb_item[seq[-1]] != ds.fb_item[r]:
                    seq.append(r)
            for t in range(1, len(seq)):
                cand.append((seq, t))
        for seq, t in rng.sample(cand, min(per_family, len(cand))):
            cur, nxt = seq[t - 1], seq[t]
            ts = int(ds.fb_ts[nxt])
            person = int(ds.fb_person[cur])
            ctx = hist.context(person, int(ds.fb_ts[cur]) + 1, session=int(ds.fb_session[cur]), page="detail")
            ctx.item = int(ds.fb_item[cur])
            ctx.product = ds.item_ids[ctx.item]
            out.append(Query(ts, rng.choice(next_items), ctx, {int(ds.fb_item[nxt]): 1.0}))
    return out


def click_queries(conn: sqlite3.Connection, ds, cut: int, hist: _History, limit: int, eta: float = 1.0,
                  strategies: dict | None = None) -> list[Query]:
    """Served lists after the cut with their impressions and clicks (see the module docstring)."""
    strategies = strategies or DEFAULT_STRATEGIES
    try:
        rows = conn.execute(
            "SELECT e.type, e.rec_id, e.product, json_extract(e.data,'$.position'), e.ts, s.placement, s.visitor, s.session, s.user_id"
            " FROM events e JOIN rec_served s ON s.rec_id = e.rec_id"
            " WHERE e.type IN ('rec_impression','rec_click') AND e.ts >= ? ORDER BY e.ts LIMIT ?", (cut, limit * 40)).fetchall()
    except sqlite3.Error:
        return []
    lists: dict[str, dict] = {}
    for etype, rec_id, product, pos, ts, placement, visitor, session, user in rows:
        i = ds.item(product)
        if i < 0:
            continue
        q = lists.setdefault(rec_id, {"ts": ts, "placement": placement, "visitor": visitor, "session": session,
                                      "user": user, "shown": {}, "clicked": set()})
        q["ts"] = min(q["ts"], ts)
        if etype == "rec_impression":
            q["shown"][i] = pos if pos is not None else q["shown"].get(i)
        else:
            q["clicked"].add(i)
            q["shown"].setdefault(i, pos)
    out = []
    for q in lists.values():
        if len(q["shown"]) < 2 or q["placement"] not in strategies:
            continue
        bought = _bought_after(conn, ds, q["visitor"], q["ts"], set(q["shown"]))
        if not q["clicked"] and not bought:
            continue
        person = ds.person(q["user"], q["visitor"])
        ctx = hist.context(person, q["ts"], session=ds.session_index.get(q["session"], -1), page=q["placement"])
        last = next((r for r in ctx.recent if r.in_session and r.kind == sig.VIEW and r.item >= 0), None)
        if last is not None and q["placement"].startswith("detail"):
            ctx.item, ctx.product = last.item, last.product
        truth = {i: ipw_weight(q["shown"].get(i), eta) for i in q["clicked"]}
        for i in bought:  # a shown product bought within a day counts twice a click
            truth[i] = truth.get(i, 0.0) + PURCHASE_WEIGHT * ipw_weight(q["shown"].get(i), eta)
        out.append(Query(q["ts"], q["placement"], ctx, truth, np.array(sorted(q["shown"]), np.int32)))
        if len(out) >= limit:
            break
    return out


def _bought_after(conn, ds, visitor, ts: int, shown: set[int], within_ms: int = 86_400_000) -> set[int]:
    """Shown products this visitor bought within a day after the list was shown."""
    if not visitor:
        return set()
    rows = conn.execute("SELECT product FROM order_lines WHERE visitor=? AND ts >= ? AND ts < ?",
                        (visitor, ts, ts + within_ms)).fetchall()
    return {ds.item(p) for (p,) in rows} & shown


# -- training ----------------------------------------------------------------------------
def _tensors(space, model, queries, strategies) -> tuple:
    Xs, ys, keep = [], [], []
    for n, q in enumerate(queries):
        q.ctx.placement = q.placement
        cs = candidate_set(model, q.ctx, strategies[q.placement], K * 3 + 20)
        if q.restrict is not None:
            cs = with_items(cs, q.restrict, space.sources)
            idx = np.flatnonzero(np.isin(cs.items, q.restrict))
            idx = idx[np.argsort(-cs.score[idx], kind="stable")]
        else:
            if cs is None:
                continue
            idx = np.argsort(-cs.score, kind="stable")[:POOL]
        if not len(idx):
            continue
        sub = type(cs)(cs.items[idx], cs.score[idx], cs.per_source[idx], cs.sources)
        y = np.array([q.truth.get(int(i), 0.0) for i in sub.items], np.float32)
        if not (y > 0).any():
            continue
        Xs.append(features(space, model, q.ctx, sub))
        ys.append(y)
        keep.append(n)
    if not Xs:
        return np.zeros((0, 1, space.width), np.float32), np.zeros((0, 1), bool), np.zeros((0, 1), np.float32), []
    P = max(len(y) for y in ys)
    X = np.zeros((len(Xs), P, space.width), np.float32)
    M = np.zeros((len(Xs), P), bool)
    Y = np.zeros((len(Xs), P), np.float32)
    for k, (x, y) in enumerate(zip(Xs, ys)):
        X[k, :len(y)] = x
        M[k, :len(y)] = True
        Y[k, :len(y)] = y
    return X, M, Y, keep


def _guard(mlp, X, M, Y, placements_of: list[str]) -> dict:
    per: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for q in range(len(X)):
        n = int(M[q].sum())
        x, y = X[q, :n], Y[q, :n]
        w = {k: float(v) for k, v in enumerate(y) if v > 0}
        b_order = np.arange(n)  # rows are in blend order (pool sorted by the blend score)
        r_order = np.argsort(-mlp.score(x), kind="stable")
        g = per[placements_of[q]]
        g[0] += 1
        g[1] += ndcg_at(b_order, w)
        g[2] += ndcg_at(r_order, w)
    return {p: {"queries": g[0], "blend_ndcg": round(g[1] / g[0], 4), "ranker_ndcg": round(g[2] / g[0], 4),
                "passes": g[0] >= MIN_GUARD and g[2] > g[1]} for p, g in per.items() if g[0]}


_VERSIONS: dict[str, int] = defaultdict(int)


def train_ranker(model, conn: sqlite3.Connection | None = None, tenant: str = "", max_queries: int = 800,
                 recent_share: float = 0.2, seed: int = 0, progress=None, strategies: dict | None = None,
                 time_budget_s: float = 20.0, family: dict[str, str] | None = None,
                 disabled: tuple[str, ...] = ()) -> RankerState:
    t0 = time.perf_counter()
    note = progress or (lambda m: None)
    ds = model.ds
    strategies = strategies or DEFAULT_STRATEGIES
    rng = random.Random(seed)
    if ds.n_feedback < 50:
        raise ValueError("too little data to train a ranker (fewer than 50 interactions)")
    cut = int(np.quantile(ds.fb_ts, 1 - recent_share))
    past = truncate(ds, cut)
    family = family or FAMILY
    needed = sorted({s["recommender"] for p in family for s in strategies[p].get("sources", ())} & set(model.fitted))
    fitted, inst, fit_s = {}, {}, {}
    for name in needed:
        t1 = time.perf_counter()
        if name in CATALOG_ONLY:
            fitted[name], inst[name] = model.fitted[name], model.recommenders[name]
            continue
        try:
            rec = type(model.recommenders[name])()
            fitted[name] = rec.fit(past)
            inst[name] = rec
        except Exception:
            pass
        fit_s[name] = round(time.perf_counter() - t1, 3)
    past_model = Model(ds=past, fitted=fitted, recommenders=inst)
    t_fit = time.perf_counter() - t0
    hist = _History(ds)
    queries = log_queries(ds, cut, hist, max_queries // 2, rng, family)
    n_click = 0
    if conn is not None:
        cq = click_queries(conn, ds, cut, hist, max_queries, strategies=strategies)
        n_click = len(cq)
        queries += cq
    queries.sort(key=lambda q: q.ts)
    placements = sorted({q.placement for q in queries})
    space = FeatureSpace(sorted(fitted), placements, disabled)
    t2 = time.perf_counter()
    X, M, Y, keep = _tensors(space, past_model, queries, strategies)
    t_feat = time.perf_counter() - t2
    n = len(X)
    note(f"ranker: {len(queries)} queries after {time.strftime('%Y-%m-%d', time.gmtime(cut / 1000))}, "
         f"{n} with a positive in the pool; past fit {t_fit:.1f} s, features {t_feat:.1f} s")
    if n < 30:
        raise ValueError(f"too few training queries with a positive in the candidate pool ({n})")
    a, b = int(n * 0.65), int(n * 0.80)
    mlp = MLP(space.width, seed=seed)
    fit_info = mlp.fit(X[:a], M[:a], Y[:a], X[a:b], M[a:b], Y[a:b], seed=seed,
                       time_budget_s=max(time_budget_s - (time.perf_counter() - t0), 1.0))
    pl = [queries[k].placement for k in keep]
    guard = _guard(mlp, X[b:], M[b:], Y[b:], pl[b:])
    serving = sorted(p for p, g in guard.items() if g["passes"])
    _VERSIONS[tenant] += 1
    version = f"{tenant or 'tenant'}-{_VERSIONS[tenant]}-{int(ds.clock_ms // 1000)}"
    info = {"train_queries": a, "val_queries": b - a, "guard_queries": n - b, "click_queries": n_click,
            "queries_built": len(queries), "pool_hit_share": round(n / max(len(queries), 1), 3),
            "epochs": fit_info["epochs"], "best_epoch": fit_info["best_epoch"], "val_loss": fit_info["val_loss"],
            "cut_ms": cut, "past_fit_seconds": fit_s, "seconds": round(time.perf_counter() - t0, 3),
            "features": space.names}
    return RankerState(version, space, mlp, placements, serving, guard, info, time.time())
