"""Search-keyword: products for a search query, by text AND by what searchers of that query went
on to do.

Text: the query against the shared product TF-IDF (words + character n-grams, so Korean
particles and partial words match). Behaviour: every ``search`` event is followed, in the same
session, by the product views, carts and purchases up to the session's next search (at most
``FOLLOW_MS``, 30 minutes); each adds its signal weight (an engaged view ~1, cart 3, purchase
5) to that (query, product) pair. Queries are keyed case- and width-folded with spaces
collapsed; a query never seen before borrows the behaviour of the most similar known queries
(character n-gram cosine >= 0.5), so "가디건" uses what searchers of "니트 가디건" chose.

Score = 0.5 x text (scaled to its best) + 0.5 x behaviour (scaled to its best); with no behaviour
for the query, text alone; then x (1 + 0.2 x log-popularity scaled to [0, 1]), so among equally
good matches what sells comes first (a product matching nothing still scores 0). Reasons: "chosen by people who searched 'q'" when behaviour leads,
else "matches 'q'".
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from ._text import search_index, top_positions
from .base import Candidates, Recommender
from .kernels.text import TfidfIndex, normalize
from .registry import register

FOLLOW_MS = 30 * 60_000
TOP_PER_QUERY = 50
SIMILAR_QUERY = 0.5
POPULARITY_BOOST = 0.2


def query_key(q: str) -> str:
    return " ".join(normalize(q).split())


def query_followups(ds) -> tuple[list[str], list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(query keys, items per query, weights per query, searches per query)."""
    if not len(ds.search_query) or not ds.n_feedback:
        return [], [], [], np.zeros(0, np.int64)
    m = np.isin(ds.fb_kind, (VIEW, CART, PURCHASE)) & (ds.fb_weight > 0)
    f_sess, f_ts, f_item, f_w = ds.fb_session[m], ds.fb_ts[m], ds.fb_item[m], ds.fb_weight[m]
    order = np.lexsort((f_ts, f_sess))
    f_sess, f_ts, f_item, f_w = f_sess[order], f_ts[order], f_item[order], f_w[order]
    s_order = np.lexsort((ds.search_ts, ds.search_session))
    s_sess, s_ts = ds.search_session[s_order], ds.search_ts[s_order]
    keys = [query_key(ds.search_query[j]) for j in s_order]
    acc: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    count: dict[str, int] = defaultdict(int)
    for n, (sess, ts, key) in enumerate(zip(s_sess.tolist(), s_ts.tolist(), keys)):
        if not key:
            continue
        count[key] += 1
        end = ts + FOLLOW_MS
        if n + 1 < len(s_sess) and s_sess[n + 1] == sess:
            end = min(end, int(s_ts[n + 1]))
        a = np.searchsorted(f_sess, sess, "left")
        b = np.searchsorted(f_sess, sess, "right")
        if a == b:
            continue
        lo = a + np.searchsorted(f_ts[a:b], ts, "left")
        hi = a + np.searchsorted(f_ts[a:b], end, "left") if end > ts else lo
        d = acc[key]
        for i, w in zip(f_item[lo:hi].tolist(), f_w[lo:hi].tolist()):
            d[i] += w
    qkeys = sorted(count)
    items, weights = [], []
    for key in qkeys:
        d = acc.get(key, {})
        it = np.fromiter(d.keys(), np.int32, len(d))
        w = np.fromiter(d.values(), np.float32, len(d))
        pos = top_positions(w, TOP_PER_QUERY, it)
        items.append(it[pos])
        weights.append(w[pos])
    return qkeys, items, weights, np.array([count[q] for q in qkeys], np.int64)


def popularity_boost(ds, strength: float = POPULARITY_BOOST) -> np.ndarray:
    """1 + strength x log-popularity scaled to [0, 1] (last 90 days, all time when empty)."""
    pop = popularity(ds, (VIEW, CART, PURCHASE), days=90).astype(np.float64)
    if pop.max(initial=0) <= 0:
        pop = popularity(ds, (VIEW, CART, PURCHASE)).astype(np.float64)
    top = np.log1p(pop.max(initial=0))
    return (1.0 + strength * (np.log1p(pop) / top if top > 0 else pop)).astype(np.float32)


class QueryBehaviour:
    def __init__(self, ds):
        self.keys, self.items, self.weights, self.counts = query_followups(ds)
        self.pos = {q: n for n, q in enumerate(self.keys)}
        self.n_items = ds.n_items
        self.index = TfidfIndex(word_weight=0.3).fit(self.keys) if self.keys else None

    def scores(self, query: str) -> np.ndarray | None:
        """Dense behaviour scores for a query (None: nothing known)."""
        key = query_key(query)
        matches: list[tuple[int, float]] = []
        if key in self.pos:
            matches.append((self.pos[key], 1.0))
        elif self.index is not None:
            idx, sims = self.index.query(key, k=3, min_score=SIMILAR_QUERY)
            matches = list(zip(idx.tolist(), sims.tolist()))
        out = None
        for q, sim in matches:
            if not len(self.items[q]):
                continue
            if out is None:
                out = np.zeros(self.n_items, np.float32)
            w = self.weights[q]
            out[self.items[q]] += sim * w / max(float(w.max()), 1e-9)
        return out


@register("search_keyword", context=("query",), description="query-aware: text match and what searchers chose")
class SearchKeyword(Recommender):
    def fit(self, ds):
        if not ds.n_items:
            return None
        return search_index(ds), QueryBehaviour(ds), popularity_boost(ds)

    def cache_key(self, ctx):
        return ctx.query

    def recommend(self, model, ds, ctx, k):
        if model is None or not (ctx.query and ctx.query.strip()):
            return Candidates.empty()
        index, behaviour, boost = model
        text = index.query_scores(ctx.query).astype(np.float32)
        tmax = float(text.max(initial=0))
        text = text / tmax if tmax > 0 else text
        beh = behaviour.scores(ctx.query)
        if beh is not None:
            bmax = float(beh.max(initial=0))
            beh = beh / bmax if bmax > 0 else beh
            total = 0.5 * text + 0.5 * beh
        else:
            total = text
        total = total * boost                      # ties among equal matches go to what sells
        if not len(total):
            return Candidates.empty()
        items = np.arange(len(total))
        pos = top_positions(total, k, items)
        if not len(pos):
            return Candidates.empty()
        q = ctx.query.strip()[:40]
        reasons = [f"chosen by people who searched '{q}'" if beh is not None and beh[i] * 0.5 > text[i] * 0.5
                   else f"matches '{q}'" for i in pos.tolist()]
        return Candidates(pos.astype(np.int32), total[pos], reasons)
