"""``neighbour_top`` over large catalogs with ties everywhere (two score values), items on
word-like edges (0, 63, 64, 127, 128, the last) and rows in any order: the k best by (score
descending, item ascending), as the numpy code (``candidates_numpy``) and the rule by brute
force give them."""
import numpy as np

from server.recommenders._common import Neighbours

from .test_sum_kernels import DS, crosses, rule_order, same, top


def test_large_catalogs_ties_by_item():
    rng = np.random.default_rng(7)
    ties = 0
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
        k = int(rng.integers(1, 8))
        items, scores, closest = top(nb, seeds, weights, k)
        dense = np.zeros(n, np.float64)                  # the sums by brute force
        for s in seeds:
            for i, f in zip(idx[s].tolist(), score[s].tolist()):
                if i >= 0:
                    dense[i] += f
        dense[seeds] = 0
        assert items.tolist() == rule_order(dense, k, positive=True)
        ties += crosses(top(nb, seeds, weights, k + 1)[1], k)
        pairs = list(zip(seeds, weights))
        same(nb.candidates(pairs, k, "{}", DS(n)), nb.candidates_numpy(pairs, k, "{}", DS(n)))
    assert ties > 100
