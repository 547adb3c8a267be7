"""Category top: the best products of the request's category (or the current product's),
by decayed popularity (views + carts + 5x purchases, 30-day half-life); when the category has
no activity, its newest products."""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from .base import Candidates, Recommender
from .registry import register


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
        members = ds.category_items(cat)
        if len(members) == 0 and " > " in cat:  # unknown leaf: try its parent
            members = ds.category_items(cat.rsplit(" > ", 1)[0])
        if len(members) == 0:
            return Candidates.empty()
        s = model[members]
        if s.max(initial=0) <= 0:
            created = ds.created_at[members].astype(np.float64)
            s = (1.0 + (created - created.min()) / max(created.max() - created.min(), 1.0)).astype(np.float32)
        order = np.argsort(-s, kind="stable")[:k]
        name = cat.split(" > ")[-1]
        return Candidates(members[order], s[order] + 1e-6, f"top in {name}")
