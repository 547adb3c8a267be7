"""Real-time personal: the neighbours of what this session engaged with just now.

The session's items come from the shard at request time (``ctx.recent``, read by serving), so
an event posted a moment ago shapes the very next request, whichever worker stored it. Each
recent item weighs by its engagement weight and recency rank; its neighbours come from co-view
(substitutes within sessions) and item-CF (long-term taste), blended 60/40: one
``neighbour_top`` kernel call (``kernels/sums.py``, described by ``query`` as a ``TableQuery``)
sums both tables, mixes them in float32 and picks the best with each one's closest seed (by
co-view, else by item-CF), exactly as the numpy code before it did
(``tests/recommenders/test_sum_kernels.py`` keeps it as the reference).
"""
from __future__ import annotations

import numpy as np

from ._common import coview_neighbours, itemcf_neighbours, seed_vectors
from ._tables import NO_DROP, NOTHING, QuerySpec, query_of
from .kernels.seeds import walk_code
from .kernels.sums import NO_MORE
from .base import Recommender, has_session
from .registry import register

MIX = (0.6, 0.4)     # co-view, item-CF (float32 arithmetic: a Python float times a float32 array)
REASON = "because you viewed {}"


@register("realtime_personal", context=("session",), description="because you just viewed these products")
class RealtimePersonal(Recommender):
    def fit(self, ds):
        return coview_neighbours(ds), itemcf_neighbours(ds)

    def cache_key(self, ctx):   # (``session_items(8)``: the request's memoised tuple, not a copy)
        return ctx._session(8, False), ctx.item

    def recommend(self, model, ds, ctx, k):
        return self.query(model, ds, ctx, k).answer(k, ds)

    def applicable(self, ctx):   # (its one need, ``ctx.has("session")``, without the loop over needs)
        return has_session(ctx.recent)

    def query(self, model, ds, ctx, k):
        """Both tables mixed, the session's items as seeds, the current product left out."""
        coview, itemcf = model
        v = ctx.session_vectors(8)
        if v.low >= 0 and v.end <= len(coview.idx) and v.positive:   # (``v.fits``, inline)
            s, w = v.items, v.weights
        else:   # only the session's items in range with weight > 0 (both tables span the dataset's items)
            s, w = seed_vectors([p for p in v.pairs() if 0 <= p[0] < len(coview.idx) and p[1] > 0])
        if not len(s) or k <= 0:
            return NOTHING
        drop = np.array((ctx.item,), np.int64) if ctx.item >= 0 else NO_DROP
        return query_of((coview, itemcf, MIX[0], MIX[1], s, w, *NO_MORE, drop, REASON, coview.reason_texts(REASON)))

    def query_spec(self, model):
        """``query`` as a ``QuerySpec``: the session's 8 items walked, the current product dropped."""
        coview, itemcf = model
        return QuerySpec(coview, walk_code(8, page=False, drop=True), REASON, coview.reason_texts(REASON), itemcf, MIX)
