"""Request-time helpers of the item-to-item sources, on hand-built tables with known answers:
``Neighbours.candidates`` and its ``SeedFinder``, ``fold_in`` on
sorted and on repeated items; the request's ``session_items`` / ``seed_items``."""
import random

import numpy as np
import pytest

from server.recommenders._common import Neighbours, SeedFinder
from server.recommenders.kernels.als import ALSParams, ImplicitALS
from server.recommenders.base import Context, Recent, seeds_key
from server.signals import CART, CLICK, IMPRESSION, PURCHASE, REMOVE, REVIEW, VIEW

# 6 items, 3 neighbours each (-1: none)
IDX = np.array([[1, 2, 3], [0, 2, -1], [4, -1, -1], [2, 0, -1], [-1, -1, -1], [-1, -1, -1]], np.int32)
SCORE = np.array([[0.9, 0.5, 0.2], [0.9, 0.4, 0], [0.3, 0, 0], [0.5, 0.2, 0], [0, 0, 0], [0, 0, 0]], np.float32)


class DS:
    n_items = 6

    @staticmethod
    def label(i):
        return f"p{i}"


def test_candidates_sum_rank_and_name_the_best_seed():
    nb = Neighbours(IDX, SCORE)
    c = nb.candidates([(0, 1.0), (3, 2.0)], 10, "with {}", DS)
    # item 2: 0.5 (seed 0) + 2 x 0.5 (seed 3) = 1.5; item 1: 0.9; seeds 0 and 3 left out
    assert c.items.tolist() == [2, 1]
    assert c.scores.tolist() == pytest.approx([1.5, 0.9])
    assert [c.reason(p) for p in range(2)] == ["with p3", "with p0"]
    assert len(nb.candidates([(4, 1.0)], 10, "{}", DS)) == 0         # no neighbours at all
    assert len(nb.candidates([(9, 1.0), (0, 0.0)], 10, "{}", DS)) == 0  # out of range / weight 0
    assert nb.candidates([(0, 1.0)], 10, "{}", DS, drop={1}).items.tolist() == [2, 3]


def test_seed_finder_prefers_the_first_table_and_the_earlier_seed_on_ties():
    nb = Neighbours(IDX, SCORE)
    other = Neighbours(np.array([[5, -1], [5, -1], [5, -1], [1, -1], [-1, -1], [-1, -1]], np.int32),
                       np.array([[0.1, 0], [0.1, 0], [0.7, 0], [0.1, 0], [0, 0], [0, 0]], np.float32))
    seeds = [(0, 1.0), (1, 1.0), (3, 1.0)]
    find = SeedFinder(nb.contributions(seeds), other.contributions(seeds))
    assert find(2) == 0        # seeds 0 and 3 both give 0.5 (seed 1: 0.4): the earlier one
    assert find(1) == 0        # in the first table (seed 0), though seed 3 has it in the second
    assert find(5) == 0        # only the second table has it: seeds 0 and 1 tie at 0.1
    assert find(4) == -1 and find(6) == -1 and find(-1) == -1
    assert nb.seed_finder(seeds)(2) == 0 and nb.seed_finder([(9, 1.0)])(2) == -1


def test_fold_in_merges_repeats_like_one_weighted_item():
    rng = np.random.default_rng(0)
    R = (rng.random((30, 12)) < 0.3).astype(np.float32)
    als = ImplicitALS(ALSParams(factors=4, iterations=3, seed=0)).fit(R)
    once = als.fold_in(np.array([2, 5, 7]), np.array([1.0, 3.0, 2.0]))
    again = als.fold_in(np.array([5, 2, 7, 5]), np.array([1.0, 1.0, 2.0, 2.0]))   # unsorted, 5 twice
    assert np.allclose(once, again, atol=1e-6)


def _session_items(recent, max_items, in_session_only):
    """The definition of ``Context.session_items``: one walk from the newest interaction."""
    out, rank, decay = {}, 0, 1.0
    for r in recent:
        if r.item < 0 or r.kind not in (VIEW, CART, PURCHASE, CLICK, REVIEW) or (in_session_only and not r.in_session) or r.weight < 0.2:
            continue
        if r.item not in out:
            if len(out) >= max_items:
                break
            out[r.item], decay, rank = 0.0, 0.8 ** rank, rank + 1
        out[r.item] += r.weight * decay * (1.0 if r.in_session else 0.3)
    return [(i, w) for i, w in out.items() if w > 0]


def test_session_items_known_answer():
    recent = [Recent("a", 1, VIEW, 9, 1.0, True), Recent("b", 2, VIEW, 8, 0.1, True),     # b: a bounce
              Recent("c", 3, REMOVE, 7, 1.0, True), Recent("d", 4, CART, 6, 2.0, False),  # c: a removal
              Recent("a", 1, CART, 5, 2.0, True), Recent("x", -1, VIEW, 4, 1.0, True)]    # x: unknown
    ctx = Context(recent=recent)

    def pairs(items):
        return [i for i, _ in items], pytest.approx([w for _, w in items])
    assert ctx.session_items(1) == [(1, 1.0)]              # stops at the second product
    # a's second interaction takes the decay of the latest new product (d's 0.8): as defined
    assert pairs(ctx.session_items()) == ([1, 4], [1.0 + 2.0 * 0.8, 2.0 * 0.8 * 0.3])
    assert pairs(ctx.session_items(10, in_session_only=True)) == ([1], [1.0 + 2.0])
    ctx = Context(item=7, recent=recent)
    assert pairs(ctx.seed_items()) == ([7, 1, 4], [3.0, 2.0 * 0.2, 0.48 * 0.2])   # the session x 0.2
    assert seeds_key(ctx) == tuple(ctx.seed_items())


def test_session_items_any_bounds_in_any_order_as_one_walk_each():
    """A request's session_items walk is resumed for a larger bound: every answer must be the
    walk from the start with its own bound, whatever was asked before."""
    rng = random.Random(5)
    kinds = (VIEW, VIEW, VIEW, CART, PURCHASE, CLICK, REVIEW, REMOVE, IMPRESSION)
    for _ in range(300):
        recent = [Recent("p", rng.randrange(-1, 15), rng.choice(kinds), 0, rng.choice((0.1, 0.5, 1.0, 3.0)), rng.random() < 0.6)
                  for _ in range(rng.randrange(0, 40))]
        ctx = Context(recent=recent)
        asks = [(rng.randrange(0, 25), rng.random() < 0.3) for _ in range(6)]
        for m, only in asks + asks[::-1]:
            assert ctx.session_items(m, only) == _session_items(recent, m, only)
        recent.append(Recent("q", 3, VIEW, 0, 1.0, True))   # a longer list is another walk
        assert ctx.session_items(30) == _session_items(recent, 30, False)
