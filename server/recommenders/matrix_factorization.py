"""Matrix factorisation: implicit-feedback ALS (Hu, Koren & Volinsky) over the person x product
matrix of engagement-weighted, time-decayed feedback (``kernels/als.py``).

Fit: 48 factors, 6 alternating sweeps of 2 conjugate-gradient steps each (vectorised; 8 x 3
gave the same accuracy at 1.8x the time), confidence
``1 + alpha·r`` with ``alpha = 6 / median(r)`` (a typical cell gets confidence 7 whatever the
scale of the shop's weights: purchase-heavy logs have large ``r``, view logs ``r`` ~ 1),
regularisation 1.0; deterministic (seed 0). Chosen from small grids on two time splits:
online-retail next basket (recall@20 about 0.30 against 0.11 for popularity) and diginetica
next view in session (hit rate@20 about 0.43; a fixed alpha of 2 gave 0.37 there). Request: a known person without new activity uses
their trained vector (the fit shortlists each person's best 128 items and, up to RANKED_CELLS,
ranks them with the request's own arithmetic, so the request reads its answer instead of scoring
the whole catalog); anyone else (a new visitor, or a person whose live session added
products) is *folded in*: their vector is solved exactly from their items in one 48x48 solve,
so a session's first clicks already steer it. Products the visitor already has CAN be returned
(repeat purchases are a large share of real baskets; the placement's rules decide what to
exclude); only the current product is left out. The reason names the visitor's product
closest (in factor space) to the candidate.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._person import live_items, merge_row, positive_rows
from .base import Candidates, RecentList, Recommender
from .kernels.als import ALSParams, ImplicitALS
from .kernels.factors import catalog_top, closest_seed, closest_seeds, known_answer_i32, known_answer_u16, strongest
from .kernels.sums import best_positive
from .registry import register

PARAMS = ALSParams(factors=48, regularization=1.0, alpha=2.0, iterations=6, cg_steps=2,
                   confidence="linear", seed=0)
TYPICAL_CONFIDENCE = 6.0   # extra confidence of a median cell: alpha = 6 / median weight


SHORTLIST = 128  # per person, the best items of the trained vector (fit): a request for k < 128 needs no full sort
RANKED_CELLS = 200_000_000  # persons x items up to which the fit also ranks each shortlist (one
                            # matrix-vector product per person: ~1 s at this size; the bench/serve
                            # tenant, 21k persons x 3.7k items, takes 0.44 s)
REASON_SEEDS = 20   # the visitor's items of largest weight a reason may name
RANK_BLOCK = 16_384  # persons ranked per sort: ~3 KB of temporaries each, ~50 MB a block


def person_candidates(als) -> np.ndarray | None:
    """Per person, the SHORTLIST items with the highest trained scores (unordered; uint16 when
    the catalog allows), computed in blocks of persons. Requests re-score these exactly with
    the person's vector; only the choice of the shortlist uses the blocked product."""
    U, Y = als.user_factors, als.item_factors
    if als.n_items <= SHORTLIST or not len(U):
        return None
    out = np.empty((len(U), SHORTLIST), np.uint16 if als.n_items <= 65535 else np.int32)
    for a in range(0, len(U), 1024):
        S = U[a:a + 1024] @ Y.T
        out[a:a + 1024] = np.argpartition(-S, SHORTLIST - 1, axis=1)[:, :SHORTLIST]
    return out


def ranked_shortlists(als, shortlist: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per person, the shortlist ordered as a request ranks it (best score first, ties: lower
    item) and its scores, computed as a request computes them: one matrix-vector product per
    person (the blocked product of ``person_candidates`` rounds differently), so a request of a
    trained person reads its answer instead of scoring the catalog. None above RANKED_CELLS."""
    if shortlist is None or len(shortlist) * als.n_items > RANKED_CELLS:
        return None
    U = als.user_factors
    trained = np.flatnonzero(U.any(axis=1))
    items = shortlist.copy()
    scores = np.zeros(shortlist.shape, np.float32)   # a zero vector's row: never read (not trained)
    # in blocks of persons: a small catalogue allows millions of persons under RANKED_CELLS, and
    # the sort's temporaries over all of them at once would be gigabytes
    for a in range(0, len(trained), RANK_BLOCK):
        rows = trained[a:a + RANK_BLOCK]
        s = np.empty((len(rows), shortlist.shape[1]), np.float32)
        for r, p in enumerate(rows.tolist()):      # the products: most of the time
            s[r] = als.scores(U[p])[shortlist[p]]
        short = shortlist[rows]
        order = np.lexsort((short, -s), axis=-1)      # each row by score descending, then item
        items[rows] = np.take_along_axis(short, order, 1)
        scores[rows] = np.take_along_axis(s, order, 1)
    return items, scores


_F32 = np.dtype(np.float32)   # (a dtype object: ``view`` converts a type on every call)
MAX_LIVE = 20   # the session's latest products a visitor's live items hold (``_person.live_items``)
_NO_LIVE = np.zeros(0, np.int64), np.zeros(0, np.float64)
_NO_COLUMNS = np.zeros((0, 3), np.float64)


class _Known:
    """What the known person's kernel call (``factors.known_answer``) reads of a model and its
    dataset, made once per model (``_known``): the compiled call (None: no shortcut) and the
    model's arguments (the dataset's item count, its feedback rows ``positive_rows``, the
    trained flags, the ranked shortlists)."""
    __slots__ = ("model", "call", "args")

    def __init__(self, model, call, args):
        self.model, self.call, self.args = model, call, args


def _known(model, ds) -> _Known | None:
    """``model``'s ``_Known`` with ``ds`` (kept with the dataset: the model of its build), or
    None when it has no ranked shortlists for the dataset's items or the feedback rows are not
    as the kernel takes them (then every request scores)."""
    holder = ds.derived("matrix_factorization known", _holder)
    got = holder[0]
    if got is None or got.model is not model:
        als = model[0]
        ranked = model[3] if len(model) > 3 else None   # (a model pickled before the ranking)
        rows = positive_rows(ds) if ranked is not None and als.n_items == ds.n_items else None
        if rows is None:
            got = _Known(model, None, None)
        else:
            kern = known_answer_u16 if ranked[0].dtype == np.uint16 else known_answer_i32
            got = _Known(model, kern.compiled or kern.compile(), (ds.n_items, *rows, als.trained_flags(), *ranked))
        holder[0] = got
    return got if got.call is not None else None


def _holder(ds) -> list:
    return [None]


def _known_answer(known: _Known, ds, ctx, k: int) -> tuple[np.ndarray | None, tuple | None]:
    """The answer of a known person ``ctx.person`` without anything new (the request's live
    items all in their model row) and with a trained vector, in one kernel call
    (``factors.known_answer``: what ``_scored_top`` gives with their vector and shortlist, and
    the reason's seeds, packed), or None when the request is not that case (or ``k`` is not
    below the shortlist's length): the caller scores; and ``live_items``' answer when it was
    read. On a page without products the kernel walks the session itself from the live
    state's columns (what ``live_items`` reads there: ``Context.session_vectors(MAX_LIVE)``),
    else it takes ``live_items``' answer."""
    recent = ctx.recent
    item = ctx.item
    if item < 0 and not len(ctx.cart_items) and not len(ctx.order_items) and type(recent) is RecentList \
            and recent.size == len(recent):
        packed = known.call(recent.columns, MAX_LIVE, *_NO_LIVE, *known.args, ctx.person, k, item, REASON_SEEDS)
        return (packed if packed.item(0) >= 0 else None), None
    live = live_items(ds, ctx, MAX_LIVE)
    packed = known.call(_NO_COLUMNS, -1, *live, *known.args, ctx.person, k, item, REASON_SEEDS)
    return (packed if packed.item(0) >= 0 else None), live


def _scored_top(als, vec: np.ndarray, short: np.ndarray | None, k: int, item: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best positive items by ``vec``'s scores without ``item`` and their scores, best
    first (equal scores: the lower item): among ``short`` (a trained person's shortlist), else
    the catalog (an infinite or NaN score counts as 0)."""
    scores = als.scores(vec).astype(np.float32, copy=False)   # a new array: ours to change
    if short is None:
        if 0 <= item < als.n_items:
            scores[item] = -np.inf
        # the whole catalog in one kernel call (no partition first)
        return catalog_top(scores, k, True)
    # the person's trained vector: its best SHORTLIST items were found at fit time (k + 1 of
    # them are enough with the current product left out); exact scores from above
    cand = short.astype(np.int64)
    cand = cand[cand != item]
    cs = scores[cand]
    pos = best_positive(cs, cand, k, False)
    return cand[pos].astype(np.int32), cs[pos]


@register("matrix_factorization",
          description="predicted preference from matrix factorisation (implicit ALS)")
class MatrixFactorization(Recommender):
    def fit(self, ds):
        if ds.R.nnz == 0:
            return None
        med = float(np.median(ds.R.data[ds.R.data > 0])) if ds.R.nnz else 1.0
        als = ImplicitALS(replace(PARAMS, alpha=TYPICAL_CONFIDENCE / max(med, 1e-6))).fit(ds.R)
        Y = als.item_factors
        norms = np.linalg.norm(Y, axis=1).astype(np.float32)
        shortlist = person_candidates(als)
        return als, norms, shortlist, ranked_shortlists(als, shortlist)

    def recommend(self, model, ds, ctx, k):
        if model is None:
            return Candidates.empty()
        live = None
        known = _known(model, ds)
        if known is not None:
            packed, live = _known_answer(known, ds, ctx, k)
            if packed is not None:   # (the top and the reason's seeds, one array)
                n = packed.item(0)
                if not n:
                    return Candidates.empty()
                cand = packed[2:2 + n]
                return Candidates.of(cand, packed[2 + n:2 + 2 * n].view(_F32),
                                     _Reasons(ds, model[0].item_factors, model[1], cand, packed))
        als, norms, shortlist = model[:3]
        p = ctx.person
        items_in, weights_in, has_live = visitor = merge_row(ds, p, *(live or live_items(ds, ctx)))
        if als.n_items < ds.n_items:      # (the model's items are the dataset's: never, in a build)
            known = items_in < als.n_items
            items_in, weights_in = items_in[known], weights_in[known]
            visitor = (items_in, weights_in)
        if len(items_in) == 0:
            return Candidates.empty()
        trained = 0 <= p < len(als.user_factors) and not has_live and als.trained(p)
        if trained:
            vec = als.user_factors[p]                 # not all zero (checked above)
        else:
            vec = als.fold_in(items_in, weights_in)
            if not vec.any():
                return Candidates.empty()
        short = shortlist[p] if trained and shortlist is not None and k < shortlist.shape[1] else None
        cand, cs = _scored_top(als, vec, short, k, ctx.item)
        if not len(cand):
            return Candidates.empty()
        # reason: the visitor's item nearest to each candidate (cosine of factors), for the
        # products the placement shows (a few of the ~44)
        return Candidates.of(cand, cs, _Reasons(ds, als.item_factors, norms, cand, visitor))


class _Reasons:
    """matrix_factorization's reasons by position: the visitor's item (of their ``REASON_SEEDS``
    strongest: ``known_answer``'s, packed after its top, or found on the first reason asked
    from the visitor's items and weights) of largest cosine with the candidate, one kernel call
    a reason (``factors.closest_seed``); where that cannot tell two seeds apart within numpy's
    rounding (or the factors are not as a fit makes them), numpy's matmul of every candidate
    and seed decides (the answer before: ``closest_seeds`` of ``Y[cand] @ Y[seeds].T``), once
    per answer. Each seed's text is made once per dataset (``_texts``)."""
    __slots__ = ("ds", "Y", "norms", "cand", "visitor", "seeds", "numpy", "texts")

    def __init__(self, ds, Y, norms, cand, visitor):
        """``visitor``: the visitor's (items, weights), or ``known_answer``'s packed answer."""
        self.ds, self.Y, self.norms, self.cand, self.visitor = ds, Y, norms, cand, visitor
        self.seeds = self.numpy = self.texts = None

    def __len__(self) -> int:
        return len(self.cand)

    def __getitem__(self, pos: int) -> str:
        seeds = self.seeds
        if seeds is None:
            v = self.visitor
            if type(v) is tuple:
                seeds = strongest(v[0], v[1], REASON_SEEDS).astype(np.int32)
            else:    # (the known person's: after the packed top, read in place)
                seeds = v[2 + 2 * len(self.cand):]
            self.seeds, self.texts = seeds, self.ds.derived("matrix_factorization reasons", _texts)
        kern = closest_seed
        try:   # (its compiled dispatcher when compiled: no ``Kernel.__call__`` in between)
            seed = (getattr(kern, "compiled", None) or kern)(self.Y, self.norms, self.cand.item(pos), seeds)
        except TypeError:   # (factors the kernel does not take: not float32 rows, as a fit makes them)
            seed = -2
        if seed == -2:
            if self.numpy is None:
                Y = self.Y
                self.numpy = closest_seeds(Y[self.cand] @ Y[seeds].T, self.norms, self.cand,
                                           seeds.astype(np.int64)).tolist()
            seed = self.numpy[pos]
        if seed < 0:
            return "picked for you"
        text = self.texts.get(seed)
        if text is None:
            text = self.texts[seed] = f"picked for you (because of {self.ds.label(seed)})"
        return text


def _texts(ds) -> dict:
    """A dataset's reason texts (seed -> text), made as requests name the seeds."""
    return {}
