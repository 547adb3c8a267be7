"""Popular now: most viewed, carted and bought in the last 7 days of the tenant clock, each
interaction decaying with a one-day half-life (what is hot right now, not all time)."""
from __future__ import annotations

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from .base import Candidates, Recommender
from .registry import register


@register("popular_now", description="popular right now (last days, one-day half-life)")
class PopularNow(Recommender):
    def fit(self, ds):
        return Candidates.ranked(self.scores(ds))

    def scores(self, ds):
        s = popularity(ds, (VIEW, CART, PURCHASE), half_life_days=1.0, days=7)
        if s.max(initial=0) <= 0:  # a quiet week: fall back to the last 60 days
            s = popularity(ds, (VIEW, CART, PURCHASE), half_life_days=14.0, days=60)
        return s

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return Candidates.first(model, k, "popular right now")
