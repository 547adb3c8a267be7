"""The built-in strategy of every placement, funnel-aware (see docs/engine.md).

A strategy: ``sources`` (recommender name + weight, blended), ``fallbacks`` (tried in order
while the slot is short; their items come after the blended ones), ``rules`` (server/rules.py).
Names of recommenders that are not registered (yet) are skipped at request time; the final
safety net of every placement is the tenant's catalog by popularity then newness, so a slot is
never empty while the catalog has a product the rules allow, and never random.
"""
from __future__ import annotations

PLACEMENTS = ("main", "category", "search", "detail_similar", "detail_complements", "cart", "checkout", "purchase")

# the statistical tail most placements end with
_STATS = ["popular_now", "best_sellers", "trending", "new_arrivals"]

DEFAULT_STRATEGIES: dict[str, dict] = {
    "main": {
        "strategy": "personal",
        "sources": [
            {"recommender": "realtime_personal", "weight": 1.0},
            {"recommender": "item_cf", "weight": 0.6},
            {"recommender": "matrix_factorization", "weight": 0.6},
            {"recommender": "customer_group", "weight": 0.3},
            {"recommender": "demographic", "weight": 0.2},
            {"recommender": "time_of_day", "weight": 0.1},
        ],
        # user_cf is a fallback, not a source, until its request-time cost is below a millisecond
        "fallbacks": ["user_cf", "customer_group", "demographic", "top_conversion", *_STATS],
        "rules": {"max_per_category": 3},
    },
    "category": {
        "strategy": "best_in_category",
        "sources": [
            {"recommender": "category_top", "weight": 1.0},
            {"recommender": "realtime_personal", "weight": 0.3},
        ],
        "fallbacks": ["category_top", *_STATS],
        "rules": {},
        "scope_to_category": True,
    },
    "search": {
        "strategy": "query_aware",
        "sources": [
            {"recommender": "search_keyword", "weight": 1.0},
            {"recommender": "zero_result", "weight": 0.8},
            {"recommender": "realtime_personal", "weight": 0.2},
        ],
        "fallbacks": ["zero_result", "content_based", "popular_now", "best_sellers", "new_arrivals"],
        "rules": {},
    },
    "detail_similar": {
        "strategy": "substitutes",
        "sources": [
            {"recommender": "viewed_together", "weight": 1.0},
            {"recommender": "content_based", "weight": 0.7},
            {"recommender": "item_cf", "weight": 0.4},
            {"recommender": "similar_image", "weight": 0.3},
        ],
        "fallbacks": ["content_based", "category_top", *_STATS],
        "rules": {},
    },
    "detail_complements": {
        "strategy": "complements",
        "sources": [
            {"recommender": "bought_together", "weight": 1.0},
            {"recommender": "item_cf", "weight": 0.2},
        ],
        "fallbacks": ["viewed_together", "best_sellers", "popular_now", "new_arrivals"],
        "rules": {"max_per_category": 4},
    },
    "cart": {
        "strategy": "cart_complements",
        "sources": [
            {"recommender": "bought_together", "weight": 1.0},
            {"recommender": "realtime_personal", "weight": 0.2},
        ],
        "fallbacks": ["item_cf", "best_sellers", "popular_now", "new_arrivals"],
        "rules": {},
    },
    "checkout": {
        "strategy": "order_complements",
        "sources": [
            {"recommender": "bought_together", "weight": 1.0},
        ],
        "fallbacks": ["best_sellers", "popular_now", "new_arrivals"],
        "rules": {},
    },
    "purchase": {
        "strategy": "after_purchase",
        "sources": [
            {"recommender": "bought_together", "weight": 1.0},
            {"recommender": "buy_again", "weight": 0.5},
            {"recommender": "item_cf", "weight": 0.3},
        ],
        "fallbacks": ["buy_again", "best_sellers", "popular_now", "new_arrivals"],
        "rules": {"exclude_bought_days": 0},
    },
}

# placement names a request may use besides the eight above (widgets' extra carousels)
ALIASES = {"detail": "detail_similar", "home": "main", "recently_viewed": "main"}
