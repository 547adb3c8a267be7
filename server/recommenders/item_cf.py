"""Item-based CF: products similar to what this person interacted with, by cosine between
product columns of the person x product implicit-feedback matrix (weights from ``signals``).

Seeds: the current product and the visitor's live history (``ctx.seed_items``) plus, for a
known person, their strongest items in the model.
"""
from __future__ import annotations

from ._common import itemcf_neighbours
from .base import Candidates, Recommender
from .registry import register


@register("item_cf", description="similar to products this visitor liked (item-based CF)")
class ItemCF(Recommender):
    def fit(self, ds):
        return itemcf_neighbours(ds)

    def recommend(self, model, ds, ctx, k):
        seeds = dict(ctx.seed_items())
        if ctx.person >= 0:
            row = ds.R.getrow(ctx.person)
            if row.nnz:
                top = row.indices[row.data.argsort()[::-1][:10]]
                mx = float(row.data.max())
                for i in top:
                    seeds.setdefault(int(i), float(row[0, i]) / mx)
        if not seeds:
            return Candidates.empty()
        contrib = model.contributions(list(seeds.items()))
        for s in seeds:
            contrib.pop(s, None)
        return Candidates.from_pairs({j: v for j, (v, _) in contrib.items()}, k,
                                     lambda j: f"similar to {ds.label(contrib[j][1])}")
