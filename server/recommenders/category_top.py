"""Category top: the best products of the request's category (or the current product's),
by decayed popularity (views + carts + 5x purchases, 30-day half-life); when the category has
no activity, its newest products.

A category's ranking depends only on the model: it is made on a category's first request and
kept with the model's dataset (one entry per category of the catalog), so a request slices it.
"""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from .base import Candidates, Recommender
from .registry import register


def ranked(model: np.ndarray, ds, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``members`` best first and their scores: by popularity (``model``), or by creation
    time when none has any; ties in ``members``' order (a stable sort)."""
    s = model[members]
    if s.max(initial=0) <= 0:
        created = ds.created_at[members].astype(np.float64)
        s = (1.0 + (created - created.min()) / max(created.max() - created.min(), 1.0)).astype(np.float32)
    order = np.argsort(-s, kind="stable")
    return members[order].astype(np.int32), s[order] + 1e-6


@register("category_top", description="top products of this category")
class CategoryTop(Recommender):
    def fit(self, ds):
        return popularity(ds, (VIEW, CART, PURCHASE), half_life_days=30.0)

    def cache_key(self, ctx):  # the category, or the current product's when none is sent
        return ctx.category, (None if ctx.category else ctx.item)

    def recommend(self, model, ds, ctx, k):
        cat = ctx.category
        if not cat and ctx.item >= 0:
            cat = ds.category[ctx.item]
        if not cat:
            return Candidates.empty()
        members, ranked_as = ds.category_items(cat), cat
        if len(members) == 0 and " > " in cat:  # unknown leaf: try its parent
            ranked_as = cat.rsplit(" > ", 1)[0]
            members = ds.category_items(ranked_as)
        if len(members) == 0:
            return Candidates.empty()
        # (one entry per category of the catalog: ``ranked_as`` has items; with the model it was
        # ranked by, and the reason when the category asked for is that one)
        memo = ds.derived("_category_top_ranked", lambda ds: {})
        hit = memo.get(ranked_as)
        if hit is None or hit[0] is not model:
            hit = memo[ranked_as] = (model, *ranked(model, ds, members), f"top in {ranked_as.split(' > ')[-1]}")
        _, items, scores, reason = hit
        if ranked_as is not cat:    # (the unknown leaf is named)
            reason = f"top in {cat.split(' > ')[-1]}"
        return Candidates.of(items[:k], scores[:k], reason)
