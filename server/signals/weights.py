"""How much one interaction says about interest: the feedback weights of the engine.

An *interaction* is one unit of feedback about one product by one person:

  VIEW      a product viewed in a session (all page views and engagement deltas of the same
            (session, product) are one view, so a long read sent in ten deltas is one unit)
  CART      an add to cart;  REMOVE a removal (negative)
  PURCHASE  an order line
  REVIEW    a written review (its rating moves the weight)
  IMPRESSION / CLICK  recommendation impressions and clicks (weight 0 for preference; kept for
            the statistics of top_rec_ctr / top_rec_inflow)

weight = type weight x engagement factor (views only) x time decay

Engagement factor of a view (``engagement_factor``), from the widget's measurements:
  - no engagement measured (imports, old widgets): 1.0, a plain view;
  - engaged time under ``bounce_ms`` (3 s): ``bounce_factor`` (0.1): a bounce is no interest;
  - else relative time  rel = engaged / usual engaged time of THIS product (a long page takes
    longer to read), factor 0.5 + 0.5 * min(rel, rel_cap): 1.0 at the product's usual time;
  - x (1 + scroll_bonus * scroll depth)  (deep scroll up to +50 %);
  - x (1 + content_bonus * share of engaged time with description/reviews/images in view);
  - capped at ``max_factor`` (4).
The product's usual time is the geometric mean of its non-bounce engaged times, shrunk to the
tenant-wide value with ``usual_prior`` pseudo-views (``usual_engaged_ms``).

Time decay: ``0.5 ** (age / half_life)``, the age measured against the tenant clock (the newest
event time in the shard), so an imported log behaves as a live one.

Visit-time context (hour of day, weekday, in the tenant's UTC offset) is kept per interaction
by the dataset (``fb_hour``, ``fb_weekday``) for time-of-day recommenders and the ranker.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEW, CART, REMOVE, PURCHASE, REVIEW, IMPRESSION, CLICK = 1, 2, 3, 4, 5, 6, 7
KIND_NAMES = {VIEW: "view", CART: "cart", REMOVE: "remove", PURCHASE: "purchase", REVIEW: "review",
              IMPRESSION: "impression", CLICK: "click"}
DAY_MS = 86_400_000


@dataclass(frozen=True)
class SignalConfig:
    view: float = 1.0
    cart: float = 3.0
    remove: float = -2.0
    purchase: float = 5.0
    review: float = 2.0           # plus (rating - 3) * review_rating
    review_rating: float = 1.0
    bounce_ms: int = 3000
    bounce_factor: float = 0.1
    rel_cap: float = 3.0
    scroll_bonus: float = 0.5
    content_bonus: float = 0.5
    max_factor: float = 4.0
    usual_prior: float = 5.0
    half_life_days: float = 60.0
    repeat_view: float = 0.25      # each further page view of the same product in one session

    def type_weight(self, kind: int) -> float:
        return {VIEW: self.view, CART: self.cart, REMOVE: self.remove, PURCHASE: self.purchase,
                REVIEW: self.review}.get(kind, 0.0)


DEFAULT = SignalConfig()


def usual_engaged_ms(item: np.ndarray, engaged_ms: np.ndarray, n_items: int, cfg: SignalConfig = DEFAULT) -> np.ndarray:
    """Per product, its usual engaged time (ms): shrunk geometric mean of non-bounce views."""
    ok = engaged_ms >= cfg.bounce_ms
    logs = np.log(np.maximum(engaged_ms[ok], 1.0))
    it = item[ok]
    glob = float(np.exp(logs.mean())) if logs.size else 30_000.0
    s = np.bincount(it, weights=logs, minlength=n_items)
    c = np.bincount(it, minlength=n_items).astype(np.float64)
    mean_log = (s + cfg.usual_prior * np.log(glob)) / (c + cfg.usual_prior)
    return np.exp(mean_log)


def engagement_factor(engaged_ms: np.ndarray, scroll_pct: np.ndarray, content_ms: np.ndarray,
                      usual_ms: np.ndarray, measured: np.ndarray, cfg: SignalConfig = DEFAULT) -> np.ndarray:
    """Vectorised engagement factor of views (see the module docstring). All arrays aligned."""
    engaged = np.asarray(engaged_ms, dtype=np.float64)
    rel = engaged / np.maximum(usual_ms, float(cfg.bounce_ms))
    f = 0.5 + 0.5 * np.minimum(rel, cfg.rel_cap)
    f *= 1.0 + cfg.scroll_bonus * np.clip(np.asarray(scroll_pct, dtype=np.float64), 0, 100) / 100.0
    share = np.clip(np.asarray(content_ms, dtype=np.float64) / np.maximum(engaged, 1.0), 0.0, 1.0)
    f *= 1.0 + cfg.content_bonus * share
    f = np.minimum(f, cfg.max_factor)
    f = np.where(engaged < cfg.bounce_ms, cfg.bounce_factor, f)
    return np.where(measured, f, 1.0)


def decay(ts: np.ndarray, clock_ms: int, cfg: SignalConfig = DEFAULT) -> np.ndarray:
    """Time decay against the tenant clock: 1.0 for the newest event, 0.5 one half-life earlier."""
    if cfg.half_life_days <= 0:
        return np.ones(len(ts), dtype=np.float32)
    age_days = np.maximum(clock_ms - np.asarray(ts, dtype=np.float64), 0.0) / DAY_MS
    return np.power(0.5, age_days / cfg.half_life_days).astype(np.float32)
