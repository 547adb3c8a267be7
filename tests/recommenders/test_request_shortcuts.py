"""The sources' request-time shortcuts give the answers of the plain computation they replace,
ties included: ``top_positions``' value partition and matrix_factorization's shortlists ranked
at fit time."""
import numpy as np
import pytest

from server.recommenders._text import top_positions
from server.recommenders.kernels.als import ALSParams, ImplicitALS
from server.recommenders.kernels.factors import known_answer_i32, known_answer_u16
from server.recommenders.matrix_factorization import (_NO_COLUMNS, REASON_SEEDS, _scored_top, person_candidates,
                                                      ranked_shortlists)


def _known_top(als, ranked, rows, p: int, live_i: np.ndarray, k: int, item: int):
    """``matrix_factorization._known_answer``'s kernel's top (items int32, scores float32) for
    person ``p`` with the live items ``live_i`` and the page's ``item`` (``rows``: ``positive_rows``' ``indptr`` and ``indices``,
    weights 1 when they come without), or None: what the tests of the ranked shortlists read."""
    items, scores = ranked
    indptr, indices = rows[:2]
    data = rows[2] if len(rows) > 2 else np.ones(len(indices), np.float32)
    packed = (known_answer_u16 if items.dtype == np.uint16 else known_answer_i32)(
        _NO_COLUMNS, -1, live_i, np.ones(len(live_i)), 0, indptr, indices, data, als.trained_flags(),
        items, scores, p, k, item, REASON_SEEDS)
    if packed[0] < 0:
        return None
    n = packed[0]
    return packed[2:2 + n], packed[2 + n:2 + 2 * n].view(np.float32)


def plain_top_positions(scores, k, items=None):
    """``top_positions`` plainly: every positive score sorted by (score descending, item
    ascending; the position without items), the first ``k``."""
    pos = (scores > 0).nonzero()[0]
    tie = items[pos] if items is not None else pos
    return pos[np.lexsort((tie, -scores[pos]))][:k]


def test_top_positions_is_the_plain_computation():
    rng = np.random.default_rng(0)
    ties = 0
    for trial in range(4000):
        n = int(rng.integers(1, 400))
        dtype = (np.float32, np.float64)[trial % 2]
        if trial % 3 == 0:     # few distinct values: ties across the k-th place
            s = rng.integers(-3, 6, n).astype(dtype)
        else:
            s = (rng.random(n) - 0.3).astype(dtype)
        if trial % 7 == 0:
            s[rng.integers(0, n, 3)] = np.nan
        if trial % 5 == 0:
            s[rng.integers(0, n, 3)] = -np.inf
        k = int(rng.integers(1, 60))
        items = rng.permutation(n) if trial % 4 == 0 else None
        want = plain_top_positions(s, k, items)
        got = top_positions(s, k, items)
        assert got.tolist() == want.tolist()
        pos = s > 0
        if pos.sum() > k:
            kth = np.sort(s[pos])[::-1][k - 1]
            ties += (s[pos] == kth).sum() > 1
    assert ties > 100       # ties across the k-th place were exercised


@pytest.fixture(scope="module")
def als():
    rng = np.random.default_rng(3)
    m = ImplicitALS(ALSParams(factors=8))
    Y = rng.normal(size=(300, 8)).astype(np.float32)
    Y[150:170] = Y[130:150]            # equal items: tied scores for every person
    Y[200:260] = Y[100:160]
    U = rng.normal(size=(40, 8)).astype(np.float32)
    U[5] = 0                           # an untrained person
    m.item_factors, m.user_factors = Y, U
    return m


def test_ranked_shortlists_give_the_scored_answer(als):
    shortlist = person_candidates(als)
    ranked = ranked_shortlists(als, shortlist)
    assert ranked is not None and ranked[0].dtype == shortlist.dtype
    persons = len(als.user_factors)
    rows = np.arange(persons + 1, dtype=np.int32), np.zeros(persons, np.int32)   # each person: item 0
    nothing = np.zeros(0, np.int64)
    checked = ties = 0
    for p in range(persons):
        if not als.user_factors[p].any():
            assert _known_top(als, ranked, rows, p, nothing, 5, -1) is None   # untrained: scored
            continue
        for k in (1, 5, 44, 127):
            for item in (-1, int(shortlist[p][0]), int(shortlist[p][-1]), 299):
                top = _known_top(als, ranked, rows, p, nothing, k, item)
                want_items, want_scores = _scored_top(als, als.user_factors[p], shortlist[p], k, item)
                assert top[0].tolist() == want_items.tolist()
                assert top[1].tobytes() == want_scores.astype(np.float32).tobytes()
                checked += 1
                ties += len(np.unique(top[1])) < len(top[1])
    assert checked > 400 and ties > 50
    assert _known_top(als, ranked, rows, 0, nothing, 128, -1) is None       # k beyond the shortlist: scored


def test_ranked_shortlists_only_up_to_the_bound(als, monkeypatch):
    import server.recommenders.matrix_factorization as mf
    monkeypatch.setattr(mf, "RANKED_CELLS", 300 * 40 - 1)
    assert ranked_shortlists(als, person_candidates(als)) is None
    assert ranked_shortlists(als, None) is None


class _Data:
    """The few ``Dataset`` parts ``visitor_items`` reads."""
    def __init__(self, R):
        self.R, self.n_items, self._derived = R, R.shape[1], {}

    def derived(self, name, fn):
        if name not in self._derived:
            self._derived[name] = fn(self)
        return self._derived[name]


@pytest.mark.parametrize("stored_zero", [False, True])
def test_visitor_items_merges_the_row_and_the_live_items(stored_zero):
    from scipy import sparse

    from server.recommenders._person import visitor_items
    from server.recommenders.base import Context, Recent
    R = sparse.csr_matrix(np.array([[0.0, 2.0, 0.0, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]], np.float32))
    if stored_zero:                       # a stored weight that is not > 0: dropped
        R.data[1] = 0.0                   # person 0's item 3
    ds = _Data(R)
    recent = [Recent("p1", 1, 1, 0, 1.0, True), Recent("p4", 4, 1, 0, 1.0, True)]
    items, w, has_live = visitor_items(ds, Context(person=0, recent=recent, item=3))
    assert has_live and items.tolist() == [1, 3, 4]
    assert w.tolist() == [2.0, 1.0, 1.0 * 0.8]           # row 2.0 > live 1.0; the current product 1.0
    items, w, has_live = visitor_items(ds, Context(person=0, recent=recent[:1]))
    assert not has_live
    assert items.tolist() == ([1] if stored_zero else [1, 3]) and w[0] == 2.0


def test_ranked_shortlists_in_blocks_are_the_same(als, monkeypatch):
    """The fit ranks persons in blocks (a small catalogue allows millions of them): any block
    size gives the one-block answer, untrained persons included."""
    import server.recommenders.matrix_factorization as mf
    shortlist = person_candidates(als)
    whole = ranked_shortlists(als, shortlist)
    for block in (1, 3, 7):
        monkeypatch.setattr(mf, "RANK_BLOCK", block)
        got = ranked_shortlists(als, shortlist)
        assert got[0].tobytes() == whole[0].tobytes() and got[1].tobytes() == whole[1].tobytes()


def test_topk_follows_the_tie_rule():
    """``topk_1d`` and ``topk_rows``: the k best finite scores by (score descending, index
    ascending), ties across the k-th place included (the plain sort, not a partition's pick)."""
    from server.recommenders.kernels.topk import topk_1d, topk_rows
    rng = np.random.default_rng(4)
    crossed = 0
    for trial in range(2000):
        n = int(rng.integers(1, 200))
        s = (rng.integers(-3, 6, n) if trial % 2 else rng.normal(size=n)).astype(np.float64)
        if trial % 5 == 0:
            s[rng.integers(0, n, 3)] = rng.choice([np.nan, -np.inf, np.inf], 3)
        k = int(rng.integers(0, 60))
        excl = rng.integers(0, n, int(rng.integers(0, 4)))
        work = s.copy()
        work[excl] = -np.inf
        ok = np.flatnonzero(np.isfinite(work))
        want = ok[np.lexsort((ok, -work[ok]))][:max(k, 0)]
        idx, sc = topk_1d(s, k, excl)
        assert idx.tolist() == want.tolist() and sc.tolist() == work[want].tolist()
        vals = np.sort(work[ok])[::-1]
        crossed += len(vals) > k >= 1 and vals[k - 1] == vals[k]
    assert crossed > 300
    for trial in range(300):
        rows, cols = int(rng.integers(1, 12)), int(rng.integers(1, 60))
        block = rng.integers(-2, 4, (rows, cols)).astype(np.float32)
        block[block < -1] = -np.inf
        k = int(rng.integers(1, 20))
        idx, vals = topk_rows(block, k)
        for r in range(rows):
            want, want_s = topk_1d(block[r], k)
            assert idx[r][:len(want)].tolist() == want.tolist() and (idx[r][len(want):] == -1).all()
            assert vals[r][:len(want)].tolist() == want_s.tolist()
