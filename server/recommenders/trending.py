"""Trending: products whose activity rises fastest (velocity), not the most popular.

Recent = weighted activity in the last 3 days of the tenant clock; baseline = daily rate over
the 28 days before, times 3. Score = (recent - expected) / sqrt(expected + 1), a Poisson-style
z-score that keeps a jump from 0 to 1 view from topping the list; only rising products count.
"""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from .base import Candidates, Recommender
from .registry import register

DAY = 86_400_000


@register("trending", description="rising fastest in the last days")
class Trending(Recommender):
    def fit(self, ds):
        return Candidates.ranked(self.scores(ds))

    def scores(self, ds, recent_days: float = 3.0, base_days: float = 28.0):
        m = np.isin(ds.fb_kind, (VIEW, CART, PURCHASE))
        ts, it, w = ds.fb_ts[m], ds.fb_item[m], np.maximum(ds.fb_weight[m], 0)
        cut = ds.clock_ms - recent_days * DAY
        rec = ts >= cut
        base = (ts < cut) & (ts >= cut - base_days * DAY)
        r = np.bincount(it[rec], weights=w[rec], minlength=ds.n_items)
        b = np.bincount(it[base], weights=w[base], minlength=ds.n_items) * (recent_days / base_days)
        z = (r - b) / np.sqrt(b + 1.0)
        return np.where(r >= 2, np.maximum(z, 0), 0).astype(np.float32)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return Candidates.first(model, k, "trending")
