"""The candidate pool of a slot, built exactly as ``placements/blend.py`` steps 1-2 build it
(each source's scores / its maximum, x its weight, summed per item), for training the ranker on
past requests without going through the rules. At serving time the ranker gets the pool from
``run_slot`` through the hook; this is only for the training queries.
"""
from __future__ import annotations

import numpy as np

try:
    from ..placements.ranker import CandidateSet
except ImportError:  # an engine without CandidateSet yet
    from dataclasses import dataclass

    @dataclass
    class CandidateSet:  # type: ignore[no-redef]
        items: np.ndarray
        score: np.ndarray
        per_source: np.ndarray
        sources: list


def candidate_set(model, ctx, strategy: dict, k: int = 80) -> CandidateSet | None:
    names, parts = [], []
    for src in strategy.get("sources", ()):
        name = src["recommender"]
        rec = model.recommenders.get(name)
        if rec is None or name not in model.fitted or not rec.applicable(ctx):
            continue
        ctx.params = src.get("params") or {}
        try:
            c = rec.recommend(model.fitted[name], model.ds, ctx, k)
        except Exception:
            continue
        if c is None or len(c) == 0:
            continue
        top = float(c.scores.max())
        if top <= 0:
            continue
        norm = c.scores / top
        parts.append((c.items, norm, norm * float(src.get("weight", 1.0)), np.full(len(c), len(names), np.int32)))
        names.append(name)
    ctx.params = {}
    if not parts:
        return None
    items = np.concatenate([p[0] for p in parts])
    norm = np.concatenate([p[1] for p in parts])
    part = np.concatenate([p[2] for p in parts])
    srci = np.concatenate([p[3] for p in parts])
    uniq, inv = np.unique(items, return_inverse=True)
    score = np.bincount(inv, weights=part, minlength=len(uniq)).astype(np.float32)
    per_source = np.zeros((len(uniq), len(names)), np.float32)
    per_source[inv, srci] = norm
    return CandidateSet(uniq.astype(np.int32), score, per_source, names)


def with_items(cs: CandidateSet | None, extra: np.ndarray, sources: list[str]) -> CandidateSet:
    """``cs`` plus the ``extra`` items it lacks (score 0): shown products the pool did not have."""
    if cs is None:
        cs = CandidateSet(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros((0, len(sources)), np.float32), list(sources))
    missing = np.setdiff1d(np.asarray(extra, np.int32), cs.items)
    if not len(missing):
        return cs
    return CandidateSet(np.concatenate([cs.items, missing]).astype(np.int32),
                        np.concatenate([cs.score, np.zeros(len(missing), np.float32)]),
                        np.vstack([cs.per_source, np.zeros((len(missing), cs.per_source.shape[1]), np.float32)]),
                        cs.sources)
