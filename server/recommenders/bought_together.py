"""Bought together: complements from co-purchase, scored by confidence x log(1 + lift).

conf(i->j) = baskets with i and j / baskets with i;  lift = conf / P(j).  Pairs seen in fewer
than ``min_support`` baskets are dropped (2 once the tenant has 200+ baskets, else 1), so one
odd basket does not make a complement.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._common import Neighbours, copurchase_counts, row_of, top_k_rows
from ._tables import NOTHING, QuerySpec
from .kernels.seeds import walk_code
from .base import SEEDS, Candidates, Recommender, seeds_key
from .registry import register

REASON = "often bought with {}"


def lift_scores(C: sp.csr_matrix, counts: np.ndarray, n_baskets: int, min_support: int) -> sp.csr_matrix:
    C = C.tocsr().copy()
    r, c, d = row_of(C), C.indices, C.data.astype(np.float64)
    conf = d / np.maximum(counts[r], 1)
    p_j = (counts[c] + 1.0) / (n_baskets + 1.0)
    C.data = np.where(d >= min_support, conf * np.log1p(conf / p_j), 0).astype(np.float32)
    C.eliminate_zeros()
    return C


@register("bought_together", description="often bought together with these products (complements)")
class BoughtTogether(Recommender):
    def fit(self, ds):
        C, counts, n = copurchase_counts(ds)
        if n == 0:
            return Neighbours.empty(ds.n_items)
        return top_k_rows(lift_scores(C, counts, n, 2 if n >= 200 else 1))

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
