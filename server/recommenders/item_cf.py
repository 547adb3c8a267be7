"""Item-based CF: products similar to what this person interacted with, by cosine between
product columns of the person x product implicit-feedback matrix (weights from ``signals``).

Seeds: the current product and the visitor's live history (``ctx.seed_items``) plus, for a
known person, their strongest items in the model (precomputed: top 10 per person).
"""
from __future__ import annotations

import numpy as np

from ._common import itemcf_neighbours
from ._tables import NOTHING, QuerySpec
from .kernels.seeds import walk_code
from .kernels.sums import NO_MORE
from .base import SEEDS, Candidates, Recommender, seeds_key
from .registry import register

TOP = 10
REASON = "similar to {}"


def person_top(R, n: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """Per person row of R: its ``n`` strongest items (-1 padded) and their weights / row max."""
    idx = np.full((R.shape[0], n), -1, np.int32)
    w = np.zeros((R.shape[0], n), np.float32)
    indptr, indices, data = R.indptr, R.indices, R.data
    for r in range(R.shape[0]):
        a, b = indptr[r], indptr[r + 1]
        if a == b:
            continue
        d = data[a:b]
        o = np.argsort(-d, kind="stable")[:n]
        idx[r, :len(o)] = indices[a:b][o]
        w[r, :len(o)] = d[o] / max(float(d[o[0]]), 1e-9)
    return idx, w


@register("item_cf", description="similar to products this visitor liked (item-based CF)")
class ItemCF(Recommender):
    def fit(self, ds):
        top_idx, top_w = ds.derived("person_top", lambda ds: person_top(ds.R))
        # per person: whether every top item has a weight > 0 (the kernel merges those rows)
        top_ok = ((top_idx < 0) | (top_w > 0)).all(axis=1)
        return itemcf_neighbours(ds), (top_idx, top_w), top_ok

    def cache_key(self, ctx):  # the seeds and, through the person's top items, the person
        return seeds_key(ctx), ctx.person

    def recommend(self, model, ds, ctx, k):
        seeds = self.seeds(model, ctx)
        return Candidates.empty() if seeds is None else model[0].candidates(seeds[0], k, REASON, ds, vectors=seeds[1],
                                                                              more=seeds[2])

    def query(self, model, ds, ctx, k):   # (``recommend``'s kernel call: ``Neighbours.query``)
        seeds = self.seeds(model, ctx)
        return NOTHING if seeds is None else model[0].query(seeds[0], REASON, seeds[1], None, seeds[2])

    def query_spec(self, model):
        """``query`` as a ``QuerySpec``: the page's seeds walked, the person's top items as ``more``."""
        nbrs, (top_idx, top_w), top_ok = model
        return QuerySpec(nbrs, walk_code(SEEDS, page=True), REASON, nbrs.reason_texts(REASON),
                         top=(top_idx, top_w, top_ok))

    @staticmethod
    def seeds(model, ctx) -> tuple | None:
        """The request's seeds as ``Neighbours.candidates`` takes them, (seeds, vectors, more), or
        None when there are none: the request's seeds (``ctx.seed_vectors``: seeds None), then
        the person's top items not among them (``more``: merged by the kernel when all weigh >
        0, else here: vectors None)."""
        nbrs, (top_idx, top_w), top_ok = model
        v = ctx.seed_vectors(SEEDS)
        p = ctx.person
        if not 0 <= p < len(top_idx):
            return (None, v, NO_MORE) if len(v.items) else None
        if top_ok[p]:
            if not len(v.items) and top_idx[p, 0] < 0:
                return None
            return None, v, (top_idx[p], top_w[p])
        merged = dict(v.pairs())
        for i, w in zip(top_idx[p].tolist(), top_w[p].tolist()):
            if i >= 0:
                merged.setdefault(i, w)
        return list(merged.items()), None, NO_MORE
