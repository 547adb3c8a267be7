"""The learned ranker in the engine's one scoring step (``server/placements/ranker.py`` hook).

``LearnedRanker.rank(model, ctx, cands)``: if the tenant's current model has a trained ranker
that passed the guard for ``ctx.placement``, the blend's top ``POOL`` candidates are scored by
the MLP and put first in its order (the rest follow in blend order); otherwise the blend order
is returned unchanged. The ranker of a model lives on the model (``model.learned_ranker``),
so it is per tenant and per build, and goes away with the model.

Training is in the background: the first request that meets a model without a ranker queues
its training on one daemon thread (``train.train_ranker``; a request never waits), while the
tenant's previous ranker (if it passed its guard) keeps serving. Each trained ranker has a
version (tenant, counter, data clock); ``status(slug)`` lists the last ones with their guard
results. A failed training is logged and the blend keeps serving.
"""
from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque

import numpy as np

from .features import features
from .train import POOL, RankerState, train_ranker

log = logging.getLogger("funnelrec.ranking")

_PENDING = object()


def blend_order(cands) -> np.ndarray:
    return np.lexsort((cands.items, -cands.score))


def ranked_order(state: RankerState, model, ctx, cands) -> np.ndarray:
    order = blend_order(cands)
    head = order[:POOL]
    sub = type(cands)(cands.items[head], cands.score[head], cands.per_source[head], cands.sources)
    X = features(state.space, model, ctx, sub)
    s = state.mlp.score(X)
    return np.concatenate([head[np.argsort(-s, kind="stable")], order[POOL:]])


class LearnedRanker:
    name = "learned"

    def cache_token(self, model) -> str | None:
        """The ranker version serving ``model``: part of the engine's result-cache key."""
        return cache_token(model)

    def __init__(self, open_conn=None, min_feedback: int = 200, train: bool = True):
        self.open_conn = open_conn          # slug -> sqlite3 connection (click logs), or None
        self.min_feedback = min_feedback
        self.train = train                  # False: the builder process trains (server/builder.py)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ranker-train")
        self._lock = threading.Lock()
        self._last: dict[str, RankerState] = {}
        self._history: dict[str, deque] = {}

    def _state(self, model, ctx) -> RankerState | None:
        st = getattr(model, "learned_ranker", None)
        if not self.train:  # the model came from the builder process with its ranker, if any
            return st if isinstance(st, RankerState) else None
        if st is None:
            with self._lock:
                if getattr(model, "learned_ranker", None) is None:
                    model.learned_ranker = _PENDING
                    if model.ds.n_feedback >= self.min_feedback:
                        self._executor.submit(self._train, model, ctx.tenant)
            st = _PENDING
        if st is _PENDING:
            return self._last.get(ctx.tenant)
        return st

    def _train(self, model, slug: str) -> None:
        conn = None
        try:
            if self.open_conn is not None:
                try:
                    conn = self.open_conn(slug)
                except Exception:
                    conn = None
            state = train_ranker(model, conn=conn, tenant=slug)
            model.learned_ranker = state
            self._last[slug] = state
            self._history.setdefault(slug, deque(maxlen=10)).append(
                {"version": state.version, "trained_at": state.trained_at, "serving": state.serving,
                 "guard": state.guard, "seconds": state.info.get("seconds")})
            log.info("ranker trained", extra={"tenant": slug, "version": state.version, "serving": state.serving,
                                              "seconds": state.info.get("seconds")})
        except Exception as exc:
            model.learned_ranker = _Failed(repr(exc))
            self._last.pop(slug, None)
            log.warning("ranker training failed; the blend serves", extra={"tenant": slug, "error": repr(exc)})
        finally:
            if conn is not None:
                conn.close()

    def serves(self, model, ctx) -> bool:
        """Would ``rank`` re-order this slot? (False: the blend order, which a pool keeps.)"""
        st = self._state(model, ctx)
        return isinstance(st, RankerState) and ctx.placement in st.serving

    def rank(self, model, ctx, cands):
        if not hasattr(cands, "per_source"):  # an engine with the older dict pool
            return sorted(cands, key=lambda i: -cands[i].score)
        st = self._state(model, ctx)
        if not isinstance(st, RankerState) or ctx.placement not in st.serving or len(cands.items) < 2:
            return blend_order(cands)
        try:
            return ranked_order(st, model, ctx, cands)
        except Exception as exc:  # never break a slot
            log.warning("ranker failed at request time; blend order", extra={"error": repr(exc)})
            return blend_order(cands)

    def status(self, slug: str) -> dict:
        last = self._last.get(slug)
        return {"serving_version": last.version if last else None, "serving": last.serving if last else [],
                "history": list(self._history.get(slug, ()))}

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Tests: wait for queued trainings."""
        self._executor.submit(lambda: None).result(timeout)


class _Failed:
    def __init__(self, error: str):
        self.error = error
        self.at = time.time()


class EvalRanker:
    """For the offline evaluation: always ranks with ``state`` on its trained placements
    (the guard's verdict is reported, not applied), so the ranker itself is measured."""
    name = "learned-eval"

    def __init__(self, state: RankerState):
        self.state = state

    def rank(self, model, ctx, cands):
        if ctx.placement not in self.state.placements or len(cands.items) < 2:
            return blend_order(cands)
        return ranked_order(self.state, model, ctx, cands)


def cache_token(model) -> str | None:
    """What a result cache must key on besides the model build: the version of the ranker
    serving this model (None while the blend serves)."""
    st = getattr(model, "learned_ranker", None)
    return st.version if isinstance(st, RankerState) else None
