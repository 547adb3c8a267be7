"""Run one placement strategy for one slot: candidates -> blend -> rank -> rules -> fallbacks.

1. every source recommender that is registered, fitted and applicable to the request gives up
   to ``k`` candidates; each source's scores are divided by its maximum and multiplied by its
   weight; a candidate's score is the sum over sources, its reason the reason of the source
   that contributed most;
2. boosts multiply the blended score; the ranker (``ranker.py``) orders the pool;
3. the rules (``server/rules.py``) filter: stock, exclusions, category, price band, recently
   bought (buy_again exempt), diversity caps, products already shown in an earlier slot;
4. while the slot is short, each fallback recommender in turn adds its candidates after them;
5. the last net is the catalog by all-time popularity then newness: never empty while the
   rules allow any product, never random;
6. pins are put at their positions.

What a slot reads of its strategy and rules (the sources with their weights and keys, the
rules' mask, caps, held-item rules, boosts, pins) is planned once per model, strategy and
rule values (``SlotPlan``); a request does what depends on it: the sources' keys and
answers (the request's memo, the model's answer and pool caches), then steps 1-3 in one
compiled call (``kernels.blend_select``: the blend, its order, the rules' mask with the
request's product and cart, held items, the page's products, the caps) when the slot is in
the blend order without boosts; otherwise ``kernels.blend_sources`` then the ranker then
``kernels.select_pool``. Step 5 is ``kernels.catalog_net``. Each is exact to the numpy/Python
code it replaced. A slot in the blend order without boosts whose strategy has neighbour-sum
sources (their ``query``: ``recommenders/_tables.TableQuery``) computes their answers in that
same call too (``_fused``, ``kernels.slot_select``): Python asks the queries and the other
sources' answers, the call does the sums, the blend and the selection.
"""
from __future__ import annotations

import logging
import threading
from itertools import compress, repeat
from operator import ge, itemgetter

import numpy as np

from .. import rules as R
from ..recommenders._common import popularity
from ..recommenders._tables import NO_DROP, NOTHING
from ..recommenders.base import Candidates, Context, Recommender, RecentList, newest_purchase, recent_rows
from ..signals import CART, PURCHASE, VIEW
from . import kernels as K
from .ranker import BlendRanker, CandidateSet, get_ranker

log = logging.getLogger("funnelrec.placements")


def catalog_order(ds) -> tuple[np.ndarray, np.ndarray]:
    """All catalog products, most popular (all time, decayed) first, then newest: the last net
    (an index array, intp: an int32 one is cast on every fancy index)."""
    def build(ds):
        if ds.n_items == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.float32)
        pop = popularity(ds, (VIEW, CART, PURCHASE), half_life_days=90.0).astype(np.float64)
        created = ds.created_at.astype(np.float64)
        span = max(created.max() - created.min(), 1.0)
        score = pop + 1e-3 * (created - created.min()) / span
        order = np.lexsort((np.arange(ds.n_items), -score))
        order = order[ds.in_catalog[order]]
        return order, score[order].astype(np.float32)
    return ds.derived("catalog_order", build)


_MISS = object()
_ASKED = object()   # ctx.answers' entries of table queries computed: (_ASKED, (_KEYS, name, params), k) -> (output, query's place, query)
_NA = ("not applicable",)   # a source the request cannot use: part of a pool key as such
_KEYS = object()   # ctx.answers' entries of source keys: (_KEYS, name, params) -> (rec, key)


def _source_key(model, name: str, ctx: Context, pr=_MISS, mkey=None):
    """(recommender or None when it does not apply, its answer-cache key or None). Kept in the
    request's memo (``ctx.answers``) for the request's other slots: what ``applicable`` and
    ``cache_key`` read of the request is the same in every slot (the memo's answers rely on it).
    ``pr``, ``mkey``: the request's params as in the keys and the memo key, when known (a
    ``SlotPlan``'s source has them made once)."""
    if pr is _MISS:
        pr = repr(ctx.params) if ctx.params else None
    memo = ctx.answers
    if memo is None:
        return _key(model, name, pr, ctx)
    if mkey is None:
        mkey = (_KEYS, name, pr)
    hit = memo.get(mkey)
    if hit is None:
        hit = memo[mkey] = _key(model, name, pr, ctx)
    return hit


def _key(model, name: str, pr, ctx: Context):
    """``_source_key`` without the memo; ``pr``: the request's params as in the keys."""
    rec = model.recommenders.get(name)
    if rec is None or name not in model.fitted or not rec.applicable(ctx):
        return _NOT
    try:
        key = rec.cache_key(ctx)
        key = None if key is None else SourceKey((name, pr, key))
    except Exception:  # a key that cannot be computed (or hashed): the answer is computed, not cached
        key = None
    return rec, key


_NOT = (None, _NA)   # (_source_key of a source that does not apply)


class SourceKey:
    """A cache key hashed once: a source's answer key, (name, params, ``cache_key``), or a
    pool's key (its sources' keys and weights). The answer and pool caches and the request's
    slots hash it several times, and a session's seeds cost ~0.4 µs a hash. Equal when the keys are."""
    __slots__ = ("key", "hash")

    def __init__(self, key):
        self.key, self.hash = key, hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other) -> bool:
        return type(other) is SourceKey and self.hash == other.hash and self.key == other.key

    def __repr__(self) -> str:
        return f"SourceKey({self.key!r})"


def _call(model, name: str, ctx: Context, k: int, rec=_MISS, key=None, pr=_MISS) -> Candidates | None:
    """``name``'s answer for this request: from the request's memo (slots of one request share
    it), the model's answer cache (``rec.cache_key``), or computed. ``rec``, ``key``: its
    ``_source_key`` when known; ``pr``: the request's params as in the keys, when known."""
    if pr is _MISS:
        pr = repr(ctx.params) if ctx.params else None
    if rec is _MISS:
        rec, key = _source_key(model, name, ctx)
    if rec is None:
        return None
    memo = ctx.answers
    if memo is not None:  # slots of one request share a source's answer (e.g. item_cf on a detail page)
        mkey = (name, k, pr)
        c = memo.get(mkey, _MISS)
        if c is not _MISS:
            return c
    if key is not None and rec.keeps_answers:   # (its own answers: no second cache)
        key = None
    if key is not None:
        answers, key = model.answers, (key, k)
        c = answers.get(key, _MISS)
        if c is not _MISS:
            if memo is not None:
                memo[mkey] = c
            return c
    try:
        c = rec.recommend(model.fitted[name], model.ds, ctx, k)
    except Exception as exc:  # one broken recommender must not break the slot
        log.exception("recommender failed at request time", extra={"recommender": name, "error": repr(exc)})
        c = None
    else:
        if key is not None:
            answers.put(key, c)
    if memo is not None:
        memo[mkey] = c
    return c


class Pool:
    """A strategy's blended candidates for one request (steps 1-2), before any per-visitor
    rule: shared by every request whose sources all give the same cacheable answers.
    ``rows`` (``kernels.blend_sources``, int64): ``index``, the unique candidates ascending;
    ``best_src`` / ``best_at`` / ``best_pos``: each one's largest contribution (its source, its
    position in the concatenated answers, in its source's answer); the blend ranking (unset
    with boosts: ``blend_ranking`` is then sorted from the boosted ``score`` on demand)."""
    __slots__ = ("rows", "score", "names", "cands", "_per_source", "_uniq", "_src_codes", "blend_ranking")

    def __init__(self, rows, score, names, cands):
        self.rows, self.score, self.names, self.cands = rows, score, names, cands
        self._per_source = self._uniq = self._src_codes = None
        self.blend_ranking = None

    index = property(lambda self: self.rows[0])
    best_src = property(lambda self: self.rows[1])
    best_at = property(lambda self: self.rows[2])

    @property
    def starts(self) -> list[int]:
        """Each answer's start in the answers concatenated."""
        return _offsets(self.cands)[1]

    @property
    def src_codes(self) -> np.ndarray:
        """Per source, its name's code (``name_code``): what ``kernels.select_pool`` compares
        with an item's holder (a name holds an item; a strategy may list a recommender twice)."""
        if self._src_codes is None:
            self._src_codes = src_codes(self.names)
        return self._src_codes

    @property
    def uniq(self) -> np.ndarray:
        """``index`` as int32, what a ranker's ``CandidateSet.items`` are (made on demand)."""
        if self._uniq is None:
            self._uniq = self.index.astype(np.int32)
        return self._uniq

    @property
    def per_source(self) -> np.ndarray:
        """[len(index), len(names)] each source's normalised score (0 where it has no say):
        what a learned ranker reads; the blend order does not need it."""
        if self._per_source is None:
            cands = self.cands
            items = np.concatenate([c.items for c in cands])
            scores = np.concatenate([c.scores for c in cands])
            srci = np.arange(len(cands)).repeat([len(c) for c in cands])
            norm = scores / np.maximum.reduceat(scores, self.starts)[srci]   # as the blend: each source / its best
            inv = np.searchsorted(self.index, items)
            m = np.zeros((len(self.index), len(self.names)), np.float32)
            m[inv, srci] = norm
            self._per_source = m
        return self._per_source

    def ranking(self, model, ctx, blend: bool | None = None) -> np.ndarray:
        """Positions into ``index``, best first: the ranker hook's order. The default blend
        order depends on the pool alone and is kept with it; another ranker (the learned one
        reads the visitor's session) orders every request anew, unless it leaves this slot to
        the blend (``blend_orders``; ``blend``: its answer when asked already)."""
        if blend is None:
            blend = blend_orders(model, ctx)
        if blend:
            if self.blend_ranking is None:
                # BlendRanker.rank: index is ascending, so a stable sort by score ties as its lexsort
                self.blend_ranking = (-self.score).argsort(kind="stable")
            return self.blend_ranking
        return get_ranker().rank(model, ctx, CandidateSet(self.uniq, self.score, self.per_source, self.names))


def blend_orders(model, ctx) -> bool:
    """Whether the slot is in the blend order: the ranker is the blend, or its ``serves(model,
    ctx)`` says it leaves this slot to the blend (the learned ranker's guard refused the
    placement: then not even its features are built)."""
    ranker = get_ranker()
    if type(ranker) is BlendRanker:
        return True
    serves = getattr(ranker, "serves", None)
    return serves is not None and not serves(model, ctx)


def _answers(model, ctx: Context, plan: "SlotPlan", k: int) -> tuple:
    """Step 1 for one request: ``(pool, pool_key, bits, cands, answered)``. ``pool``: the pool
    kept for the applicable sources' keys (``Model.pools``; None: no source applies), or
    ``_MISS`` when it is to be computed from ``cands``, the non-empty answers in the strategy's
    order (``bits``: which of ``plan.sources`` gave them), under ``pool_key`` (None: not to be
    kept) when ``answered`` (no source failed)."""
    srcs = []
    pool_key: list | None = [k, plan.boost_r]
    for s in plan.sources:
        ctx.params = s.params or {}
        rec, key = _source_key(model, s.name, ctx, s.pr, s.kkey)
        if rec is None:
            continue
        srcs.append((s, rec, key))
        if pool_key is not None:
            if key is None:
                pool_key = None
            else:
                pool_key.append((key, s.weight))
    if not srcs:
        return None, None, 0, (), True
    if pool_key is not None:
        pool_key = SourceKey(tuple(pool_key))   # (hashed once: its sources' keys hash in Python)
        hit = model.pools.get(pool_key, _MISS)
        if hit is not _MISS:
            return hit, None, 0, (), True
    cands: list[Candidates] = []
    bits = 0
    answered = True
    for s, rec, key in srcs:
        ctx.params = s.params or {}
        c = _call(model, s.name, ctx, k, rec, key, s.pr)
        if c is None:
            answered = False
        elif len(c.items):   # (the array's len: no Python call)
            cands.append(c)
            bits |= s.bit
    return _MISS, pool_key, bits, cands, answered


def _concatenated(cands: list[Candidates]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answers' items and scores one after the other, and each answer's length (int64): what
    the blend kernels take."""
    its = [c.items for c in cands]
    if len(its) > 1:
        items, scores = np.concatenate(its), np.concatenate([c.scores for c in cands])
    else:
        items, scores = its[0], cands[0].scores
    return items, scores, np.fromiter(map(len, its), np.int64, len(its))


_LENS: dict[int, np.ndarray] = {}   # (``_one_len``'s arrays, by length: an answer is at most a few hundred long)


def _one_len(n: int) -> np.ndarray:
    """``[n]`` as int64, one array per ``n``, shared (the kernels read it, never write it): one
    answer's lengths as ``_concatenated`` gives them, without ``np.fromiter``."""
    a = _LENS.get(n)
    if a is None:
        if len(_LENS) >= 1024:   # (bounded: lengths of arbitrary answers)
            _LENS.clear()
        a = _LENS[n] = np.full(1, n, np.int64)
    return a


def _blend(ds, names: list[str], cands: list[Candidates], weights: list[float], rules: dict) -> Pool | None:
    """Steps 1-2's arithmetic over the sources' non-empty answers: one compiled call
    (``kernels.blend_sources``: normalise, weight, sum per item, each item's largest
    contribution, the blend order), then the boosts."""
    boost = rules.get("boost")
    silent, rows, score = K.blend_sources(*_concatenated(cands), np.array(weights, np.float64), not boost)
    if silent:  # a source whose best score is not positive says nothing: the blend of the others
        keep = [len(c) > 0 and c.scores.max() > 0 for c in cands]
        if not any(keep):
            return None
        return _blend(ds, [x for x, ok in zip(names, keep) if ok], [x for x, ok in zip(cands, keep) if ok],
                      [x for x, ok in zip(weights, keep) if ok], rules)
    pool = Pool(rows, score, names, cands)
    if boost:
        f = R.boost_factors(ds, rules, rows[0])
        if f is not None:
            pool.score = score * f
    else:
        pool.blend_ranking = rows[3]
    return pool


def _offsets(cands: list) -> tuple[list[int], list[int]]:
    """Each answer's length and its start in the answers concatenated."""
    lens = [len(c) for c in cands]
    starts = [0]
    for n in lens[:-1]:
        starts.append(starts[-1] + n)
    return lens, starts


def run_slot(model, ctx: Context, strategy: dict, count: int, rules: dict, page_seen: set[int]) -> list[tuple[int, str, str]]:
    """Items for one slot: [(dataset item index, reason, source name)], at most ``count``."""
    ds = model.ds
    if ds.n_items == 0 or count <= 0:
        return []
    plan = slot_plan(model, strategy, rules)
    scoped = None   # (the rules with the page's category, their mask) when the slot is scoped to it
    if plan.scope and ctx.category:
        scoped = plan.scoped(ds, rules, ctx.category)
    mask = plan.mask if scoped is None else scoped[1]   # the rules' part; the request's is passed beside it
    current = ctx.item if plan.current and ctx.item >= 0 else -1
    cart = _as_int32(ctx.cart_items) if plan.cart else _NO_CART
    held = _held(ds, ctx, rules)
    k = count * 3 + 20

    # 1-2: blend the sources; 3: the ranker orders, the rules filter
    chosen = shown = None
    if plan.fusion(model) is not None and not plan.boost and blend_orders(model, ctx):
        got = _fused(model, ctx, plan, k, count, mask, current, cart, held, page_seen)   # (None: the steps below)
        ctx.params = {}  # fallbacks have no parameters
        if got is not None:
            if len(got) >= count and not plan.pins:   # full: no step below changes it
                shown = got
            else:
                chosen = got
    if chosen is None and shown is None:
        pool, pool_key, bits, cands, answered = _answers(model, ctx, plan, k)
        ctx.params = {}
        blend = None
        if pool is _MISS:   # (not kept for these sources' keys)
            pool = None
            if cands:
                names, weights, codes = plan.subset(bits)
                if not plan.boost:
                    blend = blend_orders(model, ctx)
                if blend:   # the usual case: one compiled call
                    got = _blend_select(ds, plan, names, cands, weights, codes, count, mask, current, cart, held,
                                        page_seen, pool_key is not None and answered)
                    if got is not None:
                        picked, pool = got
                        picked = iter(picked)
                        if len(got[0]) >= 3 * count and not plan.pins:   # full: no step below changes it
                            shown = [(i, cands[s].reason(p), names[s]) for i, s, p in zip(picked, picked, picked)]
                        else:
                            chosen = [(i, (cands[s], p), names[s]) for i, s, p in zip(picked, picked, picked)]
                if chosen is None and shown is None:
                    pool = _blend(ds, names, cands, weights, rules)
            if pool_key is not None and answered:  # (a failed source: not kept)
                model.pools.put(pool_key, pool)
        if chosen is None and shown is None:
            chosen = [] if pool is None else _select_pool(ds, pool, pool.ranking(model, ctx, blend), count, rules, mask,
                                                          page_seen, held, current, cart)
    if shown is not None:   # (the reasons of the products shown, as below)
        if plan.dedupe:
            page_seen.update(map(itemgetter(0), shown))
        return shown

    # (the whole mask, rules' and request's, made only when a step below needs it)
    full = None

    full_rules = rules if scoped is None else scoped[0]   # (the rules of ``full``, the mask pins read)

    # 4: fallbacks, in order
    if len(chosen) < count:
        # (a short slot whose rules allow few products, none of them left: neither the fallbacks
        # nor the scoped catalog net could add one; the unscoped net in the same call)
        net = _exhausted_net(ds, plan, scoped, chosen, count, current, cart, held, page_seen)
        if net is not None:
            chosen += net
            full_rules = rules
        else:
            full = R.allowed_mask(ds, ctx, full_rules, exempt_bought=True)
            fallbacks = plan.fallbacks
            exhausted = not _addable(full, chosen, page_seen, held, rules, fallbacks)
            for name in () if exhausted else fallbacks:
                if len(chosen) >= count:
                    break
                c = _call(model, name, ctx, k)
                if c is None or len(c) == 0:
                    continue
                ok = full[c.items].nonzero()[0]  # vectorised first pass of the rules
                if not len(ok):
                    continue
                extra = ((i, (c, p), name) for p, i in zip(ok.tolist(), c.items[ok].tolist())
                         if held.get(i, name) == name)   # (select skips what the slot already has)
                chosen += R.select(ds, extra, count - len(chosen), rules, full, page_seen, chosen)

            # 5: the catalog net (a small category is completed from outside it)
            if len(chosen) < count and not exhausted:
                chosen += _catalog_net(ds, chosen, count, rules, full, page_seen, held)
            if len(chosen) < count and scoped is not None:
                full = R.allowed_mask(ds, ctx, rules, exempt_bought=True)
                chosen += _catalog_net(ds, chosen, count, rules, full, page_seen, held)

    # 6: pins
    if plan.pins:
        if full is None:
            full = R.allowed_mask(ds, ctx, full_rules, exempt_bought=True)
        chosen = R.apply_pins(ds, chosen, rules, count, full, lambda i: (i, "featured", "pin"))
    if plan.dedupe:
        page_seen.update(map(itemgetter(0), chosen))
    # a reason is a string, or (answer, position) for a source's candidate: its text is
    # computed only now, for the few products shown
    return [(i, reason if type(reason) is str else reason[0].reason(reason[1]), src) for i, reason, src in chosen]


def _blend_select(ds, plan, names, cands, weights, codes, count, mask, current, cart, held, page_seen, keep):
    """Steps 1-3 with the blend order, one ``kernels.blend_select`` call: ``(picked, pool)``,
    ``picked`` the products chosen as a flat list of (item, source, position in its answer),
    ``pool`` made only when it is to be kept (``keep``); None when a source said nothing
    (``_blend`` blends the others)."""
    seen = np.fromiter(page_seen, np.int64, len(page_seen)) if page_seen and plan.dedupe else _NONE
    packed, score = K.blend_select(*_concatenated(cands), weights, mask,
                                   current, cart, held.codes() if held else _NO_HELD, codes, seen, plan.cat,
                                   plan.brand, plan.max_cat, plan.max_brand, count)
    if packed.item(0):   # (silent)
        return None
    m, c = packed.item(1), packed.item(2)
    pool = None
    if keep:
        pool = Pool(packed[3 + 3 * c:].reshape(5, m), score, names, cands)
        pool.blend_ranking, pool._src_codes = pool.rows[3], codes
    return packed[3:3 + 3 * c].tolist(), pool


def _fused(model, ctx: Context, plan: "SlotPlan", k: int, count, mask, current, cart, held, page_seen,
           walk: bool = True) -> list | None:
    """Steps 1-3 for a slot with table sources, in the blend order without boosts: each source
    that describes its request as a table query (``recommenders/_tables``: its ``query``)
    gives it, the others their answer (``_call``: the request's memo, the answer cache), and
    one ``kernels.slot_select`` call computes the queries' answers, blends them with the
    others in the strategy's order and selects, as ``_answers`` then ``_blend_select`` (or
    ``_blend`` and ``_select_pool`` when a source says nothing) would. Returns the entries
    (item, reason, source name) with their reasons made; None when the slot is to take the
    path of the separate steps: its pool is kept or to be kept now (``Model.pools``: the
    sources' keys, when every source that applies has one, offered a second time), or the call
    failed (each source asked on its own then isolates a broken one).

    The pool's key is made only for a visitor without history (``ctx.recent`` empty): the
    table sources' keys are their seeds, which then are the page's products alone (a product
    page of visitors who just arrived: a key that comes back). Otherwise the seeds hold the
    visitor's own items, a key that hardly ever comes back, and making it cost more than the
    call saves (fresh mix, in process: ~215 µs a request with the keys, ~200 without). The
    table sources' answers are not kept in the answer cache, for the same reason; a query
    computed in one slot is not computed again by another slot of the request that asks it
    (a detail page's item_cf, in both its slots): the request's memo keeps it as ``_call``
    keeps answers, by name, params and ``k`` (``_ASKED``), with the call's output, from which
    the later call copies its answer (``kernels.slot_select``'s ``prior``).

    A source with a ``QuerySpec`` (``_Fusion``: its ``query_spec``, made once) is not asked its
    query when the request's interactions are a ``RecentList`` (the live state's, with their
    ``columns``): the call walks its seeds itself (``kernels/seeds.walk_view``, the walk its
    query's seed view makes) and checks them as its query does; a view its table does not take
    makes the call refuse (nothing computed) and the slot is asked again with the queries
    (``walk`` False), as are page products the walk does not take (not int32 arrays)."""
    fusion = plan.fusion(model)
    ds = model.ds
    srcs = []   # (source, its ``_Fusion`` entry, recommender, key or _MISS) of the sources that apply
    poolable = True
    for e in fusion.sources:
        s = e.source
        ctx.params = s.params or {}
        if e.query is None:
            if e.keyed:
                rec, key = _source_key(model, s.name, ctx, s.pr, s.kkey)
                if rec is None:
                    continue
            else:   # (no key of its own: ``_source_key`` would give None; main: ~-1.3 µs a call)
                rec, key = e.rec, None
                if not rec.applicable(ctx):
                    continue
        else:
            rec, key = e.rec, _MISS
            if not rec.applicable(ctx):
                continue
        poolable = poolable and e.keyed
        srcs.append((s, e, rec, key))
    if poolable and srcs and not ctx.recent:   # (the pool's key as ``_answers`` makes it)
        pool_key = [k, plan.boost_r]
        for s, e, rec, key in srcs:
            if key is _MISS:
                ctx.params = s.params or {}
                key = _source_key(model, s.name, ctx, s.pr, s.kkey)[1]
            if key is None:
                break
            pool_key.append((key, s.weight))
        else:
            if model.pools.offer(SourceKey(tuple(pool_key))):   # (kept, or to be kept now)
                return None

    tables: list = []   # distinct tables (``Neighbours``), in order of first use
    qs: list = []       # the queries (``TableQuery``), their tables' places, their source
    ready: list = []    # the other sources' answers (``Candidates``, non-empty)
    src = [-1] * K.SOURCES
    memo = ctx.answers
    prior = _NONE       # an earlier slot's output with queries asked again here (``_ASKED``)
    recent = ctx.recent
    walk = walk and type(recent) is RecentList and recent.size == len(recent)   # (``base._walks``)
    walked = False      # whether a query's seeds are the call's to walk
    checked = False     # whether an argument not made by this module may be of another ndim or layout
    for s, e, rec, key in srcs:
        ctx.params = s.params or {}
        if key is _MISS:
            if memo is not None and len(qs) < K.QUERIES:
                hit = memo.get((_ASKED, s.kkey, k))
                if hit is not None and (prior is _NONE or hit[0] is prior):   # (one earlier output a call)
                    prior, at, q = hit
                    src[e.place] = len(qs)
                    qs.append((q, -2 - at, -2 - at, None, (-2 - at, -2 - at, *_NO_QUERY[0][2:])))
                    continue
            spec = e.spec
            if walk and spec is not None and len(qs) < K.QUERIES:
                more = spec.more(ctx.person)
                if more is not None:   # (else its query merges the person's items)
                    a = _table_at(tables, spec.a)
                    b = a if spec.b is None else _table_at(tables, spec.b)
                    if a >= 0 and b >= 0:
                        src[e.place] = len(qs)
                        qs.append((spec, a, b, s, (a, b, spec.mix_a, spec.mix_b, _NO_SEEDS, _NO_WEIGHTS, *more, NO_DROP,
                                                   spec.walk)))
                        walked = True
                        continue
            try:
                q = e.query(e.fitted, ds, ctx, k)
            except Exception as exc:  # one broken recommender must not break the slot (as ``_call``)
                log.exception("recommender failed at request time", extra={"recommender": s.name, "error": repr(exc)})
                continue
            if q is NOTHING:
                continue
            if q is not None and len(qs) < K.QUERIES:
                a = _table_at(tables, q.a)
                b = a if q.b is None else _table_at(tables, q.b)
                if a >= 0 and b >= 0:
                    src[e.place] = len(qs)
                    qs.append((q, a, b, s, _query_args(q, a, b)))
                    continue
            # (not a table query here, or more tables than the call takes: asked as any source)
            key = _source_key(model, s.name, ctx, s.pr, s.kkey)[1]
        c = _call(model, s.name, ctx, k, rec, key, s.pr)
        if c is not None and len(c.items):
            src[e.place] = K.QUERIES + len(ready)
            ready.append(c)
            checked = checked or c.items.ndim != 1 or c.scores.ndim != 1   # (an answer the call's types may refuse)
    # the ready answers as the kernels take them: the first two apart (most slots have at most
    # two: no concatenation), the others concatenated
    r0 = (ready[0].items, ready[0].scores) if ready else _NO_ANSWER
    r1 = (ready[1].items, ready[1].scores) if len(ready) > 1 else _NO_ANSWER
    if len(ready) == 3:   # (main pages: a third answer, taken as it is, its length from a memo: ~-2.3 µs in the flow)
        c = ready[2]
        more = c.items, c.scores, _one_len(len(c.items))
    else:
        more = _concatenated(ready[2:]) if len(ready) > 2 else _NO_ANSWERS
    seen = np.fromiter(page_seen, np.int64, len(page_seen)) if page_seen and plan.dedupe else _NONE
    slot_map = _MAPS.slot
    if len(slot_map) <= ds.n_items:   # (the thread's first call, or a larger catalog)
        slot_map = _MAPS.slot = np.zeros(ds.n_items + 1, np.int32)
    if walked:   # (the page's products as ``Context.seed_vectors`` hands them to the walk)
        page = ctx.cart_items, ctx.order_items
        page = (recent.columns, ctx.item, page[0] if len(page[0]) else _NO_PAGE, page[1] if len(page[1]) else _NO_PAGE)
        checked = checked or not (_flat_int32(page[2]) and _flat_int32(page[3]))
    else:
        page = _NO_WALK
    checked = checked or (cart is not _NO_CART and cart.ndim != 1)
    # the call without numba's dispatch (``jit.Kernel.unchecked``: ~1-1.7 µs a call in the
    # request's flow) when every argument is of the signature's ndim and layout: those made here,
    # by the plan, the tables (``Neighbours.table``), the queries and the walk's columns
    # (``base.walk_columns``) are by construction; the answers of other sources, the cart and
    # the page's products are checked above (their dtypes: numba checks the item size)
    call = _compiled if checked else _unchecked
    rest = (k, prior, *r0, *r1, *more, tuple(src), fusion.weights, fusion.codes, mask, current, cart,
            held.codes() if held else _NO_HELD, seen, plan.cat, plan.brand, plan.max_cat, plan.max_brand, count, slot_map,
            *page)
    try:
        if len(tables) <= 2 and len(qs) <= 2:   # (most slots: the call with fewer arguments)
            packed = call(K.slot_select_2)(
                *(tables[0].table() if tables else _NO_TABLE[0]), *(tables[1].table() if len(tables) > 1 else _NO_TABLE[0]),
                *(qs[0][4] if qs else _NO_QUERY[0]), *(qs[1][4] if len(qs) > 1 else _NO_QUERY[0]), *rest)
        else:   # (every table's and query's arguments, unused ones padded)
            flat = [x for t in tables for x in t.table()]
            flat += _NO_TABLE_4[len(flat):]
            for q in qs:
                flat += q[4]
            flat += _NO_QUERY_4[len(_NO_QUERY[0]) * len(qs):]
            packed = call(K.slot_select_4)(*flat, *rest)
    except (TypeError, OverflowError) if walked else ():   # (page products the walk does not take)
        _MAPS.slot = _NO_MAP   # (not run: refused by the dispatch; a new map all the same)
        return _fused(model, ctx, plan, k, count, mask, current, cart, held, page_seen, False)
    except Exception as exc:   # (e.g. a broken table: each source asked on its own isolates it)
        log.exception("slot_select failed", extra={"error": repr(exc)})
        _MAPS.slot = _NO_MAP   # (the product map may be left dirty: the next call makes a new one)
        return None
    if packed.item(0) < 0:   # (a walked view its table does not take: the queries answer)
        return _fused(model, ctx, plan, k, count, mask, current, cart, held, page_seen, False)
    if memo is not None:   # the queries computed here, for another slot of the request that asks them
        for at, (q, a, b, s, _) in enumerate(qs):
            if s is not None:
                memo[_ASKED, s.kkey, k] = packed, at, q
    names = plan.names
    picked = iter(packed[1:1 + 4 * packed.item(0)].tolist())
    return [(i, qs[src[j]][0].reason(ds, seed) if src[j] < K.QUERIES else ready[src[j] - K.QUERIES].reason(pos), names[j])
            for i, j, pos, seed in zip(picked, picked, picked, picked)]


class _Maps(threading.local):
    """The thread's product map for ``kernels.slot_select`` (``sums.neighbour_top_in``'s
    ``slot``): zeros, as long as the catalog and its padding entry at least; each call resets
    the entries it used (kept per thread: the kernels release the GIL)."""
    slot = np.zeros(0, np.int32)


_MAPS = _Maps()
_NO_MAP = _Maps.slot


def _table_at(tables: list, table) -> int:
    """``table``'s index in ``tables`` (appended when new), -1 when ``slot_select`` takes no more."""
    for t, x in enumerate(tables):
        if x is table:
            return t
    if len(tables) >= K.QUERIES:
        return -1
    tables.append(table)
    return len(tables) - 1


def _query_args(q, a: int, b: int) -> tuple:
    """A ``TableQuery``'s arguments of ``slot_select`` (its tables' places ``a``, ``b``; its
    seeds given, not walked: -1)."""
    return a, b, q.mix_a, q.mix_b, q.seeds, q.weights, q.more, q.more_w, q.drop, -1


def _compiled(fn):
    """A kernel's compiled dispatcher when compiled (called without ``Kernel.__call__``'s
    re-packing of its ~40 arguments), else ``fn`` itself (compiled on that call; or a stand-in)."""
    return getattr(fn, "compiled", None) or fn


def _unchecked(fn):
    """A kernel's compiled function without numba's dispatch when compiled (``jit.Kernel.unchecked``:
    its arguments' types are the caller's to guarantee), else ``fn`` itself (compiled on that
    call, through the dispatch; or a stand-in)."""
    return getattr(fn, "unchecked", None) or fn


def _flat_int32(items) -> bool:
    """Whether ``items`` is as ``slot_select``'s page products are typed (``int32[::1]``): numba's
    dispatch refuses another array (the slot then asks its queries), the call without it would
    read it wrongly."""
    return type(items) is np.ndarray and items.dtype == _INT32 and items.ndim == 1 and items.flags.c_contiguous


# ``slot_select``'s unused tables (pads, scores, ends) and queries (no table: -1)
_NO_TABLE = [(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32), np.zeros(1, np.int32))] * K.QUERIES
_NO_QUERY = [(-1, -1, 0.0, 0.0, np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int32),
              np.zeros(0, np.float32), np.zeros(0, np.int64), -1)] * K.QUERIES
_NO_SEEDS, _NO_WEIGHTS = _NO_QUERY[0][4:6]   # (a walked query's given seeds: none)
_NO_PAGE = np.zeros(0, np.int32)
_INT32 = _NO_PAGE.dtype
_NO_WALK = (np.zeros((0, 3), np.float64), -1, _NO_PAGE, _NO_PAGE)   # (``slot_select``'s walk arguments: no walk)
# ``slot_select_2``'s: two tables' flat arguments, then two queries'; ``slot_select_4``'s, four
_NO_TABLE_2, _NO_TABLE_4 = _NO_TABLE[0] * 2, _NO_TABLE[0] * 4
_NO_QUERY_2, _NO_QUERY_4 = _NO_QUERY[0] * 2, _NO_QUERY[0] * 4
_NO_ANSWERS = (np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64))
_NO_ANSWER = _NO_ANSWERS[:2]


def _addable(mask, chosen, page_seen, held, rules, fallbacks) -> bool:
    """Whether a fallback or the catalog net could still add a product under ``mask``. Checked
    when the mask allows few products (a small category: the fallbacks would each be asked
    and scanned, and the catalog net would read the whole catalog, for nothing): False when
    every product it allows is chosen, shown on the page (with dedupe) or held for a
    recommender that is not among ``fallbacks`` (the diversity caps only take more away)."""
    if np.count_nonzero(mask) > 64:
        return True
    taken = {e[0] for e in chosen}
    if rules.get("dedupe", True):
        taken.update(page_seen)
    return any(i not in taken and (i not in held or held[i] in fallbacks) for i in mask.nonzero()[0].tolist())


def _exhausted_net(ds, plan: "SlotPlan", scoped, chosen, count, current, cart, held, page_seen) -> list | None:
    """Steps 4-5 of a short slot in one ``kernels.exhausted_net`` call when its rules allow few
    products (``SlotPlan.first``): None when a fallback or the net could still add one (or the
    rules allow many: the steps one by one), else the catalog net's entries from outside the
    category when the slot is scoped (none otherwise), as ``_addable`` then ``_catalog_net``
    over the unscoped ``allowed_mask`` give them."""
    first = plan.first if scoped is None else scoped[2]
    if first is None:
        return None
    order, score = catalog_order(ds)
    seen = np.fromiter(page_seen, np.int64, len(page_seen)) if page_seen and plan.dedupe else _NONE
    got = K.exhausted_net(first, current, cart, held.codes() if held else _NO_HELD, plan.fallback_codes,
                          np.fromiter([e[0] for e in chosen], np.int64, len(chosen)), seen, scoped is not None,
                          order, score, plan.mask, plan.cat, plan.brand, plan.max_cat, plan.max_brand, count - len(chosen))
    if not got.item(0):
        return None
    got = iter(got[1:].tolist())
    return [(i, _POPULAR if popular else _NEW, "catalog") for i, popular in zip(got, got)]


_FEW = 256   # (``SlotPlan.first``: the products of a rules' mask kept when at most so many)


def _few(mask: np.ndarray) -> np.ndarray | None:
    """The products ``mask`` allows (int64, ascending) when at most ``_FEW``, else None."""
    return np.flatnonzero(mask).astype(np.int64) if np.count_nonzero(mask) <= _FEW else None


_NAME_CODES: dict[str, int] = {}
_NAME_CODES_LOCK = threading.Lock()
_SRC_CODES: dict[tuple, np.ndarray] = {}   # names of a pool's sources -> their codes (a few strategies' lists)


def name_code(name: str) -> int:
    """A number per recommender name, the same for the whole process (kernels compare numbers)."""
    c = _NAME_CODES.get(name)
    if c is None:
        with _NAME_CODES_LOCK:
            c = _NAME_CODES.setdefault(name, len(_NAME_CODES))
    return c


def src_codes(names: list[str]) -> np.ndarray:
    """``name_code`` of each name, int64: one array per list of names, shared (not to be written)."""
    key = tuple(names)
    c = _SRC_CODES.get(key)
    if c is None:
        if len(_SRC_CODES) >= 1024:   # (bounded: strategies are configurable)
            _SRC_CODES.clear()
        c = _SRC_CODES[key] = np.fromiter(map(name_code, key), np.int64, len(key))
    return c


class Held(dict):
    """item -> the name of the only recommender that may bring it back (``_held``)."""
    _codes = None   # (a class default, no __init__: made in C, ~0.1 µs less a request)

    def codes(self) -> np.ndarray:
        """[2, h] int64: the items and their holder's ``name_code`` (made once)."""
        if self._codes is None:   # (one list converted; the holders' codes read in C)
            n, holders = len(self), self.values()
            try:
                codes = [*self, *map(_HOLDER_CODES.__getitem__, holders)]
            except KeyError:   # (a holder other than ``_held``'s two)
                codes = [*self, *map(name_code, holders)]
            self._codes = np.fromiter(codes, np.int64, 2 * n).reshape(2, n)
        return self._codes


_HOLDER_CODES = {h: name_code(h) for h in ("buy_again", "recently_viewed")}   # (``_held``'s holders)


def _held(ds, ctx: Context, rules: dict) -> Held:
    """Items only their own recommender may bring back: recently bought (buy_again) and viewed
    in this session (recently_viewed). Computed once per request and rule values."""
    days = rules.get("exclude_bought_days", 30)
    seen = rules.get("exclude_seen", True)
    key = ("held", days, seen, id(ctx.bought), len(ctx.bought), id(ctx.recent), len(ctx.recent), ctx.clock_ms, ctx.now_ms)
    memo = ctx.memo()
    hit = memo.get(key)
    if hit is not None:
        return hit[0]
    held = Held()
    bought = ctx.bought
    if days and bought:
        limit = max(ctx.clock_ms, ctx.now_ms) - days * 86_400_000
        if newest_purchase(bought) >= limit:   # (most visitors bought nothing in the window)
            index = ds.item_index.get   # (ds.item, without a call per product)
            for p in compress(bought, map(ge, bought.values(), repeat(limit))):   # ts >= limit, in C
                i = index(p, -1)
                if i >= 0:
                    held[i] = "buy_again"
    if seen:
        for r in recent_rows(ctx.recent):   # (by index: a ``Recent``'s field names cost a lookup each)
            if r[5] and r[2] == VIEW and r[1] >= 0:   # in_session, kind, item
                held[r[1]] = "recently_viewed"
    memo[key] = (held, ctx.bought, ctx.recent)   # keeps them alive: their ids are not reused meanwhile
    return held


def _catalog_net(ds, chosen, count, rules, mask, page_seen, held) -> list:
    """Step 5 for a slot still short: the catalog by popularity then newness (``catalog_order``),
    under the rules' mask, without held items and the page's products, within the caps that
    count the slot's ``chosen``: one ``kernels.catalog_net`` call (``rules.select`` over the
    catalog in order, with ``already=chosen``); entries (item, reason, "catalog")."""
    order, score = catalog_order(ds)
    held_items = held.codes()[0] if type(held) is Held else np.fromiter(held, np.int64, len(held))
    taken = np.fromiter([e[0] for e in chosen], np.int64, len(chosen))
    seen, cat, brand, max_cat, max_brand = _select_args(ds, rules, page_seen)
    got = K.catalog_net(order, score, mask, -1, _NO_CART, held_items, taken, seen, cat, brand, max_cat, max_brand,
                        count - len(chosen))
    # a product nobody touched yet is "new", not "popular"
    return [(i, _POPULAR if popular else _NEW, "catalog") for i, popular in zip(*got.tolist())]


def _select_args(ds, rules: dict, page_seen: set[int]) -> tuple:
    """What the selection kernels read of the rules and the page: the page's products (with
    dedupe), the category and brand codes with their caps (0: no cap)."""
    seen = np.fromiter(page_seen, np.int64, len(page_seen)) if page_seen and rules.get("dedupe", True) else _NONE
    return (seen, *_caps(ds, rules))


def _caps(ds, rules: dict) -> tuple:
    """The diversity caps as the selection kernels take them: the category and brand codes
    (empty without a cap) and the caps (0: no cap)."""
    max_cat, max_brand = rules.get("max_per_category") or 0, rules.get("max_per_brand") or 0
    cat, brand = (ds.category_code, ds.brand_code) if max_cat or max_brand else (_NO_CODES, _NO_CODES)
    return cat, brand, max_cat, max_brand


_POPULAR, _NEW = "popular in the shop", "new in the shop"
_NONE = np.zeros(0, np.int64)
_NO_HELD = np.zeros((2, 0), np.int64)
_NO_CODES = np.zeros(0, np.int32)


def _select_pool(ds, pool: Pool, ranking, count, rules, mask, page_seen, held, current=-1, cart=None) -> list:
    """Step 3 for the pool's candidates in ``ranking`` order (one ``kernels.select_pool`` call:
    the rules' mask, with the request's ``current`` product and ``cart`` items when not in it,
    held items, the page's products, the diversity caps; what ``rules.select`` does over them):
    entries (item, (answer, position), source name)."""
    held_by, src_codes = (held.codes(), pool.src_codes) if held else (_NO_HELD, _NONE)
    seen, cat, brand, max_cat, max_brand = _select_args(ds, rules, page_seen)
    got = K.select_pool(np.asarray(ranking, np.int64), pool.rows, mask, current, _NO_CART if cart is None else cart,
                        held_by, src_codes, seen, cat, brand, max_cat, max_brand, count)
    names, cands = pool.names, pool.cands
    return [(i, (cands[s], p), names[s]) for i, s, p in zip(*got.tolist())]


_NO_CART = np.zeros(0, np.int32)


def _as_int32(items) -> np.ndarray:
    """``ctx.cart_items`` as the kernels take them: int32 and writeable (numba refuses a
    read-only array; a negative index counts from the end, as numpy's mask assignment reads
    it: kernels.select_pool)."""
    if not len(items):   # (most requests: no cart)
        return _NO_CART
    if type(items) is np.ndarray and items.dtype == np.int32 and items.flags.writeable:
        return items
    return np.array(items, np.int64).astype(np.int32)


class _Source:
    """One source of a strategy, as each request reads it (``SlotPlan``)."""
    __slots__ = ("name", "weight", "params", "pr", "kkey", "bit")

    def __init__(self, name: str, weight: float, params: dict | None, bit: int):
        self.name, self.weight, self.params, self.bit = name, weight, params, bit
        self.pr = repr(params) if params else None   # (the params as in the answer and memo keys)
        self.kkey = (_KEYS, name, self.pr)            # (its ``_source_key`` in the request's memo)


class SlotPlan:
    """What a slot reads of its strategy and rules, made once per model, strategy and rule
    values (``slot_plan``), so that a request does only what depends on the request: the
    sources (name, weight, params and the keys made of them), the fallbacks, the rules' mask
    (``rules._rules_mask``, as a kernel takes it: never written), which of the request's
    products the rules exclude, the held items' rules, the caps with their code arrays, the
    page dedupe, boosts and pins; per set of sources that answered, their names, weights and
    codes (``subset``), per category of a scoped strategy its rules and mask (``scoped``); for
    a short slot (``_exhausted_net``), the fallbacks' name codes and the products the mask
    allows when they are few (``first``; a scoped mask's with it)."""
    __slots__ = ("sources", "fallbacks", "scope", "boost", "boost_r", "pins", "dedupe", "current", "cart",
                 "mask", "cat", "brand", "max_cat", "max_brand", "_subsets", "_scoped", "names", "_fusion",
                 "first", "fallback_codes")

    def __init__(self, ds, strategy: dict, rules: dict):
        self.sources = tuple(_Source(src["recommender"], float(src.get("weight", 1.0)), src.get("params") or None, 1 << j)
                             for j, src in enumerate(strategy.get("sources", ())))
        self.fallbacks = strategy.get("fallbacks", ())
        self.scope = bool(strategy.get("scope_to_category")) and not rules.get("categories")
        self.boost = rules.get("boost")
        self.boost_r = repr(self.boost) if self.boost else None   # (part of a pool's key)
        self.pins = rules.get("pin")
        self.dedupe = rules.get("dedupe", True)
        self.current, self.cart = rules.get("exclude_current", True), rules.get("exclude_cart", True)
        self.mask = R._rules_mask(ds, rules, for_kernel=True)
        self.first = _few(self.mask)
        self.fallback_codes = np.fromiter(map(name_code, self.fallbacks), np.int64, len(self.fallbacks))
        self.cat, self.brand, self.max_cat, self.max_brand = _caps(ds, rules)
        self._subsets: dict[int, tuple] = {}
        self._scoped: dict[str, tuple | None] = {}
        self.names = [s.name for s in self.sources]
        self._fusion = _MISS

    def fusion(self, model) -> "_Fusion | None":
        """What ``_fused`` reads of the plan and its model (``_Fusion``); None when no source is a
        table source or the strategy has more sources than ``kernels.slot_select`` takes. (A
        plan is its model's: the recommenders are the model's.)"""
        got = self._fusion
        if got is _MISS:
            got = _Fusion(model, self.sources, self.names)
            if not any(getattr(model.recommenders.get(n), "query", None) is not None for n in self.names) \
                    or len(self.sources) > K.SOURCES:
                got = None
            self._fusion = got
        return got

    def subset(self, bits: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The names, weights (float64) and name codes (``src_codes``) of the sources in ``bits``,
        in the strategy's order: a pool's (not to be written)."""
        got = self._subsets.get(bits)
        if got is None:
            srcs = [s for s in self.sources if s.bit & bits]
            names = [s.name for s in srcs]
            got = names, np.array([s.weight for s in srcs], np.float64), src_codes(names)
            if len(self._subsets) >= 64:   # (bounded: 20 sources make a million sets)
                self._subsets.clear()
            self._subsets[bits] = got
        return got

    def scoped(self, ds, rules: dict, category: str) -> tuple[dict, np.ndarray, np.ndarray | None] | None:
        """The rules scoped to ``category``, their mask (as ``mask``) and its products when few
        (as ``first``), or None when the category has no products (the slot is not scoped then)."""
        try:
            return self._scoped[category]
        except KeyError:
            pass
        got = None
        if len(ds.category_items(category)):
            scoped = {**rules, "categories": [category]}
            mask = R._rules_mask(ds, scoped, for_kernel=True)
            got = scoped, mask, _few(mask)
        # bounded: a shop's categories (all of them, as the rules' masks: a few MB), and
        # whatever a request sends
        if len(self._scoped) >= max(256, min(4096, R._RULES_MASKS_BYTES // max(ds.n_items, 1))):
            self._scoped.clear()
        self._scoped[category] = got
        return got


class _FusedSource:
    """A source of a ``_Fusion``: its place in the strategy, its recommender, its ``query``
    (None: not a table source) with its fitted state, whether it has a ``cache_key`` of its own
    (else its key is always None: no pool), its ``query_spec`` (``_tables.QuerySpec``, None
    when it has none)."""
    __slots__ = ("source", "place", "rec", "query", "fitted", "keyed", "spec")

    def __init__(self, source: _Source, place: int, rec, fitted):
        self.source, self.place, self.rec, self.fitted = source, place, rec, fitted
        self.query = getattr(rec, "query", None)
        self.keyed = type(rec).cache_key is not Recommender.cache_key
        self.spec = None   # (its ``QuerySpec``; None: its query is asked)
        spec = getattr(rec, "query_spec", None) if self.query is not None else None
        if spec is not None:
            try:
                self.spec = spec(fitted)
            except Exception as exc:   # (its query asked: it fails there as it may, logged per request)
                log.warning("query_spec failed", extra={"recommender": source.name, "error": repr(exc)})


class _Fusion:
    """What ``_fused`` reads of a plan and its model, made once: the sources a request may ask
    (``_FusedSource``; those not registered or not fitted in the model never apply, and are
    left out), every source's weight (float64) and name code (the kernel's ``src_weight`` and
    ``src_code``: the strategy's places)."""
    __slots__ = ("sources", "weights", "codes")

    def __init__(self, model, sources: tuple, names: list[str]):
        recs = model.recommenders
        self.sources = tuple(_FusedSource(s, j, recs[s.name], model.fitted[s.name]) for j, s in enumerate(sources)
                             if recs.get(s.name) is not None and s.name in model.fitted)
        self.weights = np.array([s.weight for s in sources], np.float64)
        self.codes = src_codes(names)


class _Plans(dict):
    """A model's ``SlotPlan`` memo: (id of the strategy, the rules) -> (plan, the strategy,
    kept so that its id is not reused); ``last``: per id of a strategy, the rules (a copy),
    plan and strategy of its last plan made or found. Never pickled with the model (an empty
    one is)."""
    def __init__(self):
        super().__init__()
        self.last: dict[int, tuple] = {}

    def __reduce__(self):
        return _Plans, ()


_PLANS = 256   # per model (a tenant's strategies x the rule values its requests send)


def slot_plan(model, strategy: dict, rules: dict) -> SlotPlan:
    """``strategy`` and ``rules``' ``SlotPlan`` for ``model`` (kept with it: a new build plans
    anew). A strategy is not changed once served (the config makes a new one per version)."""
    plans = model.__dict__.get("_slot_plans")
    if plans is None:
        plans = model.__dict__.setdefault("_slot_plans", _Plans())
    # the strategy's last rules, compared as dicts (C, no hashing; the rules a request sends
    # are mostly its variant's, a copy per request): ~0.3 µs, the memo's key ~2 µs
    last = plans.last.get(id(strategy))
    if last is not None and last[2] is strategy and last[0] == rules:
        return last[1]
    items = tuple(rules.items())
    key = (id(strategy), items)
    try:
        hit = plans.get(key)   # (hashes the rules once: the key is not hashed beforehand)
    except TypeError:   # (a list among the rules: exclude, categories, pins, boosts)
        key = (id(strategy), repr(items))
        hit = plans.get(key)
    if hit is None:
        plan = SlotPlan(model.ds, strategy, rules)
        if len(plans) >= _PLANS:
            plans.clear()
            plans.last.clear()
        plans[key] = plan, strategy
    else:
        plan = hit[0]
    if len(plans.last) >= _PLANS:
        plans.last.clear()
    plans.last[id(strategy)] = dict(rules), plan, strategy
    return plan
