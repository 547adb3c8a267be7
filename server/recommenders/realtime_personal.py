"""Real-time personal: the neighbours of what this session engaged with just now.

The session's items come from the shard at request time (``ctx.recent``, read by serving), so
an event posted a moment ago shapes the very next request, whichever worker stored it. Each
recent item weighs by its engagement weight and recency rank; its neighbours come from co-view
(substitutes within sessions) and item-CF (long-term taste), blended 60/40.
"""
from __future__ import annotations

import numpy as np

from ._common import coview_neighbours, itemcf_neighbours
from .base import Candidates, Recommender
from .registry import register


@register("realtime_personal", context=("session",), description="because you just viewed these products")
class RealtimePersonal(Recommender):
    def fit(self, ds):
        return coview_neighbours(ds), itemcf_neighbours(ds)

    def recommend(self, model, ds, ctx, k):
        coview, itemcf = model
        seeds = ctx.session_items(8)
        if not seeds:
            return Candidates.empty()
        drop = {ctx.item} if ctx.item >= 0 else None
        parts = [(coview.gather(seeds, drop), 0.6), (itemcf.gather(seeds, drop), 0.4)]
        items = np.concatenate([p[0][0] for p in parts])
        if len(items) == 0:
            return Candidates.empty()
        scores = np.concatenate([p[0][1] * p[1] for p in parts])
        best = np.concatenate([p[0][2] for p in parts])
        uniq, inv = np.unique(items, return_inverse=True)
        total = np.bincount(inv, weights=scores, minlength=len(uniq)).astype(np.float32)
        order = np.lexsort((-scores, inv))
        first = np.ones(len(order), bool)
        first[1:] = inv[order][1:] != inv[order][:-1]
        bmap = dict(zip(uniq.tolist(), best[order][first].tolist()))
        c = Candidates.top(total, k)
        return Candidates(uniq[c.items], c.scores, lambda j: f"because you viewed {ds.label(bmap[j])}")
