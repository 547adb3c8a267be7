"""User-based CF: shoppers with the most similar taste, and what they wanted that this visitor
has not touched yet (``kernels/neighbors.py``).

The person x product matrix (purchases, carts, reviews, engaged views; log-damped weights) is
weighted by inverse user frequency (sharing a best seller says less than sharing a niche
product) and compared by cosine. The visitor is their model row plus the live session, so a
brand-new visitor is matched from their first views. The 50 nearest persons vote with their
similarity; products the visitor already has are excluded. Reason: how many similar shoppers
chose the product.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ._person import visitor_items
from .base import Candidates, Recommender
from .kernels.neighbors import UserKNN
from .registry import register

K_NEIGHBOURS = 50


@register("user_cf", description="what shoppers with similar taste chose (user-based CF)")
class UserCF(Recommender):
    def fit(self, ds):
        if ds.R.nnz == 0:
            return None
        X = ds.R.copy()
        X.data = np.log1p(X.data)
        return UserKNN(k=K_NEIGHBOURS, iuf=True).fit(X)

    def recommend(self, model, ds, ctx, k):
        if model is None:
            return Candidates.empty()
        items, weights, _ = visitor_items(ds, ctx)
        keep = items < model.n_items
        if not keep.any():
            return Candidates.empty()
        row = model.vector(items[keep], np.log1p(weights[keep]))
        exclude = ctx.person if 0 <= ctx.person < model.n_users else None
        cand, scores, nb = model.score(row, exclude_user=exclude, n=k)
        if not len(cand):
            return Candidates.empty()
        voters = model.voters(nb)[cand]
        reasons = [f"chosen by {v} shopper{'s' if v != 1 else ''} with similar taste" for v in voters.tolist()]
        return Candidates(cand.astype(np.int32), scores.astype(np.float32), reasons)
