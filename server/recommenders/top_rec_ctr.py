"""Top recommendation CTR: products most often clicked when recommended (clicks per viewable
impression from the widget's ``rec_impression`` / ``rec_click`` events), smoothed toward the
shop's pooled CTR with 100 pseudo-impressions so a lucky single click does not top the list.
Only products with impressions are ranked; last 30 days, all time if that window is empty.
Reason: "clicked in N% of recommendations".
"""
from __future__ import annotations

import numpy as np

from ..signals import CLICK, IMPRESSION
from ._stats import rate_candidates, rate_model
from .base import Recommender
from .registry import register

PRIOR_IMPRESSIONS = 100.0
DAYS = 30


@register("top_rec_ctr", description="highest click-through when recommended (smoothed)")
class TopRecCTR(Recommender):
    def fit(self, ds):
        if not ds.n_items or not ds.n_feedback:
            return None
        days = DAYS if ds.window(ds.fb_kind == IMPRESSION, DAYS).any() else None
        imps = np.bincount(ds.fb_item[ds.window(ds.fb_kind == IMPRESSION, days)], minlength=ds.n_items)
        clicks = np.bincount(ds.fb_item[ds.window(ds.fb_kind == CLICK, days)], minlength=ds.n_items)
        return rate_model(clicks, imps, PRIOR_IMPRESSIONS)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return rate_candidates(model, k, "clicked in {pct} of recommendations")
