"""The item sources' shortcuts (``_common``): item_cf's person merged by ``neighbour_top``
(``more``), the request's ``SeedVectors`` and the model's reason texts, against the Python they
replace, on random tables full of ties, with padding, empty rows and invalid seeds."""
import math

import numpy as np

from server.recommenders._common import Neighbours
from server.recommenders._tables import TableQuery
from server.recommenders.base import ClosestReasons, Context, Recent, SeedVectors
from server.recommenders.base import Candidates
from server.recommenders.item_cf import REASON, ItemCF
from server.recommenders.kernels.sums import NO_MORE, neighbour_top
from tests.recommenders.test_sum_kernels import DS, cases, random_seeds, same, table


class Ctx:
    """What item_cf reads of a request: its seeds (one memoised tuple, as ``SeedVectors``) and person."""
    def __init__(self, seeds, person=-1):
        self.seeds, self.person = tuple(seeds), person

    def _seeds(self, n):
        return self.seeds[:n] if n < len(self.seeds) else self.seeds

    def seed_vectors(self, n):
        return SeedVectors(self._seeds(n))


def item_cf_python(model, ds, ctx, k):
    """item_cf's recommend before the kernel merged the person's top items."""
    nbrs, (top_idx, top_w), _ = model
    seeds = dict(ctx._seeds(10))
    if 0 <= ctx.person < len(top_idx):
        for i, w in zip(top_idx[ctx.person].tolist(), top_w[ctx.person].tolist()):
            if i >= 0:
                seeds.setdefault(i, w)
    if not seeds:
        return Candidates.empty()
    seeds = list(seeds.items())
    n = len(nbrs.idx)
    if all(0 <= i < n and w > 0 for i, w in seeds):
        pad, ends = nbrs.padded(), nbrs.ends()
        s = np.array([i for i, _ in seeds], np.int64)
        w = np.array([x for _, x in seeds], np.float32)
        items, scores, closest = neighbour_top(pad, nbrs.score, ends, pad, nbrs.score, ends, 1.0, 0.0, s, w, *NO_MORE,
                                               np.zeros(0, np.int64), k)
        return Candidates(items, scores, [REASON.format(ds.label(c)) for c in closest.tolist()])
    return nbrs.candidates_numpy(seeds, k, REASON, ds)


def person_rows(rng, n, persons, levels, bad):
    """persons x 10 top items (-1 padded, some rows empty), weights from ``levels`` values (ties);
    with ``bad``, a few weights <= 0 (the numpy path)."""
    idx = np.full((persons, 10), -1, np.int32)
    w = np.zeros((persons, 10), np.float32)
    for p in range(persons):
        m = int(rng.integers(0, min(10, n) + 1))
        idx[p, :m] = rng.choice(n, m, replace=False)
        w[p, :m] = np.sort(rng.integers(1, levels + 1, m) / levels)[::-1]
        if bad and m and p % 4 == 0:
            w[p, m - 1] = 0.0 if p % 8 else -1.0
    return idx, w, ((idx < 0) | (w > 0)).all(axis=1)


def test_item_cf_merges_the_person_like_the_python_ties_included():
    paths = {"kernel": 0, "numpy": 0}
    for rng, n, width, levels, k, t in cases(11, 1500):
        nb = table(rng, n, width, levels)
        idx, w, ok = person_rows(rng, n, 6, levels, bad=t % 3 == 0)
        model = nb, (idx, w), ok
        seeds = random_seeds(rng, n, 6, levels if t % 2 else None) if t % 7 else []
        if t % 11 == 0 and seeds:    # a seed out of range or weighed 0: the numpy path
            seeds.append((n + 2, 1.0) if t % 2 else (seeds[0][0] ^ 1, 0.0))
        person = int(rng.integers(-1, 7))   # -1 and 6: not a known person
        ctx = Ctx(seeds, person)
        paths["kernel" if 0 <= person < 6 and ok[person] and SeedVectors(seeds).fits(n) else "numpy"] += 1
        same(ItemCF().recommend(model, DS(n), ctx, k), item_cf_python(model, DS(n), Ctx(seeds, person), k))
    assert paths["kernel"] > 400 and paths["numpy"] > 200


def test_more_seeds_follow_the_seeds_unless_among_them():
    nb = Neighbours(np.array([[1, 2], [0, 2], [0, 1], [0, 1]], np.int32), np.array([[1, .5], [1, .5], [1, .5], [.5, .25]],
                                                                                np.float32))
    pad, ends = nb.padded(), nb.ends()

    def top(seeds, weights, more, more_w):
        return neighbour_top(pad, nb.score, ends, pad, nb.score, ends, 1.0, 0.0, np.array(seeds, np.int64),
                             np.array(weights, np.float32), np.array(more, np.int32), np.array(more_w, np.float32),
                             np.zeros(0, np.int64), 5)
    # 0 is a seed already (its weight stays 1), -1 is none, 3 joins: the same as seeds [0, 3]
    got, want = top([0], [1.0], [-1, 0, 3], [9.0, 9.0, 2.0]), top([0, 3], [1.0, 2.0], [], [])
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert got[0].tolist() == [1, 2]     # the seeds, 3 included, are no candidates
    # no seeds, only more; nothing at all
    assert top([], [], [2], [1.0])[0].tolist() == [0, 1]
    assert len(top([], [], [-1], [1.0])[0]) == 0


def test_seed_vectors_and_the_request_memo():
    v = SeedVectors(((4, 3.0), (1, 0.5), (9, 0.2)))
    assert v.items.dtype == np.int64 and v.weights.dtype == np.float32 and v.items.tolist() == [4, 1, 9]
    assert (v.low, v.end, v.positive) == (1, 10, True) and v.fits(10) and not v.fits(9)
    assert not SeedVectors(((1, 1.0), (-1, 1.0))).fits(10)
    assert not SeedVectors(((1, 1.0), (2, 0.0))).fits(10)
    assert not SeedVectors(((1, math.nan), (2, 1.0))).fits(10) and not SeedVectors(((2, 1.0), (1, math.nan))).fits(10)
    e = SeedVectors(())
    assert e.fits(0) and len(e.items) == 0 and e.weights.dtype == np.float32
    assert v.pairs() == ((4, 3.0), (1, 0.5), (9, 0.2))
    ctx = Context(recent=[Recent("p", 1, 0, 0, 1.0, True)])   # (a plain list: the Python walk)
    seeds = ctx._seeds(10)
    assert ctx.seed_vectors(10) is ctx.seed_vectors(10) is ctx._vectors_of(seeds)   # once per request
    other = tuple(seeds)[:0] + ((2, 1.0),)
    assert ctx._vectors_of(other).items.tolist() == [2]                      # another tuple: its own


def test_reason_texts_are_made_once_per_model_and_format():
    nb = Neighbours.empty(3)
    texts = nb.reason_texts("with {}")
    assert nb.reason_texts("with {}") is texts and nb.reason_texts("like {}") is not texts
    r = ClosestReasons("with {}", DS(3), np.array([2, 0, 2], np.int32), texts)
    assert [r[0], r[1], r[2]] == ["with p2", "with p0", "with p2"] and texts == {2: "with p2", 0: "with p0"}
    texts[2] = "kept"                     # a text is read from the memo once made
    assert ClosestReasons("with {}", DS(3), np.array([2], np.int32), texts)[0] == "kept"


def test_a_query_holds_what_the_constructor_would():
    """``TableQuery.of`` (the sources' constructor) against ``TableQuery(...)``'s defaults."""
    nb = Neighbours.empty(10)
    v = SeedVectors(((4, 3.0), (1, 0.5)))
    more = (np.array([7, -1], np.int32), np.array([0.5, 0.0], np.float32))
    for q, ref in ((nb.query(None, "with {}", v), TableQuery(nb, v.items, v.weights, "with {}", nb.reason_texts("with {}"))),
                   (nb.query(None, "with {}", v, {3}, more),
                    TableQuery(nb, v.items, v.weights, "with {}", nb.reason_texts("with {}"), more=more,
                               drop=np.array([3], np.int64)))):
        assert type(q) is TableQuery and q == q and q != ref and hash(q) != hash(ref)   # (by identity)
        for f in TableQuery._fields:
            a, b = getattr(q, f), getattr(ref, f)
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and a.tolist() == b.tolist(), f
            else:
                assert a is b or (a == b and type(a) is type(b)), f
