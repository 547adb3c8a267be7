"""The one scoring step after candidate generation: the place of the learned ranker.

``rank(model, ctx, cands) -> order`` receives every candidate of a slot (``CandidateSet``:
the unique items, their blended score, and the matrix of per-source normalised scores, one
column per source recommender of the strategy) and returns positions into ``cands.items``,
best first. The default orders by the weighted blend computed in ``blend.py``.

A learned two-stage ranker (its own issue) replaces it with ``set_ranker(obj)``: ``obj.rank``
builds features for these few candidates (``cands.per_source``, the dataset's product arrays
via ``model.ds``, the live session and visit time in ``ctx``) and orders them by the model's
score. It must be fast (a few hundred candidates, about a millisecond) and do no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CandidateSet:
    items: np.ndarray        # int32 unique dataset item indices
    score: np.ndarray        # float32 blended score (after boosts)
    per_source: np.ndarray   # float32 [len(items), len(sources)]: each source's score / its max
    sources: list[str]       # recommender names, the columns of per_source


class BlendRanker:
    name = "blend"

    def rank(self, model, ctx, cands: CandidateSet) -> np.ndarray:
        return np.lexsort((cands.items, -cands.score))


RANKER = BlendRanker()


def set_ranker(ranker) -> None:
    global RANKER
    RANKER = ranker


def get_ranker():
    return RANKER
