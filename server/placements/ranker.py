"""The one scoring step after candidate generation: the place of the learned ranker.

``rank(model, ctx, pool)`` receives every candidate of a slot with its per-source normalised
scores (``pool``: item -> ``Scored``) and returns the items best first. The default is the
weighted blend computed by ``blend.py``. A learned two-stage ranker (its own issue) replaces
``RANKER`` with an object whose ``rank`` builds features for these few candidates (the source
scores, the dataset's product arrays, ``ctx`` with its live session and visit time) and orders
them by the model's score. Register it with ``set_ranker``; it must be fast (candidates are a
few hundred at most) and must not do I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Scored:
    score: float = 0.0                       # weighted blend of normalised source scores
    sources: dict[str, float] = field(default_factory=dict)   # recommender -> normalised score
    reason: str = ""
    best: str = ""                           # the source contributing most
    best_part: float = 0.0


class BlendRanker:
    name = "blend"

    def rank(self, model, ctx, pool: dict[int, Scored]) -> list[int]:
        return sorted(pool, key=lambda i: -pool[i].score)


RANKER = BlendRanker()


def set_ranker(ranker) -> None:
    global RANKER
    RANKER = ranker


def get_ranker():
    return RANKER
