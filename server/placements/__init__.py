"""Placements: per page type, a strategy = recommenders + weights + fallbacks + rules.

``defaults.py`` the built-in strategies;  ``config.py`` per-tenant configuration (validated,
versioned in the shard);  ``blend.py`` runs a strategy for one slot;  ``ranker.py`` the one
scoring step after candidate generation (identity until a learned ranker is plugged in).
"""
