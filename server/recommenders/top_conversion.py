"""Top conversion rate: products whose viewers most often buy them (purchases per view),
Bayesian-smoothed so a product with 1 view and 1 purchase does not beat one with 500 views and
100 purchases.

Per product: views = sessions that viewed it (``VIEW`` rows: one per session and product),
purchases = order lines; rate = ``(purchases + 30·p0) / (views + 30)`` with ``p0`` the shop's
pooled rate (``_stats.smoothed_rate``). Only products with at least one view are ranked (a
shop with imported orders but no views yet has no conversion data; placements fall back).
Last 90 days of the tenant clock, all time if that window has no views. Reason: "N% of
viewers buy it".
"""
from __future__ import annotations

import numpy as np

from ..signals import PURCHASE, VIEW
from ._stats import rate_candidates, rate_model
from .base import Recommender
from .registry import register

PRIOR_VIEWS = 30.0
DAYS = 90


@register("top_conversion", description="highest conversion rate (purchases per view, smoothed)")
class TopConversion(Recommender):
    def fit(self, ds):
        if not ds.n_items or not ds.n_feedback:
            return None
        views_m = ds.window(ds.fb_kind == VIEW, DAYS)
        days = DAYS if views_m.any() else None
        views = np.bincount(ds.fb_item[ds.window(ds.fb_kind == VIEW, days)], minlength=ds.n_items)
        buys = np.bincount(ds.fb_item[ds.window(ds.fb_kind == PURCHASE, days)], minlength=ds.n_items)
        return rate_model(buys, views, PRIOR_VIEWS)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return rate_candidates(model, k, "{pct} of viewers buy it")
