"""Viewed together: products viewed in the same sessions as the seeds (substitutes).

Fit: cosine co-view over sessions (bounces below an engagement weight of 0.5 do not count),
top-50 neighbours per product. Request: seeds = current product, cart, session items.
"""
from __future__ import annotations

from ._common import coview_neighbours
from ._tables import NOTHING, QuerySpec
from .kernels.seeds import walk_code
from .base import SEEDS, Candidates, Recommender, seeds_key
from .registry import register

REASON = "viewed together with {}"


@register("viewed_together", description="viewed in the same sessions as this product (substitutes)")
class ViewedTogether(Recommender):
    def fit(self, ds):
        return coview_neighbours(ds)

    def cache_key(self, ctx):  # reads only the seed items
        return seeds_key(ctx)

    def recommend(self, model, ds, ctx, k):
        v = ctx.seed_vectors(SEEDS)   # (``seeds_key``'s seeds)
        return model.candidates(None, k, REASON, ds, vectors=v) if len(v.items) else Candidates.empty()

    def query(self, model, ds, ctx, k):   # (``recommend``'s kernel call: ``Neighbours.query``)
        v = ctx.seed_vectors(SEEDS)
        return model.query(None, REASON, v) if len(v.items) else NOTHING

    def query_spec(self, model):
        """``query`` as a ``QuerySpec``: the page's seeds walked."""
        return QuerySpec(model, walk_code(SEEDS, page=True), REASON, model.reason_texts(REASON))
