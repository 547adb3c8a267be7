"""``kernels/sums.neighbour_top`` and the sources built on it, against the numpy code they
replace (kept here as the reference), on random tables full of ties, with padding, empty and
single-element inputs: the same items, float32 scores bit for bit, and reasons."""
import numpy as np
import pytest

from server.recommenders import _tables
from server.recommenders._common import Neighbours, SeedFinder, seed_arrays, seed_vectors
from server.recommenders._text import TextNeighbours, top_positions
from server.recommenders.base import Candidates, LazyReasons, SeedVectors
from server.recommenders.kernels.sums import NO_MORE, neighbour_top
from server.recommenders.realtime_personal import MIX, REASON, RealtimePersonal


class DS:
    def __init__(self, n):
        self.n_items = n

    @staticmethod
    def label(i):
        return f"p{i}"


class Ctx:
    def __init__(self, seeds, item=-1):
        self.seeds, self.item = seeds, item

    def session_items(self, n):
        return list(self.seeds[:n])

    def _session(self, n, in_session_only):
        memo = self.memo()
        key = ("session", n)
        if key not in memo:   # (one tuple per request, as Context memoises it)
            memo[key] = tuple(self.seeds[:n])
        return memo[key]

    def session_vectors(self, n, in_session_only=False):   # (as Context: of the memoised tuple)
        return SeedVectors(self._session(n, in_session_only))

    def memo(self):
        return self.__dict__.setdefault("_memo", {})


def realtime_numpy(model, ds, ctx, k):
    """realtime_personal's recommend before the kernel."""
    coview, itemcf = model
    seeds = [p for p in ctx.session_items(8) if 0 <= p[0] < len(coview.idx) and p[1] > 0]
    if not seeds:
        return Candidates.empty()
    drop = {ctx.item} if ctx.item >= 0 else None
    n = ds.n_items
    s, w = seed_arrays(seeds)
    a, b = coview.rows_at(s, w), itemcf.rows_at(s, w)
    total = 0.6 * a.total(n, drop).astype(np.float32) + 0.4 * b.total(n, drop).astype(np.float32)
    c = Candidates.top(total, k)
    find = SeedFinder(a, b)
    c.reasons = lambda j: f"because you viewed {ds.label(find(j))}"
    return c


def text_numpy(tn, seeds, k, ds, reason):
    """TextNeighbours.candidates before the kernel."""
    n = tn.index.n_items
    valid = [(i, w) for i, w in seeds if 0 <= i < n]
    if not valid:
        return Candidates.empty()
    rows = Neighbours(tn.idx, tn.score).rows_of(valid)
    total = rows.total(n).astype(np.float32)
    pos = top_positions(total, k)
    if not len(pos):
        return Candidates.empty()
    find = SeedFinder(rows)
    return Candidates(pos, total[pos], LazyReasons(lambda p: f"{reason} {ds.label(find(int(pos[p])))}", len(pos)))


def top(nb: Neighbours, seeds, weights, k: int, drop=()) -> tuple:
    """``neighbour_top`` over one table."""
    pad, ends = nb.padded(), nb.ends()
    return neighbour_top(pad, nb.score, ends, pad, nb.score, ends, 1.0, 0.0, np.asarray(seeds, np.int64),
                         np.asarray(weights, np.float32), *NO_MORE, np.asarray(drop, np.int64), k)


def rule_order(scores, k, items=None, positive=False):
    """The tie rule by brute force: positions by (score descending, item ascending; the
    position without items), NaN last, ``positive``: only scores > 0; the first ``k``."""
    scores = np.asarray(scores, np.float64)
    items = np.arange(len(scores)) if items is None else np.asarray(items)
    pos = [p for p in range(len(scores)) if not positive or scores[p] > 0]
    pos.sort(key=lambda p: (scores[p] != scores[p], -scores[p] if scores[p] == scores[p] else 0, items[p]))
    return pos[:k]


def tied_scores(rng, t: int, n: int, low: int, high: int, dtype) -> np.ndarray:
    """``n`` random scores of trial ``t``: every other trial halves of integers in [low, high)
    (few values: ties everywhere), else normal; every fifth with +-inf and NaN."""
    s = (rng.integers(low, high, n) / 2 if t % 2 else rng.normal(size=n)).astype(dtype)
    if t % 5 == 0 and n:
        s[rng.integers(0, n, 3)] = rng.choice([np.inf, -np.inf, np.nan], 3)
    return s


def test_the_tie_rule_orders_equal_scores_by_item():
    """``Candidates.best_order`` and ``_text.top_positions`` (the references of every kernel's
    top k) against the rule by brute force, on scores full of ties, NaN and infinities."""
    rng = np.random.default_rng(21)
    crossed = 0
    for t in range(3000):
        n = int(rng.integers(0, 70))
        s = tied_scores(rng, t, n, -2, 5, np.float32)
        k = int(rng.integers(1, 20))
        items = rng.permutation(300)[:n]
        if n > k:
            crossed += crosses(np.sort(s[s == s])[::-1], k)
        assert Candidates.best_order(s, k).tolist() == rule_order(s, k)
        assert top_positions(s, k).tolist() == rule_order(s, k, positive=True)
        assert top_positions(s, k, items).tolist() == rule_order(s, k, items, positive=True)
    assert crossed > 500       # ties across the k-th place, the case a partition decides


def same(got: Candidates, want: Candidates):
    assert got.items.tolist() == want.items.tolist()
    assert got.scores.tobytes() == want.scores.tobytes()
    assert [got.reason(p) for p in range(len(got))] == [want.reason(p) for p in range(len(want))]


def table(rng, n, width, levels):
    """n x width neighbours (distinct per row, not the item itself, -1 padded at random
    lengths), scores from ``levels`` distinct values (few: ties everywhere), sorted per row (a
    third of the rows shuffled, padding and all)."""
    idx = np.full((n, width), -1, np.int32)
    score = np.zeros((n, width), np.float32)
    for i in range(n):
        m = int(rng.integers(0, min(width, n - 1) + 1))
        others = np.delete(np.arange(n), i)
        idx[i, :m] = rng.choice(others, m, replace=False)
        score[i, :m] = np.sort(rng.integers(1, levels + 1, m) / levels)[::-1]
        if i % 3 == 0:      # padding between neighbours too (the kernel reads up to each row's last)
            order = rng.permutation(width)
            idx[i], score[i] = idx[i, order], score[i, order]
    return Neighbours(idx, score)


def random_seeds(rng, n, max_seeds, levels=None):
    s = rng.choice(n, int(rng.integers(1, min(max_seeds, n) + 1)), replace=False)
    if levels:
        w = rng.integers(1, levels + 1, len(s)) / levels
    else:
        w = rng.random(len(s)) * 3 + 0.01
    return [(int(i), float(x)) for i, x in zip(s, w)]


def cases(seed, trials):
    rng = np.random.default_rng(seed)
    for t in range(trials):
        n = int(rng.integers(1, 60))
        width = int(rng.integers(1, 12))
        levels = int(rng.choice([1, 2, 3, 7, 1000]))
        k = int(rng.integers(1, 15))
        yield rng, n, width, levels, k, t


def test_neighbour_candidates_are_the_numpy_answer_ties_included():
    ties = 0
    for rng, n, width, levels, k, t in cases(1, 1500):
        nb = table(rng, n, width, levels)
        seeds = random_seeds(rng, n, 6, levels if t % 2 else None)
        drop = {int(rng.integers(0, n)), n + 3} if t % 3 == 0 else None
        ties += crosses(top(nb, *seed_vectors(seeds), k + 1, drop=sorted(drop or ()))[1], k)
        same(nb.candidates(seeds, k, "with {}", DS(n), drop), nb.candidates_numpy(seeds, k, "with {}", DS(n), drop))
    assert ties > 100      # ties across the k-th place, which a partition would decide


def test_neighbour_top_in_with_a_shared_map_is_neighbour_top_and_leaves_it_zero():
    """``neighbour_top_in`` with one product map for every call (as ``slot_select``'s caller
    keeps one per thread) gives ``neighbour_top``'s answers (its own map zeroed per call), one
    or two tables, drops and padding included; the map is zeros again after each call, and a
    map too short is not used."""
    from server.recommenders.kernels.sums import neighbour_top_in
    shared = np.zeros(64, np.int32)
    for rng, n, width, levels, k, t in cases(5, 600):
        a, b = table(rng, n, width, levels), table(rng, n, width, levels)
        s, w = seed_vectors(random_seeds(rng, n, 6, levels if t % 2 else None))
        drop = rng.integers(-2, n + 2, int(rng.integers(0, 3))).astype(np.int64)
        mix = (np.float32(0.6), np.float32(0.4)) if t % 2 else (np.float32(1.0), np.float32(0.0))
        args = (*a.table(), *b.table(), *mix, s, w, *NO_MORE, drop, k)
        want = neighbour_top(*args)
        for slot_map in (shared, np.zeros(n, np.int32)):   # (the second too short: the call's own)
            got = neighbour_top_in(*args, slot_map)
            assert all(x.tobytes() == y.tobytes() for x, y in zip(got, want))
            assert not slot_map.any()


def crosses(best_k1, k) -> bool:
    """Whether the ``k + 1`` best scores ``best_k1`` have a tie across the k-th place."""
    return len(best_k1) > k and best_k1[k - 1] == best_k1[k]


def counted(monkeypatch, module) -> dict:
    """Counts, in ``module``'s ``neighbour_top`` calls, of answers with and without two equal
    scores (the ties the rule orders)."""
    tied = {True: 0, False: 0}

    def call(*args):
        out = neighbour_top(*args)
        tied[bool(len(out[1]) > 1 and (out[1][1:] == out[1][:-1]).any())] += 1
        return out
    monkeypatch.setattr(module, "neighbour_top", call)
    return tied


def test_realtime_personal_is_the_numpy_answer_ties_included(monkeypatch):
    tied = counted(monkeypatch, _tables)
    rp = RealtimePersonal()
    for rng, n, width, levels, k, t in cases(2, 1500):
        model = table(rng, n, width, levels), table(rng, n, max(1, width - t % 3), levels)
        if t % 4 == 0:       # the second table wider than the first
            model = model[0], table(rng, n, width + 2, levels)
        ctx = Ctx(random_seeds(rng, n, 9, levels if t % 2 else None), int(rng.integers(-1, n)))
        same(rp.recommend(model, DS(n), ctx, k), realtime_numpy(model, DS(n), ctx, k))
    assert MIX == (0.6, 0.4) and REASON == "because you viewed {}"
    assert tied[True] > 100 and tied[False] > 300


def text_table(nb: Neighbours) -> TextNeighbours:
    tn = TextNeighbours.__new__(TextNeighbours)
    tn.index = type("Index", (), {"n_items": len(nb.idx)})()
    tn.idx, tn.score, tn.k, tn._cache = nb.idx, nb.score, nb.idx.shape[1], {}
    return tn


def test_text_candidates_are_the_numpy_answer_ties_included(monkeypatch):
    tied = counted(monkeypatch, _tables)
    for rng, n, width, levels, k, t in cases(3, 1500):
        tn = text_table(table(rng, n, width, levels))
        seeds = random_seeds(rng, n, 6, levels if t % 2 else None) + ([(n + 1, 1.0)] if t % 5 == 0 else [])
        same(tn.candidates(seeds, k, DS(n), "like"), text_numpy(tn, seeds, k, DS(n), "like"))
    assert tied[True] > 50 and tied[False] > 300


def test_edges_empty_single_padding_and_out_of_range():
    nb = Neighbours(np.array([[1, -1], [-1, -1], [0, 1]], np.int32), np.array([[0.5, 0], [0, 0], [1, 1]], np.float32))
    # no seeds, a seed without neighbours, k = 0: nothing
    for seeds, k in (([], 5), ([1], 5), ([0], 0)):
        items, scores, closest = top(nb, seeds, [1.0] * len(seeds), k)
        assert len(items) == len(scores) == len(closest) == 0
    # one seed, one neighbour
    items, scores, closest = top(nb, [0], [1.0], 1)
    assert items.tolist() == [1] and scores.tolist() == [0.5] and closest.tolist() == [0]
    # two equal scores: the lower item first, whether one or both are kept
    items, scores, closest = top(nb, [2], [1.0], 1)
    assert items.tolist() == [0] and closest.tolist() == [2]
    items, scores, closest = top(nb, [2], [1.0], 2)
    assert items.tolist() == [0, 1] and closest.tolist() == [2, 2]
    # drop (out of range values ignored) and the seeds themselves are left out
    items, scores, closest = top(nb, [2, 0], [1.0, 1.0], 5, drop=[1, 7, -3])
    assert items.tolist() == []
    assert nb.ends().tolist() == [1, 0, 2]
    assert Neighbours(np.array([[-1, 3, -1, 2, -1]], np.int32), np.ones((1, 5), np.float32)).ends().tolist() == [4]
    assert Neighbours.empty(3, 0).ends().tolist() == [0, 0, 0]
    # a tie among few candidates of a large catalog, met in the row's order 1500, 3, 900
    big = Neighbours.empty(2000, 4)
    big.idx[7], big.score[7] = [1500, 3, 900, -1], [0.5, 0.5, 0.25, 0]
    assert top(big, [7], [1.0], 1)[0].tolist() == [3]
    assert top(big, [7], [1.0], 3)[0].tolist() == [3, 1500, 900]
    for k in (1, 2, 3):
        same(big.candidates([(7, 1.0)], k, "{}", DS(2000)), big.candidates_numpy([(7, 1.0)], k, "{}", DS(2000)))
    # through the sources' wrappers
    ds = DS(3)
    assert len(nb.candidates([], 5, "{}", ds)) == 0 and len(nb.candidates([(5, 1.0)], 5, "{}", ds)) == 0
    same(nb.candidates([(2, 1.0), (7, 1.0)], 5, "{}", ds), nb.candidates_numpy([(2, 1.0), (7, 1.0)], 5, "{}", ds))
    assert len(RealtimePersonal().recommend((nb, nb), ds, Ctx([]), 5)) == 0
    assert len(text_table(nb).candidates([(9, 1.0)], 5, ds, "x")) == 0


def test_a_kernel_refuses_other_dtypes():
    nb = Neighbours(np.array([[1], [0]], np.int32), np.ones((2, 1), np.float32))
    with pytest.raises(TypeError):
        neighbour_top(nb.padded(), nb.score, nb.ends(), nb.padded(), nb.score, nb.ends(), 1.0, 0.0,
                      np.array([0], np.int32), np.ones(1, np.float32), *NO_MORE, np.zeros(0, np.int64), 1)


def merge_numpy(own_i, own_w, live: dict, positive: bool):
    """visitor_items' merge of a canonical row with the live items before the kernel."""
    if live:
        li = np.fromiter(live, np.int64, len(live))
        lw = np.fromiter(live.values(), np.float64, len(live))
        if not len(own_i):
            order = li.argsort(kind="stable")
            return li[order], lw[order], True
        at = np.minimum(own_i.searchsorted(li), len(own_i) - 1)
        present = own_i[at] == li
        has_live = not present.all()
        w = own_w
        if has_live:
            w[at[present]] = np.maximum(w[at[present]], lw[present])
            items = np.concatenate([own_i, li[~present]])
            w = np.concatenate([w, lw[~present]])
            order = np.argsort(items, kind="stable")
            items, w = items[order], w[order]
        else:
            w[at] = np.maximum(w[at], lw)
            items = own_i
    else:
        items, w, has_live = own_i, own_w, False
    if not positive:
        keep = w > 0
        if not keep.all():
            items, w = items[keep], w[keep]
    return items, w, has_live


def test_visitor_merge_is_the_numpy_merge():
    from server.recommenders.kernels.sums import merge_visitor_items
    rng = np.random.default_rng(5)
    seen = set()
    for t in range(3000):
        own_i = np.sort(rng.choice(60, int(rng.integers(0, 30)), replace=False)).astype(np.int64)
        own_w = rng.choice([0.5, 1.0, 2.0, 3.0, 0.0, -1.0, np.nan] if t % 3 == 0 else [0.5, 1.0, 2.0, 3.0],
                           len(own_i)).astype(np.float64)
        live_keys = rng.choice(60, int(rng.integers(0, 10)), replace=False).tolist()
        live = {int(i): float(rng.choice([0.5, 1.0, 2.0, 3.0, 1.7])) for i in live_keys}
        positive = bool(t % 2)
        li = np.fromiter(live, np.int64, len(live))
        lw = np.fromiter(live.values(), np.float64, len(live))
        got = merge_visitor_items(own_i, own_w.copy(), li, lw, positive)
        want = merge_numpy(own_i.copy(), own_w.copy(), live, positive)
        assert got[0].tolist() == want[0].tolist() and got[2] == want[2]
        assert got[1].tobytes() == want[1].astype(np.float64).tobytes()
        assert got[0].dtype == np.int64 and got[1].dtype == np.float64
        seen.add((bool(len(own_i)), bool(live), got[2], positive))
    assert len(seen) >= 7       # no row / no live / both, with and without new live items


def test_best_positive_is_top_positions():
    from server.recommenders.kernels.sums import best_positive
    rng = np.random.default_rng(7)
    crossed = 0
    for t in range(4000):
        n = int(rng.integers(0, 60))
        s = tied_scores(rng, t, n, -3, 6, np.float32)
        items = rng.permutation(200)[:n].astype(np.int64)
        k = int(rng.integers(1, 20))
        for finite_only in (False, True):
            ref = np.where(np.isfinite(s), s, 0).astype(np.float32) if finite_only else s
            pos = best_positive(s, items, k, finite_only)
            assert pos.tolist() == top_positions(ref, k, items).tolist()
            crossed += crosses(np.sort(ref[ref > 0])[::-1], k)
    assert crossed > 300


def test_best_positive_f64_is_top_positions_over_a_catalog():
    """demographic's pick: float64 scores, the positions as items."""
    from server.recommenders.kernels.sums import best_positive_f64
    rng = np.random.default_rng(11)
    crossed = 0
    for t in range(3000):
        n = int(rng.integers(0, 80))
        s = tied_scores(rng, t, n, -3, 6, np.float64)
        k = int(rng.integers(1, 20))
        pos = best_positive_f64(np.ascontiguousarray(s, np.float64), np.arange(n, dtype=np.int64), k, False)
        assert pos.tolist() == top_positions(s, k).tolist()
        crossed += crosses(np.sort(s[s > 0])[::-1], k)
    assert crossed > 300


def test_top_k_over_many_candidates_extreme_scores_and_every_k():
    """The k best kept in a heap of int64 keys (a score's float32 bits, then the item): against
    the numpy answer on many candidates per call (k well below them: the heap's replacements),
    with scores that overflow to +inf, subnormal ones, ties at every level, and k from 1 to
    past the candidates."""
    rng = np.random.default_rng(41)
    n, width = 400, 30
    seen = {"inf": 0, "subnormal": 0}
    for t in range(60):
        nb = table(rng, n, width, int(rng.choice([1, 3, 1000])))
        if t % 3 == 0:   # huge scores: their float32 products and sums overflow to +inf
            nb.score[nb.idx >= 0] *= np.float32(3e38)
        elif t % 3 == 1:   # subnormal scores (positive, below float32's normal range)
            nb.score[nb.idx >= 0] *= np.float32(1e-42)
        seeds = random_seeds(rng, n, 12, 3 if t % 2 else None)
        for k in (1, 2, 7, 44, 1000):
            got = nb.candidates(seeds, k, "with {}", DS(n))
            with np.errstate(over="ignore"):   # (numpy's float32 products overflow, as meant)
                same(got, nb.candidates_numpy(seeds, k, "with {}", DS(n)))
        seen["inf"] += int(np.isinf(got.scores).sum())
        seen["subnormal"] += int(((got.scores > 0) & (got.scores < np.finfo(np.float32).tiny)).sum())
    assert seen["inf"] > 100 and seen["subnormal"] > 100
    items, scores, _ = top(nb, [s for s, _ in seeds], [1.0] * len(seeds), 1000)
    assert len(items) > 100   # (many candidates a call)
