"""Neighbour-table queries: a neighbour-sum source's request as data (private: not a recommender).

A neighbour-sum source (realtime_personal, item_cf, viewed_together, bought_together,
content_based with precomputed rows) answers a request with one ``kernels/sums.neighbour_top``
call over one or two neighbour tables. Its ``query(model, ds, ctx, k)`` says which call: a
``TableQuery`` (the tables, their mix, the seeds and weights, ``more`` seeds, ``drop``, the
reason's format), ``NOTHING`` (its answer is empty: no seed), or None (not describable as a
table query here, e.g. a seed out of range: its ``recommend`` computes the answer otherwise).
Its ``recommend`` is ``query`` then ``TableQuery.answer`` (one code path for the arguments);
a slot that asks several such sources hands their queries to one compiled call with the blend
and the selection (``placements/kernels.slot_select``, ``blend._fused``), which computes the
same answers with the same kernel.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from .base import Candidates, ClosestReasons
from .kernels.sums import NO_MORE, neighbour_top

NO_DROP = np.zeros(0, np.int64)


class _Fields(NamedTuple):
    a: Any
    b: Any
    mix_a: float
    mix_b: float
    seeds: np.ndarray
    weights: np.ndarray
    more: np.ndarray
    more_w: np.ndarray
    drop: np.ndarray
    fmt: str
    texts: dict


class TableQuery(_Fields):
    """``neighbour_top``'s arguments for one source's request, but ``k``: table ``a``
    (``_common.Neighbours``) and ``b`` (None: ``a`` alone, ``mix_b`` 0), mixed ``mix_a`` and
    ``mix_b``; ``seeds`` (int64, all in range) and ``weights`` (float32, > 0); ``more`` and
    ``more_w`` (``NO_MORE``: none); ``drop`` (int64); the reason ``fmt`` naming the closest
    seed and ``texts``, the model's memo of its texts (``Neighbours.reason_texts``).

    A tuple of those fields (read by name), so that a source makes its query in one C call,
    ``query_of(fields)`` (~0.15 µs; an object of slots set one by one cost ~0.5); equal and
    hashed by identity, as an object (its arrays are not compared)."""
    __slots__ = ()

    def __new__(cls, a, seeds: np.ndarray, weights: np.ndarray, fmt: str, texts: dict, b=None,
                mix: tuple[float, float] = (1.0, 0.0), more: tuple = NO_MORE, drop: np.ndarray = NO_DROP):
        return tuple.__new__(cls, (a, b, *mix, seeds, weights, *more, drop, fmt, texts))

    __eq__, __ne__, __hash__ = object.__eq__, object.__ne__, object.__hash__

    @classmethod
    def of(cls, a, b, mix_a: float, mix_b: float, seeds: np.ndarray, weights: np.ndarray, more: np.ndarray,
           more_w: np.ndarray, drop: np.ndarray, fmt: str, texts: dict) -> "TableQuery":
        """A query of all its fields as they are (``__new__`` without its defaults; ``query_of``
        with them as a tuple, without this call)."""
        return tuple.__new__(cls, (a, b, mix_a, mix_b, seeds, weights, more, more_w, drop, fmt, texts))

    def answer(self, k: int, ds) -> Candidates:
        """The source's answer: one ``neighbour_top`` call, each reason naming the closest seed."""
        a = self.a.table()
        b = a if self.b is None else self.b.table()
        items, scores, closest = neighbour_top(*a, *b, self.mix_a, self.mix_b, self.seeds, self.weights, self.more,
                                               self.more_w, self.drop, k)
        return Candidates.of(items, scores, ClosestReasons(self.fmt, ds, closest, self.texts))

    def reason(self, ds, seed: int) -> str:
        """The reason naming ``seed`` (``ClosestReasons``' text, from the same memo)."""
        text = self.texts.get(seed)
        if text is None:
            text = self.texts[seed] = self.fmt.format(ds.label(seed))
        return text


query_of = functools.partial(tuple.__new__, TableQuery)
"""``TableQuery.of(*fields)`` as ``query_of(fields)``: one C call (the sources' per-request constructor)."""


class QuerySpec:
    """What a table source's ``query`` reads of its fitted state, made once per model and
    strategy (``query_spec(model)``, ``blend._Fusion``), for a ``slot_select`` call that walks
    the request's seeds itself (``kernels/seeds.walk_view``) instead of being handed them:
    tables ``a`` and ``b`` (None: ``a`` alone), their mix, the view (``walk``: ``walk_code``
    of the session's or the page's seeds, whether the current product is dropped, whether a
    weight not > 0 refuses it), the reason's ``fmt`` and ``texts`` (as ``TableQuery``'s), and
    ``top``: item_cf's person's top items (``(top_idx, top_w, top_ok)``, None for the others),
    whose row for the request is its ``more`` (``more``). A request's answer is exactly its
    ``query``'s: the same view, checked as it checks it (a refused view and a person whose top
    items are not all > 0 take ``query``)."""
    __slots__ = ("a", "b", "mix_a", "mix_b", "walk", "fmt", "texts", "top")

    def __init__(self, a, walk: int, fmt: str, texts: dict, b=None, mix: tuple[float, float] = (1.0, 0.0), top=None):
        self.a, self.b, self.walk, self.fmt, self.texts, self.top = a, b, walk, fmt, texts, top
        self.mix_a, self.mix_b = mix

    def more(self, person: int) -> tuple | None:
        """The request's ``more`` seeds (``NO_MORE`` without ``top``), None when its ``query``
        is to answer (a person whose top items do not all weigh > 0: merged in Python)."""
        top = self.top
        if top is None:
            return NO_MORE
        top_idx, top_w, top_ok = top
        if not 0 <= person < len(top_idx):
            return NO_MORE
        if top_ok[person]:
            return top_idx[person], top_w[person]
        return None

    reason = TableQuery.reason


class _Nothing:
    """``NOTHING``: a query whose answer is empty (no seed)."""
    __slots__ = ()

    def answer(self, k: int, ds) -> Candidates:
        return Candidates.empty()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING = _Nothing()
