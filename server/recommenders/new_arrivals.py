"""New arrivals: the newest products of the catalog (``products.created_at``), score decaying
with a two-week half-life from the newest listing."""
from __future__ import annotations

import numpy as np

from .base import Candidates, Recommender
from .registry import register


@register("new_arrivals", description="newest products")
class NewArrivals(Recommender):
    def fit(self, ds):
        return Candidates.ranked(self.scores(ds))

    def scores(self, ds):
        if ds.n_items == 0:
            return np.zeros(0, np.float32)
        created = ds.created_at.astype(np.float64)
        newest = created[ds.in_catalog].max(initial=0)
        s = np.power(0.5, (newest - created) / (14 * 86_400_000)) + 1e-3
        return np.where(ds.in_catalog, s, 0).astype(np.float32)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return Candidates.first(model, k, "new arrival")
