"""Events -> weighted implicit feedback. See ``weights.py`` (the numbers) and docs/signals.md."""
from .weights import (  # noqa: F401
    CART, CLICK, IMPRESSION, KIND_NAMES, PURCHASE, REMOVE, REVIEW, VIEW, SignalConfig,
    decay, engagement_factor, usual_engaged_ms,
)
