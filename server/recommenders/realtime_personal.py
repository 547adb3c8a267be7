"""Real-time personal: the neighbours of what this session engaged with just now.

The session's items come from the shard at request time (``ctx.recent``, read by serving), so
an event posted a moment ago shapes the very next request, whichever worker stored it. Each
recent item weighs by its engagement weight and recency rank; its neighbours come from co-view
(substitutes within sessions) and item-CF (long-term taste), blended 60/40.
"""
from __future__ import annotations

import numpy as np

from ._common import SeedFinder, coview_neighbours, itemcf_neighbours, seed_arrays
from .base import Candidates, Recommender
from .registry import register


@register("realtime_personal", context=("session",), description="because you just viewed these products")
class RealtimePersonal(Recommender):
    def fit(self, ds):
        return coview_neighbours(ds), itemcf_neighbours(ds)

    def cache_key(self, ctx):
        return tuple(ctx.session_items(8)), ctx.item

    def recommend(self, model, ds, ctx, k):
        coview, itemcf = model
        # the session's items in range with weight > 0 (both tables span the dataset's items), as
        # arrays once for the two tables
        seeds = [p for p in ctx.session_items(8) if 0 <= p[0] < len(coview.idx) and p[1] > 0]
        if not seeds:
            return Candidates.empty()
        drop = {ctx.item} if ctx.item >= 0 else None
        n = ds.n_items
        s, w = seed_arrays(seeds)
        a, b = coview.rows_at(s, w), itemcf.rows_at(s, w)
        total = 0.6 * a.total(n, drop).astype(np.float32) + 0.4 * b.total(n, drop).astype(np.float32)
        c = Candidates.top(total, k)
        # the closest seed by co-view, else by item-CF (session items all weigh > 0: the rows
        # are those of every seed in range)
        find = SeedFinder(a, b)
        c.reasons = lambda j: f"because you viewed {ds.label(find(j))}"
        return c
