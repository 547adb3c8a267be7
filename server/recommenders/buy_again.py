"""Buy it again: what this person bought before, for products people do re-buy.

Fit: per product, the share of its buyers who bought it in two or more orders (smoothed:
(repeaters + 1) / (buyers + 4)). Request: the person's purchases (live from the shard,
``ctx.bought``, plus the model's purchase matrix) scored by that rate x recency.
"""
from __future__ import annotations

import numpy as np

from .base import Candidates, Recommender
from .registry import register


@register("buy_again", context=("person",), description="products you bought before and may need again")
class BuyAgain(Recommender):
    def fit(self, ds):
        P = ds.P
        buyers = np.asarray((P > 0).sum(axis=0)).ravel()
        repeat = np.asarray((P > 1).sum(axis=0)).ravel()
        return ((repeat + 1.0) / (buyers + 4.0)).astype(np.float32)

    def recommend(self, model, ds, ctx, k):
        last: dict[int, int] = {}
        for pid, ts in ctx.bought.items():
            i = ds.item(pid)
            if i >= 0:
                last[i] = max(last.get(i, 0), ts)
        if ctx.person >= 0 and ds.P.shape[0] > ctx.person:
            row = ds.P.getrow(ctx.person)
            for i in row.indices:
                last.setdefault(int(i), 0)
        if not last:
            return Candidates.empty()
        clock = max([ctx.clock_ms] + list(last.values()))
        scores = {}
        for i, ts in last.items():
            age_days = (clock - ts) / 86_400_000 if ts else 365.0
            scores[i] = float(model[i]) * (0.5 ** (age_days / 90.0) + 0.1)
        return Candidates.from_pairs(scores, k, "buy it again")
