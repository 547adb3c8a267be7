"""Review-based: products related through their reviews — what reviewers say about them and who
engages with them.

Two item x item similarities, blended 50/50 where both exist:
  - review text: each product's review texts (the ``reviews`` table) joined into one
    document, TF-IDF over words and character n-grams (Korean reviews work without an
    analyser), cosine — products that reviewers describe alike ("포근하고 따뜻해요" / "warm and
    soft") are near;
  - review engagement: persons who wrote or rated reviews (the ``reviews`` table and ``review``
    events), weighted by how positive they were (rating 1..5 -> 0.2..1.0, unrated 0.6); products
    engaged by the same persons are near (cosine over persons, shrunk by 2).
Seeds: the current product, cart and session items. Reasons: "reviewed alike to X" /
"reviewers of X also reviewed it".
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from ..signals import REVIEW
from ._common import Neighbours, cosine, cooccurrence, top_k_rows
from ._text import top_positions
from .base import Candidates, Recommender, seeds_key
from .kernels.text import TfidfIndex
from .registry import register

K = 30


def review_engagement(ds) -> sparse.csr_matrix:
    """persons x items: review engagement weight (max over a person's reviews of an item)."""
    rows, cols, vals = [], [], []
    ok = (ds.review_person >= 0) & (ds.review_item >= 0)
    rating = np.where(np.isnan(ds.review_rating), 3.0, ds.review_rating)
    rows.append(ds.review_person[ok]); cols.append(ds.review_item[ok]); vals.append(rating[ok] / 5.0)
    m = ds.fb_kind == REVIEW
    rows.append(ds.fb_person[m]); cols.append(ds.fb_item[m])
    vals.append(np.clip((ds.fb_weight[m] - 2.0 + 3.0) / 5.0, 0.2, 1.0))
    r, c, v = (np.concatenate(x) for x in (rows, cols, vals))
    if not len(r):
        return sparse.csr_matrix((ds.n_persons, ds.n_items), dtype=np.float32)
    X = sparse.coo_matrix((v.astype(np.float32), (r, c)), shape=(ds.n_persons, ds.n_items)).tocsr()
    X.sum_duplicates()
    return X


class ReviewModel:
    def __init__(self, ds):
        texts = [[] for _ in range(ds.n_items)]
        for i, t in zip(ds.review_item.tolist(), ds.review_text):
            if 0 <= i < ds.n_items and t:
                texts[i].append(t)
        docs = [" ".join(t) for t in texts]
        has_text = np.array([bool(d) for d in docs])
        self.text = None
        if has_text.sum() >= 2:
            index = TfidfIndex(word_weight=0.5).fit(docs)
            idx, sc = index.neighbors(K, min_score=0.05)
            self.text = Neighbours(idx.astype(np.int32), sc.astype(np.float32))
        X = review_engagement(ds)
        self.engage = None
        if X.nnz:
            counts = np.asarray((X > 0).sum(axis=0)).ravel()
            C = cooccurrence(X, binary=False)
            if C.nnz:
                self.engage = top_k_rows(cosine(C, counts, shrink=2.0), K)

    def candidates(self, ds, seeds, k) -> Candidates:
        parts = []
        for nb, fmt in ((self.text, "reviewed alike to {}"), (self.engage, "reviewers of {} also reviewed it")):
            if nb is None:
                continue
            items, scores, best = nb.gather(seeds)
            if len(items):
                parts.append((items, scores / max(float(scores.max()), 1e-9), best, fmt))
        if not parts:
            return Candidates.empty()
        items = np.unique(np.concatenate([p[0] for p in parts]))
        total = np.zeros(len(items), np.float32)
        lead = np.full(len(items), -1.0, np.float32)
        why = [""] * len(items)
        for its, sc, best, fmt in parts:
            pos = np.searchsorted(items, its)
            total[pos] += sc / len(parts)
            for p, s, b in zip(pos.tolist(), sc.tolist(), best.tolist()):
                if s > lead[p]:
                    lead[p] = s
                    why[p] = fmt.format(ds.label(b))
        top = top_positions(total, k, items)
        return Candidates(items[top], total[top], [why[p] for p in top.tolist()])


@register("review_based", description="related through reviews: similar review text, same reviewers")
class ReviewBased(Recommender):
    def fit(self, ds):
        if not ds.n_items or (not len(ds.review_item) and not (ds.fb_kind == REVIEW).any()):
            return None
        m = ReviewModel(ds)
        return m if (m.text is not None or m.engage is not None) else None

    def cache_key(self, ctx):  # reads only the seed items
        return seeds_key(ctx)

    def recommend(self, model, ds, ctx, k):
        seeds = ctx.seed_items()
        if model is None or not seeds:
            return Candidates.empty()
        return model.candidates(ds, seeds, k)
