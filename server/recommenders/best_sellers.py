"""Best sellers: most orders in the last 30 days of the tenant clock (all time, decayed, when
the month has fewer than 20 orders)."""
from __future__ import annotations

import numpy as np

from ..signals import PURCHASE
from .base import Candidates, Recommender
from .registry import register


@register("best_sellers", description="best sellers of the last 30 days")
class BestSellers(Recommender):
    def fit(self, ds):
        return Candidates.ranked(self.scores(ds))

    def scores(self, ds):
        m = ds.window(ds.fb_kind == PURCHASE, days=30)
        if m.sum() < 20:
            m = ds.fb_kind == PURCHASE
            w = ds.fb_decay[m]
        else:
            w = np.ones(int(m.sum()), np.float32)
        return np.bincount(ds.fb_item[m], weights=w, minlength=ds.n_items).astype(np.float32)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return Candidates.first(model, k, "a best seller")
