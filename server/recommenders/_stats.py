"""Bayesian-smoothed rates for the statistical recommenders (private: not a recommender)."""
from __future__ import annotations

import numpy as np


def smoothed_rate(successes: np.ndarray, trials: np.ndarray, strength: float) -> tuple[np.ndarray, float]:
    """Beta-binomial posterior mean per item, prior = the pooled rate with ``strength``
    pseudo-trials: ``(s + strength·p0) / (n + strength)``. Items with no trials score 0.

    Returns (rates, p0)."""
    successes = np.asarray(successes, np.float64)
    trials = np.asarray(trials, np.float64)
    tot = trials.sum()
    p0 = float(min(successes.sum() / tot, 1.0)) if tot > 0 else 0.0
    rate = (np.minimum(successes, trials) + strength * p0) / (trials + strength)
    return np.where(trials > 0, rate, 0.0), p0


def pct(x: float) -> str:
    """0.1234 -> '12%'; small rates keep a decimal ('0.8%')."""
    v = 100.0 * x
    return f"{v:.0f}%" if v >= 9.5 else f"{v:.1f}%"


def rate_model(hits: np.ndarray, trials: np.ndarray, strength: float):
    """(smoothed rate, raw rate) per item, or None when there are no trials at all."""
    if trials.sum() == 0:
        return None
    rate, _ = smoothed_rate(hits, trials, strength)
    return rate.astype(np.float32), (np.minimum(hits, trials) / np.maximum(trials, 1)).astype(np.float32)


def rate_candidates(model, k: int, reason: str):
    """The ``k`` items of highest smoothed rate; ``reason`` takes the raw rate as ``{pct}``."""
    from .base import Candidates

    if model is None:
        return Candidates.empty()
    rate, raw = model
    c = Candidates.top(rate, k, "")
    c.reasons = [reason.format(pct=pct(float(raw[i]))) for i in c.items.tolist()]
    return c
