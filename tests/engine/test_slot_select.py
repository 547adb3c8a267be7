"""kernels.slot_select (table queries, blend and selection in one call) against its reference, and
kernels.slot_select_2 (at most two tables and queries, flat arguments) and slot_select_4 (flat) against slot_select:
each query's ``neighbour_top`` answer, then ``blend.py``'s steps over the non-empty answers in
the strategy's order (silent ones dropped as ``_blend`` drops them), on random tables with
ties, empty and single answers, padding, more seeds, drops and unused query places."""
import numpy as np
import pytest

from server.placements import blend
from server.placements import kernels as K
from server.recommenders._common import Neighbours
from server.recommenders.kernels.sums import neighbour_top

NO_CART = np.zeros(0, np.int32)
NO_HELD = np.zeros((2, 0), np.int64)
NONE = np.zeros(0, np.int64)
NO_CODES = np.zeros(0, np.int32)
SLOT_MAP = np.zeros(4096, np.int32)   # the product map every call shares (``neighbour_top_in``'s): zeros after each
SHORT_MAP = np.zeros(0, np.int32)     # (too short: the call makes its own)


def random_table(rng, n, width, levels):
    """A ``Neighbours`` of ``n`` items, rows of 0..width neighbours (-1 padded), scores on
    ``levels`` values (ties)."""
    idx = np.full((n, width), -1, np.int32)
    score = np.zeros((n, width), np.float32)
    for r in range(n):
        m = int(rng.integers(0, min(width, n - 1) + 1)) if n > 1 else 0
        nb = rng.choice([x for x in range(n) if x != r], size=m, replace=False) if m else []
        idx[r, :m] = nb
        score[r, :m] = np.sort(rng.integers(1, levels + 1, m) / levels)[::-1]
    return Neighbours(idx, score)


def random_query(rng, tables, n):
    a = int(rng.integers(0, len(tables)))
    b = int(rng.integers(0, len(tables))) if rng.random() < 0.4 else a
    mix = (0.6, 0.4) if b != a else (1.0, 0.0)
    s = rng.choice(n, size=int(rng.integers(0, min(n, 6) + 1)), replace=False).astype(np.int64)
    w = rng.choice(np.array([3.0, 2.0, 1.0, 0.2, 0.64, 0.8], np.float32), len(s))
    more = (np.zeros(0, np.int32), np.zeros(0, np.float32))
    if rng.random() < 0.3:
        mi = rng.integers(-1, n, int(rng.integers(1, 5))).astype(np.int32)
        more = (mi, rng.random(len(mi)).astype(np.float32) + np.float32(0.01))
    drop = rng.integers(-2, n + 2, int(rng.integers(0, 3))).astype(np.int64)
    return a, b, mix, s, w, more, drop


def reference(tables, queries, ready, src, weights, codes, k, sel):
    """The unfused path: each query's ``neighbour_top``, the non-empty answers in order,
    those without a positive best dropped, ``blend_sources`` then ``select_pool``."""
    answers = []
    for a, b, mix, s, w, more, drop in queries:
        ta, tb = tables[a].table(), tables[b].table()
        answers.append(neighbour_top(*ta, *tb, mix[0], mix[1], s, w, *more, drop, k))
    kept = []
    for j, v in enumerate(src):
        if v < 0:
            continue
        items, scores, closest = answers[v] if v < K.QUERIES else (*ready[v - K.QUERIES], None)
        if not len(items) or not np.maximum.reduce(scores) > 0:
            continue
        kept.append((j, items, scores, closest))
    if not kept:
        return []
    items = np.concatenate([x[1] for x in kept])
    scores = np.concatenate([x[2] for x in kept])
    lens = np.array([len(x[1]) for x in kept], np.int64)
    silent, rows, score = K.blend_sources(items, scores, lens, np.array([weights[x[0]] for x in kept]), True)
    assert silent == 0
    got = K.select_pool(rows[3], rows, sel["mask"], sel["current"], sel["cart"], sel["held"],
                        np.array([codes[x[0]] for x in kept], np.int64), sel["seen"], sel["cat"], sel["brand"],
                        sel["max_cat"], sel["max_brand"], sel["count"])
    out = []
    for i, s, p in zip(*got.tolist()):
        j, _, _, closest = kept[s]
        out.append((i, j, p, -1 if closest is None else int(closest[p])))
    return out


def fused(tables, queries, ready, src, weights, codes, k, sel):
    pads = [t.table()[0] for t in tables] + [np.zeros((1, 1), np.int32)] * (K.QUERIES - len(tables))
    tsc = [t.table()[1] for t in tables] + [np.zeros((1, 1), np.float32)] * (K.QUERIES - len(tables))
    ends = [t.table()[2] for t in tables] + [np.zeros(1, np.int32)] * (K.QUERIES - len(tables))
    pad_q = K.QUERIES - len(queries)
    qa = [q[0] for q in queries] + [-1] * pad_q
    qb = [q[1] for q in queries] + [-1] * pad_q
    mix_a = [float(q[2][0]) for q in queries] + [0.0] * pad_q
    mix_b = [float(q[2][1]) for q in queries] + [0.0] * pad_q
    seeds = [q[3] for q in queries] + [np.zeros(0, np.int64)] * pad_q
    w = [q[4] for q in queries] + [np.zeros(0, np.float32)] * pad_q
    more = [q[5][0] for q in queries] + [np.zeros(0, np.int32)] * pad_q
    more_w = [q[5][1] for q in queries] + [np.zeros(0, np.float32)] * pad_q
    drops = [q[6] for q in queries] + [np.zeros(0, np.int64)] * pad_q
    if ready:
        items, scores = np.concatenate([r[0] for r in ready]), np.concatenate([r[1] for r in ready])
    else:
        items, scores = np.zeros(0, np.int32), np.zeros(0, np.float32)
    lens = np.array([len(r[0]) for r in ready], np.int64)
    slot_map = SLOT_MAP if len(pads[0]) % 3 else SHORT_MAP
    rest = (tuple(src) + (-1,) * (K.SOURCES - len(src)), np.array(weights, np.float64),
            np.array(codes, np.int64), sel["mask"], sel["current"], sel["cart"], sel["held"],
            sel["seen"], sel["cat"], sel["brand"], sel["max_cat"], sel["max_brand"], sel["count"], slot_map,
            *blend._NO_WALK)   # (no walked query: the seeds given)
    packed = K.slot_select(tuple(pads), tuple(tsc), tuple(ends), tuple(qa), tuple(qb), tuple(mix_a), tuple(mix_b), tuple(seeds), tuple(w),
                           tuple(more), tuple(more_w), tuple(drops), (-1,) * K.QUERIES, k, NONE, items, scores, lens, *rest)
    # the queries' answers after the selection: neighbour_top's, entry by entry (the scores' bits)
    c = int(packed[0])
    at = 1 + 4 * c
    q_start = packed[at:at + K.QUERIES + 1]
    assert q_start[0] == 0 and len(packed) == at + K.QUERIES + 1 + 3 * int(q_start[-1])
    entries = packed[at + K.QUERIES + 1:].reshape(-1, 3)
    for q, (a, b, mix, s, ws, mo, drop) in enumerate(queries):
        ta, tb = tables[a].table(), tables[b].table()
        want = neighbour_top(*ta, *tb, mix[0], mix[1], s, ws, *mo, drop, k)
        got = entries[q_start[q]:q_start[q + 1]]
        assert np.array_equal(got[:, 0], want[0]) and np.array_equal(got[:, 2], want[2])
        assert np.array_equal(got[:, 1].astype(np.uint32).view(np.float32), want[1])
    assert q_start[len(queries):].tolist() == [q_start[len(queries)]] * (K.QUERIES + 1 - len(queries))
    # every query's answer copied from that output instead (another slot asking the same queries,
    # in another order): the same selection and answers
    order = list(range(len(queries)))[::-1]
    qa_prior = [-2 - q for q in order] + [-1] * pad_q
    src_prior = tuple(order.index(v) if 0 <= v < K.QUERIES else v for v in rest[0])
    again = K.slot_select(tuple(pads), tuple(tsc), tuple(ends), tuple(qa_prior), tuple(qa_prior), tuple(mix_a[::-1]),
                          tuple(mix_b[::-1]), tuple(seeds), tuple(w), tuple(more), tuple(more_w), tuple(drops),
                          (-1,) * K.QUERIES, k, packed,
                          items, scores, lens, src_prior, *rest[1:])
    assert np.array_equal(again[:at], packed[:at])
    n_q = len(queries)
    for r, q in enumerate(order):
        assert np.array_equal(again[at + K.QUERIES + 1 + 3 * again[at + r]:at + K.QUERIES + 1 + 3 * again[at + r + 1]],
                              entries[q_start[q]:q_start[q + 1]].ravel())
    assert again[at + n_q] == q_start[n_q]
    # slot_select_2's and _4's ready answers: the first two apart, the others concatenated
    apart = [(r[0], r[1]) for r in ready[:2]] + [blend._NO_ANSWER] * (2 - len(ready[:2]))
    others = ((np.concatenate([r[0] for r in ready[2:]]), np.concatenate([r[1] for r in ready[2:]]),
               np.array([len(r[0]) for r in ready[2:]], np.int64)) if len(ready) > 2 else blend._NO_ANSWERS)
    answers = (*apart[0], *apart[1], *others)
    if len(tables) <= 2 and len(queries) <= 2:   # slot_select_2, padded as ``blend._fused`` pads: the same
        flat = [x for t in tables for x in t.table()]
        flat += blend._NO_TABLE_2[len(flat):]
        for q in range(len(queries)):
            flat += (qa[q], qb[q], mix_a[q], mix_b[q], seeds[q], w[q], more[q], more_w[q], drops[q], -1)
        flat += blend._NO_QUERY_2[10 * len(queries):]
        assert np.array_equal(K.slot_select_2(*flat, k, NONE, *answers, *rest), packed)
    flat = [x for t in tables for x in t.table()]   # slot_select_4, padded as ``blend._fused`` pads: the same
    flat += blend._NO_TABLE_4[len(flat):]
    for q in range(len(queries)):
        flat += (qa[q], qb[q], mix_a[q], mix_b[q], seeds[q], w[q], more[q], more_w[q], drops[q], -1)
    flat += blend._NO_QUERY_4[10 * len(queries):]
    assert np.array_equal(K.slot_select_4(*flat, k, NONE, *answers, *rest), packed)
    assert not SLOT_MAP.any() and not len(SHORT_MAP)   # (the entries used reset)
    return [tuple(packed[1 + 4 * t:5 + 4 * t].tolist()) for t in range(c)]


def random_selection(rng, n, codes):
    mask = rng.random(n) < 0.85
    held = NO_HELD
    if rng.random() < 0.5:
        h = rng.choice(n, size=int(rng.integers(1, min(n, 5) + 1)), replace=False)
        held = np.stack([h, rng.choice(list(codes) + [99], len(h))]).astype(np.int64)
    capped = rng.random() < 0.4
    cat = rng.integers(-1, 4, n).astype(np.int32) if capped else NO_CODES
    brand = rng.integers(-1, 3, n).astype(np.int32) if capped else NO_CODES
    return {"mask": mask, "current": int(rng.integers(-1, n)),
            "cart": rng.integers(-n, n, int(rng.integers(0, 3))).astype(np.int32) if rng.random() < 0.3 else NO_CART,
            "held": held, "seen": rng.choice(n, size=int(rng.integers(0, min(n, 3) + 1)), replace=False).astype(np.int64),
            "cat": cat, "brand": brand, "max_cat": int(rng.integers(1, 3)) if capped else 0,
            "max_brand": int(rng.integers(1, 3)) if capped and rng.random() < 0.5 else 0,
            "count": int(rng.integers(1, 12))}


@pytest.mark.parametrize("levels", [2, 3, 50])
@pytest.mark.parametrize("seed", range(8))
def test_slot_select_equals_the_queries_then_the_blend_and_selection(seed, levels):
    rng = np.random.default_rng(seed)
    n_ready = set()
    for _ in range(25):
        n = int(rng.integers(1, 120))
        tables = [random_table(rng, n, int(rng.integers(1, 12)), levels) for _ in range(int(rng.integers(1, 5)))]
        n_src = int(rng.integers(1, K.SOURCES + 1))
        queries, ready, src = [], [], []
        for _ in range(n_src):
            kind = rng.random()
            if kind < 0.5 and len(queries) < K.QUERIES:
                src.append(len(queries))
                queries.append(random_query(rng, tables, n))
            elif kind < 0.85:
                m = int(rng.integers(0, min(n, 30) + 1))
                its = rng.choice(n, size=m, replace=False).astype(np.int32)
                sc = (rng.integers(0 if rng.random() < 0.15 else 1, levels + 1, m) / levels).astype(np.float32)
                if m and rng.random() < 0.05:
                    sc[0] = np.nan
                if m:
                    src.append(K.QUERIES + len(ready))
                    ready.append((its, sc))
                else:
                    src.append(-1)
            else:
                src.append(-1)   # not applicable, failed
        weights = rng.choice([1.0, 0.6, 0.4, 0.3, 0.2, 0.7], n_src).tolist()
        codes = rng.choice(5, n_src).tolist()
        k = int(rng.integers(1, 40))
        sel = random_selection(rng, n, codes)
        assert fused(tables, queries, ready, src, weights, codes, k, sel) == \
            reference(tables, queries, ready, src, weights, codes, k, sel)
        n_ready.add(min(len(ready), 3))
    assert n_ready >= {1, 2, 3}   # (slot_select_2 and _4 take the first two ready answers apart, the others concatenated)


def test_slot_select_nothing_single_and_every_query_place():
    tables = [Neighbours(np.array([[1, -1], [0, 2], [1, -1]], np.int32),
                         np.array([[0.5, 0], [0.5, 0.5], [0.25, 0]], np.float32))]
    sel = {"mask": np.ones(3, bool), "current": -1, "cart": NO_CART, "held": NO_HELD, "seen": NONE,
           "cat": NO_CODES, "brand": NO_CODES, "max_cat": 0, "max_brand": 0, "count": 5}
    nothing = (0, 0, (1.0, 0.0), np.zeros(0, np.int64), np.zeros(0, np.float32),
               (np.zeros(0, np.int32), np.zeros(0, np.float32)), NONE)
    assert fused(tables, [], [], [], [], [], 5, sel) == []                  # no source
    assert fused(tables, [nothing], [], [0], [1.0], [0], 5, sel) == []     # an empty answer
    one = (0, 0, (1.0, 0.0), np.array([0], np.int64), np.array([2.0], np.float32),
           (np.zeros(0, np.int32), np.zeros(0, np.float32)), NONE)
    assert fused(tables, [one], [], [0], [1.0], [0], 5, sel) == [(1, 0, 0, 0)]
    # four queries, the last one's answer picked through its own place
    q4 = [nothing, nothing, nothing, one]
    assert fused(tables, q4, [], [0, 1, 2, 3], [1.0] * 4, [0, 1, 2, 3], 5, sel) == [(1, 3, 0, 0)]
    # a ready answer only, and one that says nothing (best not positive) beside a query
    ready = [(np.array([2], np.int32), np.array([1.0], np.float32)),
             (np.array([0], np.int32), np.array([0.0], np.float32))]
    assert fused(tables, [], ready[:1], [K.QUERIES], [0.5], [0], 5, sel) == [(2, 0, 0, -1)]
    got = fused(tables, [one], ready[1:], [K.QUERIES, 0], [1.0, 1.0], [0, 1], 5, sel)
    assert got == [(1, 1, 0, 0)] == reference(tables, [one], ready[1:], [K.QUERIES, 0], [1.0, 1.0], [0, 1], 5, sel)
