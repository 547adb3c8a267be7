"""The learned two-stage ranker: candidates from the cheap recommenders, then a small neural
model that scores the few hundred candidates of a slot with every available signal.

Modules: ``features`` (what the model sees), ``mlp`` (the model and its training loop),
``history`` (the tenant's data before a cut, for leakage-free training), ``pool`` (candidate
pools of past requests), ``train`` (queries from the log and from shown recommendations,
training, the guard), ``ranker`` (the object behind the engine's ranker hook). docs/quality.md
has the results and the reasons of the design.

``install_app(app)`` (or ``install(open_conn=None)``) puts the learned ranker in the engine's hook
(``server.placements.ranker.set_ranker``); without it the blend ranks, as before.
"""
from __future__ import annotations


def install(open_conn=None, train: bool = True):
    from ..placements.ranker import set_ranker
    from .ranker import LearnedRanker
    r = LearnedRanker(open_conn=open_conn, train=train)
    set_ranker(r)
    return r


def install_app(app):
    """``install`` for the server: click logs are read from the tenant's shard (read-only)."""
    def open_conn(slug: str):
        tenant = app.state.registry.get(slug)
        if tenant is None:
            return None
        return app.state.shards.get(tenant).connect_read()
    # under the builder process the models arrive with their ranker trained: no training here
    return install(open_conn, train=not app.state.settings.sidecar("builder"))
