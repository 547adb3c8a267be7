"""Top recommendation inflow: products whose visits most often come from a recommendation.

A product visit (one ``VIEW`` row: a session's views of the product, with the time of the
latest) counts as recommendation inflow when the same session has a ``rec_click`` on that
product at or before that time. Share = inflow visits / visits, smoothed toward the shop's
pooled share with 20 pseudo-visits; only products with visits are ranked. Last 30 days, all
time if that window has no clicks. Reason: "N% of its visits come from recommendations".
"""
from __future__ import annotations

import numpy as np

from ..signals import CLICK, VIEW
from ._stats import rate_candidates, smoothed_rate
from .base import Recommender
from .registry import register

PRIOR_VISITS = 20.0
DAYS = 30


def inflow_counts(ds, days) -> tuple[np.ndarray, np.ndarray]:
    """(visits per item, visits per item that followed a rec click on it in the session)."""
    vm = ds.window(ds.fb_kind == VIEW, days)
    cm = ds.window(ds.fb_kind == CLICK, days)
    visits = np.bincount(ds.fb_item[vm], minlength=ds.n_items)
    if not cm.any():
        return visits, np.zeros(ds.n_items, np.int64)
    n = np.int64(ds.n_items)
    # first click time per (session, item)
    ck = ds.fb_session[cm].astype(np.int64) * n + ds.fb_item[cm]
    cts = ds.fb_ts[cm]
    order = np.lexsort((cts, ck))
    ck, cts = ck[order], cts[order]
    first = np.ones(len(ck), bool)
    first[1:] = ck[1:] != ck[:-1]
    ck, cts = ck[first], cts[first]
    vk = ds.fb_session[vm].astype(np.int64) * n + ds.fb_item[vm]
    pos = np.searchsorted(ck, vk)
    pos_c = np.minimum(pos, len(ck) - 1)
    hit = (ck[pos_c] == vk) & (cts[pos_c] <= ds.fb_ts[vm])
    inflow = np.bincount(ds.fb_item[vm][hit], minlength=ds.n_items)
    return visits, inflow


@register("top_rec_inflow", description="largest share of visits coming from recommendations (smoothed)")
class TopRecInflow(Recommender):
    def fit(self, ds):
        if not ds.n_items or not ds.n_feedback:
            return None
        days = DAYS if ds.window(ds.fb_kind == CLICK, DAYS).any() else None
        visits, inflow = inflow_counts(ds, days)
        if visits.sum() == 0 or inflow.sum() == 0:
            return None
        share, _ = smoothed_rate(inflow, visits, PRIOR_VISITS)
        return share.astype(np.float32), (inflow / np.maximum(visits, 1)).astype(np.float32)

    def cache_key(self, ctx):  # a shop-wide list: reads nothing of the request
        return ()

    def recommend(self, model, ds, ctx, k):
        return rate_candidates(model, k, "{pct} of its visits come from recommendations")
