"""Content-based: products whose text (title, category, brand, tags, attributes, description)
is most like the products of this visit — works from the first event, with no purchase history.

TF-IDF over words plus in-word character 2-3 grams (``kernels/text.py``), so Korean titles
match without a morphological analyser ("니트 가디건" ~ "울 가디건을"). Seeds: the current
product, the cart/order and the session's recent items (``ctx.seed_items``); each candidate's
score is the seed-weighted sum of cosine similarities; the reason names the closest seed.
"""
from __future__ import annotations

from ._text import seed_neighbour_candidates, seed_neighbour_query, seed_neighbour_spec, text_neighbours
from .base import Recommender, seeds_key
from .registry import register


@register("content_based", description="similar product details (text: title, category, attributes)")
class ContentBased(Recommender):
    def fit(self, ds):
        return text_neighbours(ds) if ds.n_items else None

    def cache_key(self, ctx):  # reads only the seed items
        return seeds_key(ctx)

    def recommend(self, model, ds, ctx, k):
        return seed_neighbour_candidates(model, ds, ctx, k, "similar to")

    def query(self, model, ds, ctx, k):   # (``recommend``'s kernel call, precomputed rows only)
        return seed_neighbour_query(model, ctx, "similar to")

    def query_spec(self, model):   # (precomputed rows only)
        return seed_neighbour_spec(model, "similar to")
