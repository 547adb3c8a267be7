"""Zero-result alternatives: the closest products to a search that found nothing (or little).

Matching is on character 1-3 grams of the short product fields (title, category path, brand,
tags, attributes; ``_text.fuzzy_index``), words counting only 20 %, so a misspelling
("cardigna"), a missing space, or half a Korean word ("가디") still finds the products that
share most of its characters. Never empty while the shop has products: when the text finds
fewer than ``k`` products the rest is filled with the most popular products of the last 30
days (then the newest catalog products), with their own reason.
"""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from ._text import fuzzy_index, top_positions
from .base import Candidates, Recommender
from .registry import register

MIN_SIMILARITY = 0.05


@register("zero_result", context=("query",), description="closest alternatives to a failed search")
class ZeroResult(Recommender):
    def fit(self, ds):
        if not ds.n_items:
            return None
        pop = popularity(ds, (VIEW, CART, PURCHASE), half_life_days=14.0, days=30).astype(np.float64)
        if pop.max(initial=0) <= 0:
            pop = popularity(ds, (VIEW, CART, PURCHASE)).astype(np.float64)
        # tie-break (and fallback for a shop without events): newest catalog products first
        age_rank = np.argsort(np.argsort(-ds.created_at, kind="stable"), kind="stable")
        fill = pop / max(pop.max(initial=0), 1e-9) + 1e-3 / (1.0 + age_rank)
        fill = np.where(ds.in_catalog, fill, 0.0)
        order = np.argsort(-fill, kind="stable")[:200]
        order = order[fill[order] > 0]
        boost = (1.0 + 0.1 * pop / max(pop.max(initial=0), 1e-9)).astype(np.float32)
        return fuzzy_index(ds), order.astype(np.int32), boost

    def cache_key(self, ctx):
        return (ctx.query or "").strip()

    def recommend(self, model, ds, ctx, k):
        if model is None or k <= 0:
            return Candidates.empty()
        index, fill, boost = model
        q = (ctx.query or "").strip()
        scores = index.query_scores(q) if q else np.zeros(0)
        items = np.zeros(0, np.int64)
        if len(scores):
            scores = np.where(scores >= MIN_SIMILARITY, scores, 0.0) * boost   # ties: the popular one
            items = top_positions(scores, k)
        out_items = items.tolist()
        out_scores = scores[items].tolist() if len(items) else []
        label = q[:40]
        reasons = [f"close to '{label}'"] * len(out_items)
        if len(out_items) < k:
            floor = min(out_scores) if out_scores else 1.0
            seen = set(out_items)
            extra = [int(i) for i in fill if int(i) not in seen][: k - len(out_items)]
            for rank, i in enumerate(extra):
                out_items.append(i)
                out_scores.append(floor * 0.5 / (1 + rank * 0.01))
                reasons.append("popular in the shop")
        if not out_items:
            return Candidates.empty()
        return Candidates(np.array(out_items, np.int32), np.array(out_scores, np.float32), reasons)
