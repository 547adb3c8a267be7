"""The one interface every recommender implements.

A recommender is a class in its own module of ``server/recommenders/`` registered by name::

    import numpy as np
    from .base import Candidates, Context, Recommender
    from .registry import register

    @register("best_sellers", context=(), description="most sold in the last 30 days")
    class BestSellers(Recommender):
        def fit(self, ds):                       # build time: background thread, once per rebuild
            w = ds.window(ds.fb_kind == PURCHASE, days=30)
            return np.bincount(ds.fb_item[w], minlength=ds.n_items).astype(np.float32)

        def recommend(self, model, ds, ctx, k):   # request time: a few hundred microseconds
            return Candidates.top(model, k, "a best seller")

Adding a module is all it takes: ``registry.load_all()`` imports every module of the package.

Two phases
----------
``fit(ds) -> model``  Build time. Runs in the tenant's background build thread after the
    ``Dataset`` (``dataset.py``) was read from the shard. Return any small object (arrays,
    neighbour lists, a fitted factorisation); keep it compact (memory is per tenant and per
    worker process) and precompute what requests need (e.g. top-50 neighbours per item rather
    than a dense item x item matrix). Returning ``None`` is fine for request-only recommenders.
    An exception here is logged and recorded in ``Model.errors``; the rest of the model builds
    and the recommender is skipped at request time (placements fall back).
    Shared, expensive derivations (co-occurrence, TF-IDF of the catalog...) go through
    ``ds.derived("name", fn)`` so two recommenders build them once.

``recommend(model, ds, ctx, k) -> Candidates``  Request time, on the event loop: no I/O, no
    blocking; numpy on small arrays only. ``model`` is what ``fit`` returned, ``ds`` the dataset
    of the same build, ``ctx`` the request ``Context`` below, ``k`` how many candidates are
    wanted (already inflated for business-rule filtering; return up to ``k``, fewer is fine, an
    empty ``Candidates`` when the recommender has nothing to say, e.g. no seed product).
    Scores: higher is better, any positive scale (the placement normalises each source by its
    maximum before blending). Do NOT apply business rules (stock, exclusions, price band): the
    placement does, once, for all sources. Do exclude the seed items themselves where that is
    the meaning (a product is not "viewed together" with itself); the placement also does.
    Every candidate carries a short human reason ("viewed together with Blue Mug").

``cache_key(ctx) -> hashable | None``  Optional: what of the request the answer depends on
    (e.g. ``()`` for a shop-wide list, the query, the seed items). The placement then keeps
    each answer per model and reuses it for any request with the same key (``Model.answers``,
    bounded LRU, dropped with the model at a rebuild). Default None: never cached. The key must
    hold everything ``recommend`` reads of ``ctx``; returned ``Candidates`` are shared between
    requests, so nobody mutates them.

``context`` (declared with ``register``): which request fields the recommender needs, any of
    "product", "cart", "order", "session", "person", "query", "category", "profile". The
    placement skips a recommender whose needs the request lacks (cheaply, without calling it).

The request ``Context``
-----------------------
Built by ``server/serving.py`` for each slot from the request body and from the shard, read
live (so an event posted a moment ago is in it, whichever worker process stored it):
  tenant, visitor, session, user, locale   as sent (``user`` may be None)
  page_type, placement                      e.g. "detail", "detail_similar"
  product / item                            current product id / its dataset index (-1: unknown)
  category, query                           as sent (may be None)
  cart / cart_items, order / order_items    product ids / their dataset indices (unknown dropped)
  recent                                    list[Recent], newest first: this visitor's (and
                                            logged-in user's) latest product interactions read
                                            from the shard at request time, each with product,
                                            item index, kind (signals.VIEW, CART, PURCHASE ...),
                                            ts, weight (engagement-weighted), in_session flag
  bought                                    {product id: last purchase ts} of this visitor / user
                                            (read-only: from the live state, a ``Bought``)
  person                                    dataset person index of the user or visitor, or -1
  profile                                   the ``users`` row as a dict (gender, age_band,
                                            interests, segment ...) or None
  now_ms, clock_ms, hour, weekday           wall time; tenant clock; visit-time context
  params                                    per-source parameters from the strategy config
  answers                                   the request's memo of source answers (placement)
Helpers: ``ctx.session_items()`` (weighted recent items of this session),
``ctx.seed_items()`` (current product, cart, order, then session items: what "related" means);
as the item sources take them, once per request: ``ctx.session_vectors()``,
``ctx.seed_vectors()`` (``SeedVectors``).

Candidates
----------
``Candidates(items, scores, reasons)``: ``items`` int32 dataset item indices, ``scores``
float32 aligned, ``reasons`` one string for all, a list aligned with items, or a function
item index -> string (called only for the few items finally shown: cheapest for long lists).
Build them with ``Candidates.top(dense_scores, k, reason)`` or ``Candidates.from_pairs``.
Keep request-time work vectorised (numpy over the candidate arrays, not Python loops over
hundreds of candidates): a request has a budget of about a millisecond for all its sources.

A learned ranker (its own issue) plugs in after blending: ``server/placements/ranker.py``
receives every candidate with its per-source scores and returns one score each.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import lt
from collections.abc import Mapping
from typing import Any, Callable, ClassVar, Hashable, NamedTuple, Sequence

import numpy as np

from ..signals import CART, CLICK, PURCHASE, REVIEW, VIEW
from .kernels.topk import lowest_ties
from .kernels import seeds as _seed_kernels

CONTEXT_FIELDS = frozenset({"product", "cart", "order", "session", "person", "query", "category", "profile"})
_INTEREST = frozenset({VIEW, CART, PURCHASE, CLICK, REVIEW})   # kinds that count in session_items
SEEDS = 10   # the seed view the item sources read (``seed_items``' default): what ``seeds_key`` keys on


class Recent(NamedTuple):
    """One recent product interaction of the requesting visitor, read live from the shard."""
    product: str
    item: int            # dataset index, -1 when the product is newer than the model
    kind: int            # server.signals.VIEW / CART / REMOVE / PURCHASE / REVIEW / CLICK
    ts: int
    weight: float        # signal weight (engagement-weighted for views), before time decay
    in_session: bool


@dataclass
class Context:
    tenant: str = ""
    visitor: str | None = None
    session: str | None = None
    user: str | None = None
    locale: str | None = None
    page_type: str = "main"
    placement: str = ""
    product: str | None = None
    item: int = -1
    category: str | None = None
    query: str | None = None
    cart: list[str] = field(default_factory=list)
    cart_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    order: list[str] = field(default_factory=list)
    order_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    recent: list[Recent] = field(default_factory=list)
    bought: dict[str, int] = field(default_factory=dict)
    person: int = -1
    profile: dict | None = None
    now_ms: int = 0
    clock_ms: int = 0
    hour: int = 0
    weekday: int = 0
    params: dict = field(default_factory=dict)
    # one request's memo, set by serving, so that its slots ask each source once (None: no
    # sharing): answers {(name, k, params): Candidates} and the placement's per-source keys
    # (applicable, cache key)
    answers: dict | None = None

    def has(self, need: str) -> bool:
        """Whether the request carries what ``need`` (a ``CONTEXT_FIELDS`` name) asks for."""
        if need == "product":
            return self.item >= 0
        if need == "cart":
            return len(self.cart_items) > 0
        if need == "order":
            return len(self.order_items) > 0
        if need == "session":
            return has_session(self.recent)
        if need == "person":
            return self.person >= 0 or bool(self.recent)
        if need == "query":
            return bool(self.query and self.query.strip())
        if need == "category":
            return bool(self.category)
        if need == "profile":
            return bool(self.profile)
        return True

    def session_items(self, max_items: int = 10, in_session_only: bool = False) -> list[tuple[int, float]]:
        """(item, weight) of the latest distinct products of this visitor, newest first.

        Weight = signal weight x recency rank decay (x 0.8 per step back) x 0.3 for an
        interaction of an earlier visit (this session counts most); removals and impressions
        are skipped. Products unknown to the model are skipped."""
        return list(self._session(max_items, in_session_only))

    def memo(self) -> dict:
        """The request's memo of derived values (session and seed items, the placement's held
        items), keyed by the ids of the request's objects it read: a request's fields are not
        mutated in place once built, and each entry keeps its objects alive, so their ids are
        not reused meanwhile."""
        memo = self.__dict__.get("_session_items")
        if memo is None:
            memo = self.__dict__["_session_items"] = {}
        return memo

    def _session(self, max_items: int, in_session_only: bool) -> tuple:
        """``session_items`` as a tuple, computed once per request; the same tuple for every
        ``max_items`` whose walk adds nothing to a shorter one's (the list ended first: most
        visitors have fewer products than asked for), so that what the request derives of it
        (``SeedVectors``, keyed by the tuple) is made once. A shorter view asked after a longer
        one is that one's tuple when the list ended first, the longer walk's copy where it
        passed ``_CUT`` products when it is ``_CUT``, else a walk of its own. A ``RecentList``'s
        views are its kernel's (``session_vectors``), as pairs."""
        recent = self.recent
        if _walks(recent, max_items):   # (the kernel's walk)
            return self.session_vectors(max_items, in_session_only).pairs()
        memo = self.memo()
        key = (max_items, in_session_only, id(recent), len(recent))
        hit = memo.get(key)
        if hit is not None:
            return hit[0]
        # one walk of the recent list per request, resumed where a shorter one stopped (a
        # request asks for 8 items, then 10, then 20: the walk for 8 is the start of the others)
        wkey = ("walk", in_session_only, id(recent), len(recent))
        walk = memo.get(wkey)
        if walk is None:
            walk = memo[wkey] = _SessionWalk(recent, in_session_only)
        elif walk.max_items > max_items:   # (a cart page asks its seeds for 10, then the session for 8)
            if walk.whole(max_items):   # the longer walk is this one too
                result = walk.result
            elif max_items == _CUT and walk.cut is not None:   # its view where this one stops
                result = tuple([p for p in walk.cut.items() if p[1] > 0.0])
            else:
                walk = memo[wkey] = _SessionWalk(recent, in_session_only)
                result = None
            if result is not None:
                memo[key] = (result, recent)
                return result
        out = walk.extend(max_items)
        result = walk.result
        if result is None:   # (the walk took new interactions)
            result = walk.result = tuple([p for p in out.items() if p[1] > 0.0])   # w > 0 (NaN is not)
        memo[key] = (result, recent)
        return result

    def seed_items(self, max_items: int = SEEDS) -> list[tuple[int, float]]:
        """What "related to this visit" means: the current product (weight 3), cart and order
        items (2 each), then the session's recent items. When the page names products, the
        session only breaks ties (x 0.2): a detail page's complements are the complements of
        THAT product; on a page without products the session items are the seeds."""
        return list(self._seeds(max_items))

    def _seeds(self, max_items: int) -> tuple:
        """``seed_items`` as a tuple, computed once per request."""
        if _walks(self.recent, max_items):   # (the kernel's seeds, or these when it takes no page)
            return self.seed_vectors(max_items).pairs()
        return self._page_seeds(max_items)

    def _page_seeds(self, max_items: int) -> tuple:
        """``_seeds`` in Python, computed once per request."""
        cart, order, recent = self.cart_items, self.order_items, self.recent
        key = ("seeds", max_items, self.item, id(cart), len(cart), id(order), len(order), id(recent), len(recent))
        memo = self.memo()
        hit = memo.get(key)
        if hit is not None:
            return hit[0]
        seeds: dict[int, float] = {}
        if self.item >= 0:
            seeds[self.item] = 3.0
        if len(cart) or len(order):   # (most pages have neither: no numpy calls)
            for i in cart.tolist() + order.tolist():
                seeds[i] = max(seeds.get(i, 0.0), 2.0)
        session = self._session(max_items, False)
        if not seeds and _at_most_2(session):   # the session's items as they are: the same tuple
            result = session
        else:
            scale = 0.2 if seeds else 1.0
            for i, w in session:
                if i not in seeds:
                    seeds[i] = (2.0 if 2.0 < w else w) * scale   # min(w, 2.0) * scale, without a call
            result = tuple(islice(seeds.items(), max_items))
        memo[key] = (result, cart, order, recent)
        return result

    def session_vectors(self, max_items: int = 10, in_session_only: bool = False) -> "SeedVectors":
        """``session_items`` as ``SeedVectors``, made once per request: from the live state's
        columns (``RecentList``) by one ``kernels/seeds.session_seeds`` call, else of
        ``_session``'s tuple."""
        recent = self.recent
        if not (type(recent) is RecentList and recent.size == len(recent) and 0 <= max_items <= _MAX_WALK):   # (_walks)
            return self._vectors_of(self._session(max_items, in_session_only))
        key = (max_items, in_session_only)
        v = recent.views.get(key)
        if v is None:
            walk = _seed_kernels.session_seeds   # (its compiled code called at once, not through ``Kernel``)
            got = (walk.compiled or walk.compile())(recent.columns, max_items, in_session_only)
            v = recent.views[key] = _new_object(SeedVectors)   # (a walked view: see ``SeedVectors.weights64``)
            v.items, v.weights, v.low, v.end, v.positive = got
            v.seeds = v._w64 = None
            v._again = (_seed_kernels.session_weights, recent.columns, max_items, in_session_only)
        return v

    def seed_vectors(self, max_items: int = SEEDS) -> "SeedVectors":
        """``seed_items`` as ``SeedVectors``, made once per request: from the live state's
        columns (``RecentList``) by one ``kernels/seeds.page_seeds`` call, else of ``_seeds``'
        tuple."""
        recent = self.recent
        if not (type(recent) is RecentList and recent.size == len(recent) and 0 <= max_items <= _MAX_WALK):   # (_walks)
            return self._vectors_of(self._seeds(max_items))
        cart, order = self.cart_items, self.order_items
        key = (max_items, self.item, id(cart), id(order))   # (an array's length is not changed in place)
        hit = recent.views.get(key)
        if hit is not None:
            return hit[0]
        seeds = _seed_kernels.page_seeds   # (its compiled code called at once, not through ``Kernel``)
        args = (recent.columns, max_items, self.item, cart if len(cart) else _NO_PAGE, order if len(order) else _NO_PAGE)
        try:   # (no page product: an empty array the kernel takes, the request's may be read-only)
            got = (seeds.compiled or seeds.compile())(*args)
        except (TypeError, OverflowError):   # (page products not as writeable int32 arrays, an item beyond int64)
            return self._vectors_of(self._page_seeds(max_items))
        v = _new_object(SeedVectors)   # (a walked view: see ``SeedVectors.weights64``)
        v.items, v.weights, v.low, v.end, v.positive = got
        v.seeds = v._w64 = None
        v._again = (_seed_kernels.page_weights, *args)
        recent.views[key] = (v, cart, order)   # (keeps them alive: their ids are not reused meanwhile)
        return v

    def _vectors_of(self, seeds: tuple) -> "SeedVectors":
        """``SeedVectors`` of one of the request's memoised seed tuples, made once per request
        (the request's item sources read the same seeds)."""
        memo = self.memo()
        key = ("vectors of", id(seeds))
        hit = memo.get(key)
        if hit is not None and hit[0] is seeds:
            return hit[1]
        v = SeedVectors(seeds)
        memo[key] = (seeds, v)   # (keeps ``seeds`` alive: its id is not reused meanwhile)
        return v


_DECAY = tuple(_seed_kernels.DECAY.tolist())   # the walk's 0.8 ** rank, computed once (64 ranks)
# realtime_personal's session bound, which a cart page asks after the seeds' 10: a longer walk
# keeps its view at the point where the walk for 8 stops (the 9th product), so that one is not
# walked again
_CUT = 8


def _at_most_2(pairs: tuple) -> bool:
    """Whether every weight of (item, weight) ``pairs`` is <= 2.0 (``_seeds``' cap: ``min(w,
    2.0) * 1.0`` is then ``w`` itself)."""
    for _, w in pairs:
        if w > 2.0:
            return False
    return True


_MAX_WALK = _seed_kernels.MAX_ITEMS   # (the views the kernels walk: ``max_items`` up to this)

_NO_PAGE = np.zeros(0, np.int32)      # (``page_seeds``' cart or order: none)
_NO_COLUMNS = np.zeros((0, 3), np.float64)   # (``walk_columns`` of no interaction)


class RecentList(list):
    """``Context.recent`` (a list of ``Recent``) that also holds the interactions the session
    walk reads as ``kernels/seeds`` takes them (``columns``: ``walk_columns``), made when the
    live state is bound (``live.py``), so that a request's seed views are one compiled call
    each (``Context.session_vectors``, ``seed_vectors``), kept in ``views`` (one request's:
    the list is made per request); ``size``: the list's length then (a list changed since is
    walked in Python).

    It holds each interaction as a plain tuple of ``Recent``'s fields (the live state's own:
    the list is a copy of its bound tuple, in C) and gives it as a ``Recent`` when read
    (iteration, indexing, ``copy``, ``repr``): a request reads few of its ~60 interactions as
    ``Recent`` (``has``, ``_held`` and the session walk read them by index, ``recent_rows``;
    the seed views read ``columns``), so most are never made (a ``Recent`` is a tuple
    subclass: made and freed per request, ~60 of them cost ~4 µs). Equal to the list of
    ``Recent`` it stands for (a ``Recent`` equals the tuple of its fields)."""
    __slots__ = ("columns", "size", "views")

    @classmethod
    def of(cls, recent, columns: np.ndarray | None = None) -> "RecentList":
        """``recent`` (``Recent`` or tuples of their fields) with their ``columns``
        (``walk_columns`` when None)."""
        out = cls(recent)
        out.columns, out.size, out.views = walk_columns(out.rows()) if columns is None else columns, len(out), {}
        return out

    def rows(self):
        """The interactions as tuples of ``Recent``'s fields (read by index), in list order."""
        return list.__iter__(self)

    def __iter__(self):
        return map(_new_tuple, repeat(Recent), list.__iter__(self))

    def __reversed__(self):
        return map(_new_tuple, repeat(Recent), list.__reversed__(self))

    def __getitem__(self, i):
        got = list.__getitem__(self, i)
        return list(map(_new_tuple, repeat(Recent), got)) if type(i) is slice else _new_tuple(Recent, got)

    def copy(self) -> list:
        return list(self)

    def __repr__(self) -> str:
        return repr(list(self))


_new_object = object.__new__   # (an object of a class of slots without its ``__init__``: a walked ``SeedVectors``)
_new_tuple = tuple.__new__   # (``_new_tuple(Recent, fields)``: a ``Recent`` without its Python-level ``__new__``, in C)


def has_session(recent) -> bool:
    """``Context.has("session")``: whether ``recent`` holds a product the model knows (a loop,
    not any() over a generator, and ``recent_rows`` inline: asked for most requests)."""
    for r in (list.__iter__(recent) if type(recent) is RecentList else recent):
        if r[1] >= 0:   # (item)
            return True
    return False


def recent_rows(recent):
    """``recent``'s interactions as tuples of ``Recent``'s fields, read by index (a
    ``RecentList``'s without making its ``Recent``)."""
    return recent.rows() if type(recent) is RecentList else recent


class Bought:
    """``Context.bought`` of a live request ({product: newest purchase ts}): a read-only
    mapping over the live state's own dict of the visitor's purchases (``live.py``), which
    is never changed in place (an order makes a new one), with the newest of those ts
    (``newest``, which the live state knows), so that a request need not take the max over
    every purchase (``blend._held``). Not a copy: a copy touches each of a buyer's ~40
    entries twice (made and freed), ~2-3 µs a request, mostly cache misses; read-only, so
    that no request can change what the next one reads. Reads as a dict does (``len``,
    ``in``, ``[]``, ``get``, ``keys``/``values``/``items``, iteration, ``==`` a dict);
    ``size``: its length (as ``newest``, fixed)."""
    __slots__ = ("_d", "newest", "size")

    def __init__(self, d: dict, newest: int | None = None):
        self._d, self.size = d, len(d)
        self.newest = max(d.values(), default=0) if newest is None else newest

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self):
        return iter(self._d)

    def __contains__(self, product) -> bool:
        return product in self._d

    def __getitem__(self, product):
        return self._d[product]

    def get(self, product, default=None):
        return self._d.get(product, default)

    def keys(self):
        return self._d.keys()

    def values(self):
        return self._d.values()

    def items(self):
        return self._d.items()

    def copy(self) -> dict:
        return self._d.copy()

    def __eq__(self, other) -> bool:
        return self._d == (other._d if type(other) is Bought else other)

    __hash__ = None   # (as a dict's)

    def __repr__(self) -> str:
        return f"Bought({self._d!r})"


Mapping.register(Bought)


def newest_purchase(bought) -> int:
    """``max(bought.values())`` (``bought`` not empty), from a ``Bought``'s ``newest``."""
    if type(bought) is Bought:
        return bought.newest
    return max(bought.values())


def _walks(recent, max_items: int) -> bool:
    """Whether the kernels walk the view of ``max_items`` of ``recent``: a ``RecentList``
    unchanged since its columns were made, a bound they take."""
    return type(recent) is RecentList and recent.size == len(recent) and 0 <= max_items <= _MAX_WALK


def walk_columns(recent) -> np.ndarray:
    """The interactions of ``recent`` (``Recent`` or tuples of their fields) that the session
    walk reads whatever its bound (a known product, a kind of interest, not a bounce: the test
    of ``_SessionWalk.extend``), in list order, as [n, 3] float64 rows (item, weight,
    in_session 1.0/0.0): ``kernels/seeds``' columns."""
    rows = [(r[1], r[4], r[5]) for r in recent if r[1] >= 0 and r[2] in _INTEREST and not r[4] < 0.2]
    return np.array(rows, np.float64) if rows else _NO_COLUMNS   # (an array of its own: not a view, ~130 bytes less)


class _SessionWalk:
    """``Context.session_items``' loop over the recent interactions, stopped where the first
    product beyond ``max_items`` appears and resumable from there for a larger ``max_items``:
    ``out`` is then exactly what the loop run from the start with that bound holds."""
    __slots__ = ("recent", "in_session_only", "pos", "out", "rank", "decay", "max_items", "result", "cut")

    def __init__(self, recent: list, in_session_only: bool):
        self.recent, self.in_session_only = recent, in_session_only
        self.pos, self.out, self.rank, self.decay, self.max_items = 0, {}, 0, 1.0, 0
        self.result = None   # ``Context._session``'s tuple of ``out``, None once the walk went on
        self.cut = None      # a copy of ``out`` where the walk for ``_CUT`` products stops, once passed

    def whole(self, max_items: int) -> bool:
        """Whether the walk read the whole list and found at most ``max_items`` products: the
        loop with the bound ``max_items`` then never stops early either, and holds ``out``."""
        return self.pos == len(self.recent) and self.rank <= max_items

    def extend(self, max_items: int) -> dict[int, float]:
        """Walk on with the bound ``max_items`` (>= the last one); item -> weight, newest first."""
        cut = _CUT if self.max_items != _CUT else -1   # (a walk stopped there has its view memoised)
        self.max_items = max_items
        out, rank, decay, only = self.out, self.rank, self.decay, self.in_session_only
        get = out.get
        pos = self.pos
        # (fields by index, not unpacked: ~2x faster per interaction; rank == len(out))
        for r in islice(recent_rows(self.recent), pos, None):
            pos += 1
            item = r[1]
            if item < 0 or r[2] not in _INTEREST or (only and not r[5]) or r[4] < 0.2:  # < 0.2: a bounce
                continue
            w = get(item)
            if w is None:
                if rank >= max_items:
                    pos -= 1   # resumed from this interaction
                    break
                if rank == cut:
                    self.cut = out.copy()
                decay = _DECAY[rank] if rank < 64 else 0.8 ** rank
                rank += 1
                w = 0.0
            out[item] = w + r[4] * decay * (1.0 if r[5] else 0.3)
        if pos != self.pos:
            self.result = None
        self.pos, self.rank, self.decay = pos, rank, decay
        return out


class LazyReasons:
    """A reasons sequence computed per position on demand (``fn(pos) -> str``): a slot shows
    ~8 of a source's ~44 candidates, so only those reasons are ever built."""
    __slots__ = ("fn", "n")

    def __init__(self, fn: Callable[[int], str], n: int):
        self.fn, self.n = fn, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, pos: int) -> str:
        return self.fn(pos)


class ClosestReasons:
    """Reasons by position (a ``Candidates.reasons`` sequence), ``fmt`` naming each candidate's
    closest seed (``closest``, aligned with the candidates), built only for the products shown
    (``Candidates.reason`` reads them without a call of its own), each text once per model
    (``texts``: seed -> text, shared by the requests: ``_common.Neighbours.reason_texts``)."""
    __slots__ = ("fmt", "ds", "closest", "texts")

    def __init__(self, fmt: str, ds, closest: np.ndarray, texts: dict):
        self.fmt, self.ds, self.closest, self.texts = fmt, ds, closest, texts

    def __len__(self) -> int:
        return len(self.closest)

    def __getitem__(self, pos: int) -> str:
        seed = self.closest.item(pos)
        text = self.texts.get(seed)
        return text if text is not None else self.text(seed)

    def text(self, seed: int) -> str:
        """The reason naming ``seed``, made once per model."""
        text = self.texts[seed] = self.fmt.format(self.ds.label(seed))
        return text


class SeedVectors:
    """(item, weight) seeds as ``kernels/sums.neighbour_top`` takes them (``items`` int64,
    ``weights`` float32), with what the sources check before they hand them to it: ``low`` the
    smallest item (0 when none), ``end`` 1 + the largest (0 when none), ``positive``: every
    weight > 0 (NaN is not). ``pairs()``: the seeds as (item, weight) pairs."""
    __slots__ = ("items", "weights", "low", "end", "positive", "seeds", "_w64", "_again")

    def __init__(self, seeds):
        if seeds:
            items, weights = zip(*seeds)
            self.low, self.end = min(items), max(items) + 1
            self.positive = all(map(lt, repeat(0.0), weights))   # (0 < w for each, in C; NaN is not)
        else:
            items = weights = ()
            self.low = self.end = 0
            self.positive = True
        self.items, self.weights = np.array(items, np.int64), np.array(weights, np.float32)
        self.seeds = seeds

    @property
    def weights64(self) -> np.ndarray | None:
        """The float64 weights of walked seeds (``Context.session_vectors`` / ``seed_vectors`` of a
        ``RecentList``: the walk's own, aligned with ``items``; shared by the request's sources,
        not to be written), None for seeds made of pairs (``pairs()`` holds them). Made when first
        asked, by the walk's second kernel (``_again``: ``kernels/seeds.session_weights`` or
        ``page_weights`` and its arguments): the item sources read only the float32 ones, and
        each array a kernel returns costs ~0.4 µs."""
        w = getattr(self, "_w64", None)
        if w is None:
            again = getattr(self, "_again", None)
            if again is not None:
                w = self._w64 = again[0](*again[1:])
        return w

    def pairs(self):
        """The seeds as given, or as a tuple of (item, weight float64) pairs when walked (made
        once)."""
        seeds = self.seeds
        if seeds is None:
            seeds = self.seeds = tuple(zip(self.items.tolist(), self.weights64.tolist()))
        return seeds

    def fits(self, n: int) -> bool:
        """Whether every seed is an item of a table of ``n`` items with a weight > 0 (the
        seeds ``neighbour_top`` takes)."""
        return self.low >= 0 and self.end <= n and self.positive


class RankedScores(NamedTuple):
    scores: np.ndarray      # one score per dataset item
    items: np.ndarray       # the best items, best first (at most 200)
    top_scores: np.ndarray  # their scores


class Candidates:
    """Scored candidate items from one recommender (see the module docstring)."""
    __slots__ = ("items", "scores", "reasons")

    def __init__(self, items: np.ndarray, scores: np.ndarray, reasons: str | Sequence[str] = ""):
        self.items = np.asarray(items, dtype=np.int32)
        self.scores = np.asarray(scores, dtype=np.float32)
        self.reasons = reasons

    def __len__(self) -> int:
        return len(self.items)

    def reason(self, pos: int) -> str:
        r = self.reasons
        if type(r) is ClosestReasons:    # (the item sources': looked up here, one call a product shown)
            seed = r.closest.item(pos)
            text = r.texts.get(seed)
            return text if text is not None else r.text(seed)
        if isinstance(r, str):
            return r
        if callable(r):
            return r(self.items.item(pos))   # (a Python int)
        return r[pos]

    @classmethod
    def of(cls, items: np.ndarray, scores: np.ndarray, reasons) -> "Candidates":
        """``Candidates(items, scores, reasons)`` for ``items`` already int32 and ``scores``
        float32 (a kernel's answer): taken as they are, no conversion asked for."""
        c = cls.__new__(cls)
        c.items, c.scores, c.reasons = items, scores, reasons
        return c

    @classmethod
    def empty(cls) -> "Candidates":
        return cls(np.zeros(0, np.int32), np.zeros(0, np.float32), "")

    @classmethod
    def top(cls, scores: np.ndarray, k: int, reason: str | Callable[[int], str] = "",
            exclude: Sequence[int] | None = None, min_score: float = 0.0) -> "Candidates":
        """The ``k`` best of a dense score vector (one score per dataset item), dropping scores
        <= ``min_score`` and the ``exclude`` indices. ``reason`` is a string or item -> string."""
        if scores is None or len(scores) == 0 or k <= 0:
            return cls.empty()
        s = scores
        if exclude is not None and len(exclude):
            s = scores.copy()
            s[np.asarray(exclude, dtype=np.int64)] = -np.inf
        cand = (s > min_score).nonzero()[0]  # usually a small part of the catalog
        return cls.best(cand, s[cand], k, reason)

    @classmethod
    def best(cls, items: np.ndarray, scores: np.ndarray, k: int, reason: str | Callable[[int], str] = "") -> "Candidates":
        """The ``k`` best of aligned ``items`` and ``scores``, best first (equal scores: the
        earlier position first, ``best_order``)."""
        if k <= 0:
            return cls.empty()
        order = cls.best_order(scores, k)
        return cls(items[order], scores[order], reason)

    @staticmethod
    def best_order(scores: np.ndarray, k: int) -> np.ndarray:
        """The positions of the ``k`` (> 0) best ``scores``, best first; equal scores: the
        earlier position first (the project's tie rule: with positions in item order, the
        lower item), NaN last. A partition picks the k best; which of several scores equal to
        the k-th it keeps is its own (numpy's is SIMD code), so those are then taken in
        position order."""
        neg = -scores   # (ndarray methods: the np.* wrappers cost a microsecond a call)
        if len(scores) <= k:
            return neg.argsort(kind="stable")
        part = neg.argpartition(k - 1)[:k]
        kth = neg[part].max()
        if kth != kth:   # (a NaN among the k best: fewer than k numbers; a stable sort puts NaN last)
            return neg.argsort(kind="stable")[:k]
        part = lowest_ties(scores, part)   # (a tie across the k-th place: the lowest positions)
        part.sort()   # (positions ascending: the stable sort below keeps them so among equal scores)
        return part[neg[part].argsort(kind="stable")]

    @classmethod
    def ranked(cls, scores: np.ndarray, n: int = 200) -> "RankedScores":
        """For ``fit``: a score vector with its best ``n`` items presorted, so that
        ``Candidates.first(ranked, k)`` at request time is a slice (statistical recommenders)."""
        c = cls.top(scores, n)
        return RankedScores(scores, c.items, c.scores)

    @classmethod
    def first(cls, ranked: "RankedScores", k: int, reason="") -> "Candidates":
        if k > len(ranked.items) and len(ranked.items) == 200:
            return cls.top(ranked.scores, k, reason)
        return cls(ranked.items[:k], ranked.top_scores[:k], reason)

    @classmethod
    def from_pairs(cls, pairs: dict[int, float] | Sequence[tuple[int, float]], k: int,
                   reason: str | Callable[[int], str] = "") -> "Candidates":
        items = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)
        items = [p for p in items if p[1] > 0]
        items.sort(key=lambda p: -p[1])
        items = items[:k]
        if not items:
            return cls.empty()
        idx = [p[0] for p in items]
        return cls(np.array(idx, np.int32), np.array([p[1] for p in items], np.float32), reason)


class Recommender:
    """Base class; see the module docstring. Subclasses set nothing by hand: ``register`` sets
    ``name``, ``context`` and ``description``."""
    name: ClassVar[str] = ""
    context: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""
    # True: ``recommend`` keeps its answers itself for the model's life (a dict read per
    # call: category_top's per category, time_of_day's per hour), so the placement does not
    # look them up in, nor offer them to, the model's answer cache (``Model.answers``, whose
    # get and put hash the source's key in Python); its ``cache_key`` still keys the pools
    keeps_answers: ClassVar[bool] = False

    def fit(self, ds) -> Any:
        return None

    def recommend(self, model: Any, ds, ctx: Context, k: int) -> Candidates:
        raise NotImplementedError

    def applicable(self, ctx: Context) -> bool:
        for need in self.context:   # (most have none or one: no generator per call)
            if not ctx.has(need):
                return False
        return True

    def cache_key(self, ctx: Context) -> Hashable | None:
        """What of the request this recommender's answer depends on, as a hashable key, or
        None when the answer must not be cached (the default: a recommender that reads the
        person, their whole history or the clock). The placement keeps the answers of
        (name, k, params, key) per model (``Model.answers``) and reuses one whenever a
        request gives the same key: the key must hold EVERYTHING ``recommend`` reads of
        ``ctx`` (e.g. ``()`` for a shop-wide list, the query, ``tuple(ctx.seed_items())``)."""
        return None


def seeds_key(ctx: Context) -> tuple:
    """``cache_key`` of a recommender that reads only ``ctx.seed_items()`` (the default view, ``SEEDS``)."""
    return ctx._seeds(SEEDS)
