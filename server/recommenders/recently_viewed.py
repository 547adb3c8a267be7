"""Recently viewed: this visitor's own latest products, newest first (read live from the shard)."""
from __future__ import annotations

from ..signals import CART, CLICK, VIEW
from .base import Candidates, Recommender
from .registry import register


@register("recently_viewed", context=("person",), description="products you viewed recently")
class RecentlyViewed(Recommender):
    def recommend(self, model, ds, ctx, k):
        seen: dict[int, float] = {}
        for r in ctx.recent:
            if r.item >= 0 and r.kind in (VIEW, CART, CLICK) and r.item not in seen and r.weight >= 0.5:
                seen[r.item] = 1.0 / (1 + len(seen))
        return Candidates.from_pairs(seen, k, "you viewed this recently")
