"""Time-of-day popularity: what is viewed, carted and bought at this hour (and on this kind of
day) in the shop's own time zone, for the request's ``ctx.hour`` / ``ctx.weekday``.

Interactions (signal weight x time decay) are counted per product in 24 hour buckets x
{weekday, weekend}; each hour also borrows half of its two neighbouring hours (circular), so
23:00 and 01:00 help midnight. The estimate backs off in two steps, each with 50 pseudo-weight
of smoothing: the (day-kind, hour) cell toward the hour over all days, the hour toward the
all-day popularity:

    p(i | hour)      = (n_hour,i + a·p(i)) / (N_hour + a)
    p(i | kind,hour) = (n_cell,i + a·p(i | hour)) / (N_cell + a)

Ranked by ``p(i | kind, hour)``. Reason: "popular around 9 pm" / "popular on weekend mornings".
"""
from __future__ import annotations

import numpy as np

from ..signals import CART, PURCHASE, VIEW
from .base import Candidates, Recommender
from .registry import register

PRIOR = 50.0
TOP = 200
MAX_ANSWERS = 1024   # answers kept per model: 48 (day kind, hour) x the k asked


def _hour_label(h: int) -> str:
    return "midnight" if h == 0 else "noon" if h == 12 else f"{h % 12} {'am' if h < 12 else 'pm'}"


@register("time_of_day", description="popular at this time of day")
class TimeOfDay(Recommender):
    def fit(self, ds):
        if not ds.n_items or not ds.n_feedback:
            return None
        m = np.isin(ds.fb_kind, (VIEW, CART, PURCHASE)) & (ds.fb_weight > 0)
        if not m.any():
            return None
        w = (ds.fb_weight[m] * ds.fb_decay[m]).astype(np.float64)
        item = ds.fb_item[m].astype(np.int64)
        hour = ds.fb_hour[m].astype(np.int64)
        weekend = (ds.fb_weekday[m] >= 5).astype(np.int64)
        n = ds.n_items
        cell = np.bincount((weekend * 24 + hour) * n + item, weights=w, minlength=48 * n).reshape(2, 24, n)
        cell = cell + 0.5 * (np.roll(cell, 1, axis=1) + np.roll(cell, -1, axis=1))
        by_hour = cell.sum(axis=0)
        total = by_hour.sum(axis=0)
        p = total / max(total.sum(), 1e-12)
        p_hour = (by_hour + PRIOR * p[None, :]) / (by_hour.sum(axis=1, keepdims=True) + PRIOR)
        p_cell = (cell + PRIOR * p_hour[None, :, :]) / (cell.sum(axis=2, keepdims=True) + PRIOR)
        # keep only the TOP items per cell: (2, 24, TOP) indices and scores
        k = min(TOP, n)
        idx = np.argpartition(-p_cell, k - 1, axis=2)[:, :, :k] if k < n else np.broadcast_to(np.arange(n), (2, 24, n)).copy()
        sc = np.take_along_axis(p_cell, idx, axis=2)
        order = np.argsort(-sc, axis=2, kind="stable")
        idx = np.take_along_axis(idx, order, axis=2).astype(np.int32)
        sc = np.take_along_axis(sc, order, axis=2).astype(np.float32)
        return idx, sc

    def cache_key(self, ctx):
        return int(ctx.hour) % 24, int(ctx.weekday) >= 5

    keeps_answers = True   # (each (day kind, hour, k) once per model: ``recommend``)

    def recommend(self, model, ds, ctx, k):
        if model is None:
            return Candidates.empty()
        h = int(ctx.hour) % 24
        we = 1 if int(ctx.weekday) >= 5 else 0
        kept = self.__dict__.get("_answers")   # (the fitted state, its answers)
        if kept is None or kept[0] is not model:
            kept = self._answers = (model, {})
        c = kept[1].get((we, h, k))
        if c is None:
            c = self._answer(model, we, h, k)
            if len(kept[1]) < MAX_ANSWERS:
                kept[1][(we, h, k)] = c
        return c

    @staticmethod
    def _answer(model, we: int, h: int, k: int) -> Candidates:
        """The answer of a (day kind, hour) for ``k``: a function of the fitted state alone,
        made once per model (shared and never changed, as the answer cache shares answers)."""
        idx, sc = model
        items, scores = idx[we, h, :k], sc[we, h, :k]
        keep = scores > 0
        part = ("weekend " if we else "") + ("mornings" if 5 <= h < 12 else "afternoons" if 12 <= h < 18
                                              else "evenings" if 18 <= h < 23 else "nights")
        reason = f"popular around {_hour_label(h)}" if not we else f"popular on {part}"
        return Candidates(items[keep], scores[keep], reason)
