"""Category top: the best products of the request's category (or the current product's),
by decayed popularity (views + carts + 5x purchases, 30-day half-life); when the category has
no activity, its newest products.

Every category's ranking depends only on the build: ``fit`` ranks each category path (and
ancestor) of the catalog once, so that a request slices its category's (most categories are
asked for rarely: the shop-wide answer cache holds few of them).
"""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from ._common import popularity
from .base import Candidates, Recommender
from .registry import register


def ranked(popular: np.ndarray, ds, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``members`` best first and their scores: by popularity, or by creation time when none
    has any; ties in ``members``' order (a stable sort)."""
    s = popular[members]
    if s.max(initial=0) <= 0:
        created = ds.created_at[members].astype(np.float64)
        s = (1.0 + (created - created.min()) / max(created.max() - created.min(), 1.0)).astype(np.float32)
    order = np.argsort(-s, kind="stable")
    return members[order].astype(np.int32), s[order] + 1e-6


MAX_ANSWERS = 4096   # answers kept per model (``CategoryRanks.answer``): a shop's paths x the k asked


class CategoryRanks:
    """``popularity`` (per item) and every category path's ``ranked`` products, one after the
    other in ``items`` / ``scores``: ``at[path]`` = (start, end, the reason naming the path);
    the answers made of them so far (``answer``)."""
    __slots__ = ("popularity", "items", "scores", "at", "_answers")

    def __init__(self, popular: np.ndarray, ds):
        self.popularity, self.at, self._answers = popular, {}, {}
        items, scores, start = [], [], 0
        paths = dict.fromkeys(" > ".join(levels[:d]) for levels in (c.split(" > ") for c in ds.categories if c)
                              for d in range(1, len(levels) + 1))
        for path in paths:
            members = ds.category_items(path)
            if len(members):
                i, s = ranked(popular, ds, members)
                items.append(i)
                scores.append(s)
                self.at[path] = (start, start + len(i), f"top in {path.split(' > ')[-1]}")
                start += len(i)
        self.items = np.concatenate(items) if items else np.zeros(0, np.int32)
        self.scores = np.concatenate(scores) if scores else np.zeros(0, np.float32)

    def answer(self, path: str, k: int) -> Candidates | None:
        """``path``'s ranking's first ``k`` as Candidates, or None when it is not a path of the
        catalog: made once per (path, k) for the model's life (a function of the build alone;
        answers are shared and never changed, as the model's answer cache shares them), up to
        ``MAX_ANSWERS``, then per call. A category's request then costs a dict read: most
        categories come too rarely for the model's answer cache to keep them."""
        try:
            memo = self._answers
        except AttributeError:   # (a model pickled before the answers were kept)
            memo = self._answers = {}
        got = memo.get((path, k))
        if got is None:
            at = self.at.get(path)
            if at is None:
                return None
            start, end, reason = at
            got = Candidates.of(self.items[start:end][:k], self.scores[start:end][:k], reason)
            if len(memo) < MAX_ANSWERS:
                memo[(path, k)] = got
        return got


@register("category_top", description="top products of this category")
class CategoryTop(Recommender):
    keeps_answers = True   # (``CategoryRanks.answer``)

    def fit(self, ds):
        return CategoryRanks(popularity(ds, (VIEW, CART, PURCHASE), half_life_days=30.0), ds)

    def cache_key(self, ctx):  # the category, or the current product's when none is sent
        return ctx.category, (None if ctx.category else ctx.item)

    def recommend(self, model, ds, ctx, k):
        cat = ctx.category
        if not cat and ctx.item >= 0:
            cat = ds.category[ctx.item]
        if not cat:
            return Candidates.empty()
        if type(model) is CategoryRanks:   # (most requests: a path of the catalog, ranked at fit time)
            got = model.answer(cat, k)
            if got is not None:
                return got
        members, ranked_as = ds.category_items(cat), cat
        if len(members) == 0 and " > " in cat:  # unknown leaf: try its parent
            ranked_as = cat.rsplit(" > ", 1)[0]
            members = ds.category_items(ranked_as)
        if len(members) == 0:
            return Candidates.empty()
        at = model.at.get(ranked_as) if type(model) is CategoryRanks else None
        if at is None:   # (a model pickled before the ranks: the popularity alone)
            items, scores = ranked(getattr(model, "popularity", model), ds, members)
            return Candidates.of(items[:k], scores[:k], f"top in {cat.split(' > ')[-1]}")
        start, end, reason = at
        if ranked_as is not cat:    # (the unknown leaf is named)
            reason = f"top in {cat.split(' > ')[-1]}"
        return Candidates.of(model.items[start:end][:k], model.scores[start:end][:k], reason)
