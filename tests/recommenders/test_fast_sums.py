"""``neighbour_top``'s candidates in item order (its answer when a tie leaves the pick to
numpy) read from a bitmap of the catalog: large catalogs, items on every bit of a word (the
64th included: a negative int64 word) and across words, against the numpy code."""
import numpy as np

from server.recommenders._common import Neighbours
from server.recommenders.kernels.sums import _DE_BRUIJN, _LOW_BIT, TIES_BEST

from .test_sum_kernels import DS, same, top


def test_the_lowest_bit_table_names_every_bit():
    for b in range(64):
        low = np.array([1], np.uint64) << np.uint64(b)        # the word's lowest bit as the kernel has it
        signed = int(low.view(np.int64)[0])
        assert _LOW_BIT[((signed * _DE_BRUIJN) % (1 << 64)) >> 58] == b


def test_candidates_in_item_order_over_large_catalogs():
    rng = np.random.default_rng(7)
    not_exact = 0
    for t in range(300):
        n = int(rng.choice([63, 64, 65, 127, 128, 129, 1000, 5000]))
        width = int(rng.integers(1, 40))
        idx = np.full((n, width), -1, np.int32)
        score = np.zeros((n, width), np.float32)
        seeds = [int(s) for s in rng.choice(n, int(rng.integers(1, 6)), replace=False)]
        edges = [i for i in (0, 63, 64, 127, 128, n - 1) if i < n]
        for s in seeds:
            m = min(width, n - 1)
            others = np.delete(np.arange(n), s)
            row = rng.choice(others, m, replace=False)
            row[:len(edges)] = [e if e != s else others[0] for e in edges][:m]   # word edges and the last item
            row = np.unique(row)[:m]
            idx[s, :len(row)] = rng.permutation(row)
            score[s, :len(row)] = rng.integers(1, 3, len(row)) / 2      # two values: ties everywhere
        nb = Neighbours(idx, score)
        weights = [1.0] * len(seeds)
        items, scores, closest, exact = top(nb, seeds, weights, int(rng.integers(1, 8)), TIES_BEST)
        if not exact:
            not_exact += 1
            assert items.tolist() == sorted(items.tolist()) and len(set(items.tolist())) == len(items)
            want = set(idx[seeds][idx[seeds] >= 0].tolist()) - set(seeds)
            assert set(items.tolist()) == want
        k = int(rng.integers(1, 8))
        pairs = list(zip(seeds, weights))
        same(nb.candidates(pairs, k, "{}", DS(n)), nb.candidates_numpy(pairs, k, "{}", DS(n)))
    assert not_exact > 100
