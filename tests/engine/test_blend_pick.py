"""kernels.blend_pick (the blend and the selection without sorting the pool: a hash table by
item, a heap of ranking keys) against kernels.blend_sources then kernels.select_pool in the
blend order, on random data with ties, signed zeros, infinities and NaN contributions, item
values whose hashes collide, empty, single and silent answers."""
import numpy as np
import pytest

from server.placements import kernels as K

from .test_blend_kernels import random_answers

NO_CART = np.zeros(0, np.int32)
NO_HELD = np.zeros((2, 0), np.int64)
NONE = np.zeros(0, np.int64)
NO_CODES = np.zeros(0, np.int32)


def pick_reference(items, scores, lens, weights, codes, *select):
    """blend_sources (with its ranking) then select_pool in that ranking: what blend_pick replaces."""
    silent, rows, score = K.blend_sources(items, scores, lens, weights, True)
    assert not silent
    return K.select_pool(rows[3], rows, select[0], select[1], select[2], select[3], codes, *select[4:])


def random_select(rng, n_items, n_src):
    """Random selection arguments: mask, current, cart (negative entries too), held, seen, caps, count."""
    mask = rng.random(n_items) < rng.choice([0.3, 0.8, 1.0])
    current = int(rng.integers(-1, n_items)) if rng.random() < 0.5 else -1
    cart = rng.integers(-n_items, n_items, int(rng.integers(0, 4))).astype(np.int32) if rng.random() < 0.4 else NO_CART
    h = int(rng.integers(0, 6))
    held = np.stack([rng.choice(n_items, h), rng.integers(0, n_src + 1, h)]).astype(np.int64) if h else NO_HELD
    seen = rng.choice(n_items, int(rng.integers(0, 8))).astype(np.int64)
    capped = rng.random() < 0.5
    cat = rng.integers(-1, 4, n_items).astype(np.int32) if capped else NO_CODES
    brand = rng.integers(-1, 3, n_items).astype(np.int32) if capped else NO_CODES
    max_cat, max_brand = (int(rng.integers(0, 3)), int(rng.integers(0, 4))) if capped else (0, 0)
    count = int(rng.integers(-1, 14))
    return mask, current, cart, held, seen, cat, brand, max_cat, max_brand, count


def check(rng, items, scores, lens, n_items):
    weights = rng.choice([1.0, 0.6, 0.3, 0.2, 0.1, 0.7, 1 / 3], len(lens)).astype(np.float64)
    codes = rng.integers(0, len(lens) + 1, len(lens)).astype(np.int64)   # (a name twice: equal codes)
    select = random_select(rng, n_items, len(lens))
    got = K.blend_pick(items, scores, lens, weights, codes, *select)
    want = pick_reference(items, scores, lens, weights, codes, *select)
    assert got.dtype == np.int64 and got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("levels", [None, 1, 2, 3, 7])
@pytest.mark.parametrize("seed", range(6))
def test_blend_pick_equals_blend_then_select_with_ties(seed, levels):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n_items = int(rng.integers(1, 300))
        items, scores, lens = random_answers(rng, int(rng.integers(1, 7)), n_items, 60, levels)
        check(rng, items, scores, lens, n_items)


@pytest.mark.parametrize("seed", range(6))
def test_blend_pick_with_signed_zeros_infinities_and_nan_contributions(seed):
    # each answer's best is positive (else it says nothing); the others: negative, -0.0, 0.0,
    # inf (inf / inf: a NaN contribution, a NaN sum ranks last), ties everywhere
    rng = np.random.default_rng(200 + seed)
    pool = np.array([1.0, 0.5, 0.0, -0.0, -0.5, -1.0, 2.0, np.inf], np.float32)
    for _ in range(80):
        n_items = int(rng.integers(1, 80))
        items, scores, lens = random_answers(rng, int(rng.integers(1, 6)), n_items, 30, 3)
        scores = rng.choice(pool if rng.random() < 0.3 else pool[:7], len(scores)).astype(np.float32)
        p = 0
        for n in lens:
            scores[p] = abs(scores[p]) + np.float32(0.25)
            p += n
        check(rng, items, scores, lens, n_items)


def test_blend_pick_items_whose_hashes_collide_and_large_items():
    # items a multiple of the table's size apart share a hash bucket; the largest int32 items
    # keep their order in the key (the item is its low 31 bits)
    rng = np.random.default_rng(7)
    for big in (False, True):
        for _ in range(30):
            n_src = int(rng.integers(1, 4))
            base = np.array([0, 64, 128, 256, 512, 1024, 4096, 65536], np.int64)
            if big:
                base = np.int64(2**31 - 1) - base
            its, scs, lens = [], [], []
            for _ in range(n_src):
                m = int(rng.integers(1, len(base) + 1))
                its.append(rng.choice(base, m, replace=False).astype(np.int32))
                scs.append(np.sort(rng.integers(1, 3, m) / 2).astype(np.float32)[::-1].copy())
                lens.append(m)
            items, scores = np.concatenate(its), np.concatenate(scs)
            n = int(base.max()) + 1
            weights = np.ones(n_src)
            codes = np.arange(n_src, dtype=np.int64)
            select = (np.ones(n, bool), -1, NO_CART, NO_HELD, NONE, NO_CODES, NO_CODES, 0, 0, int(rng.integers(1, 10)))
            got = K.blend_pick(items, scores, np.array(lens, np.int64), weights, codes, *select)
            want = pick_reference(items, scores, np.array(lens, np.int64), weights, codes, *select)
            assert np.array_equal(got, want)


def test_blend_pick_empty_single_and_ties_by_item():
    select = (np.ones(10, bool), -1, NO_CART, NO_HELD, NONE, NO_CODES, NO_CODES, 0, 0, 8)
    got = K.blend_pick(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0), NONE, *select)
    assert got.shape == (3, 0)
    got = K.blend_pick(np.array([3], np.int32), np.array([2.0], np.float32), np.array([1]), np.array([0.5]),
                       np.array([4]), *select)
    assert got.tolist() == [[3], [0], [0]]
    # 5 and 2 tie (2.0 each; each one's equal contributions: the first source's): the lower item
    # first; 9 last
    items = np.array([5, 2, 9, 2, 5], np.int32)
    scores = np.array([1.0, 1.0, 0.25, 1.0, 1.0], np.float32)
    got = K.blend_pick(items, scores, np.array([3, 2]), np.ones(2), np.array([0, 1]), *select)
    assert got.tolist() == [[2, 5, 9], [0, 0, 0], [1, 0, 2]]
    assert np.array_equal(got, pick_reference(items, scores, np.array([3, 2]), np.ones(2), np.array([0, 1]), *select))
    # a count below one takes nothing
    assert K.blend_pick(items, scores, np.array([3, 2]), np.ones(2), np.array([0, 1]), *select[:-1], 0).shape == (3, 0)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_blend_pick_refuses_a_source_that_says_nothing(bad):
    select = (np.ones(10, bool), -1, NO_CART, NO_HELD, NONE, NO_CODES, NO_CODES, 0, 0, 8)
    with pytest.raises(ValueError):
        K.blend_pick(np.array([1, 2, 3, 4], np.int32), np.array([1.0, 0.5, bad, bad], np.float32), np.array([2, 2]),
                     np.ones(2), np.array([0, 1]), *select)
    with pytest.raises(ValueError):   # an empty answer
        K.blend_pick(np.array([1], np.int32), np.array([1.0], np.float32), np.array([1, 0]), np.ones(2),
                     np.array([0, 1]), *select)
    with pytest.raises(ValueError):   # a negative item, as blend_sources
        K.blend_pick(np.array([-1, 2], np.int32), np.array([1.0, 1.0], np.float32), np.array([2]), np.ones(1),
                     np.array([0]), *select)
