"""User-based CF: shoppers with the most similar taste, and what they wanted that this visitor
has not touched yet (``kernels/neighbors.py``).

The person x product matrix (purchases, carts, reviews, engaged views; log-damped weights) is
weighted by inverse user frequency (sharing a best seller says less than sharing a niche
product) and compared by cosine. The visitor is their model row plus the live session, so a
brand-new visitor is matched from their first views. The 50 nearest persons vote with their
similarity; products the visitor already has are excluded. A known person without new activity
has their neighbourhood computed once per model and cached; anyone else is matched online
from their 30 strongest items. Reason: how many similar shoppers chose the product.
"""
from __future__ import annotations

import numpy as np

from ._person import visitor_items
from .base import Candidates, Recommender
from .kernels.neighbors import UserKNN
from .registry import register

K_NEIGHBOURS = 50
MAX_QUERY_ITEMS = 30


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
        items, weights, has_live = visitor_items(ds, ctx)
        keep = items < model.n_items
        if not keep.any():
            return Candidates.empty()
        p = ctx.person
        if 0 <= p < model.n_users and not has_live and model.R.indptr[p + 1] > model.R.indptr[p]:
            cand, scores, nb = model.score_user(p, n=k)           # neighbours cached per person
        else:
            own = items                                            # (the visitor's, for below)
            items, weights = items[keep], np.log1p(weights[keep])
            if len(items) > MAX_QUERY_ITEMS:                       # the strongest items say enough
                top = np.argsort(-weights, kind="stable")[:MAX_QUERY_ITEMS]
                items, weights = items[top], weights[top]
            row = model.vector(items, weights)
            exclude = p if 0 <= p < model.n_users else None
            cand, scores, nb = model.score(row, exclude_user=exclude, n=k)
            if len(cand) and len(own):                             # never what they already have
                m = ~np.isin(cand, own)
                cand, scores = cand[m], scores[m]
        if not len(cand):
            return Candidates.empty()
        voters = model.voters(nb)[cand]
        reasons = [f"chosen by {v} shopper{'s' if v != 1 else ''} with similar taste" for v in voters.tolist()]
        return Candidates(cand.astype(np.int32), scores.astype(np.float32), reasons)
