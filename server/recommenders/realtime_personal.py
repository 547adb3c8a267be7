"""Real-time personal: the neighbours of what this session engaged with just now.

The session's items come from the shard at request time (``ctx.recent``, read by serving), so
an event posted a moment ago shapes the very next request, whichever worker stored it. Each
recent item weighs by its engagement weight and recency rank; its neighbours come from co-view
(substitutes within sessions) and item-CF (long-term taste), blended 60/40.
"""
from __future__ import annotations

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
        acc: dict[int, list] = {}
        for table, share in ((coview, 0.6), (itemcf, 0.4)):
            for j, (v, s) in table.contributions(seeds).items():
                a = acc.get(j)
                if a is None:
                    acc[j] = [v * share, s]
                else:
                    a[0] += v * share
        for s, _ in seeds:
            acc.pop(s, None)
        if ctx.item >= 0:
            acc.pop(ctx.item, None)
        return Candidates.from_pairs({j: a[0] for j, a in acc.items()}, k,
                                     lambda j: f"because you viewed {ds.label(acc[j][1])}")
