"""matrix_factorization's request path against the numpy code it replaced (kept here as the
reference) and the tie rule (equal scores, lower item first): ``kernels/factors``
(``row_lacks``, ``known_answer``, ``catalog_top``, the reason's and the merge's kernels),
``_person``'s two steps (``live_items`` + ``merge_row``), ``ImplicitALS.trained``, and whole
answers (items, score bytes, every reason) with and without the known person's shortcut."""
import numpy as np
import pytest
from scipy import sparse

from server.recommenders import _person
from server.recommenders._person import live_items, merge_row, visitor_items
from server.recommenders.base import Context, Recent
from server.recommenders.kernels.als import ALSParams, ImplicitALS
from server.recommenders.kernels.factors import known_answer_i32, known_answer_u16, row_lacks, row_position
from server.recommenders.matrix_factorization import MatrixFactorization, person_candidates, ranked_shortlists

from .test_request_shortcuts import _Data


def ranked_top_numpy(items, scores, k, item):
    """A ranked shortlist's answer (the rows are ranked under the tie rule): the first
    ``min(positive, k)`` entries once ``item`` is left out."""
    if item >= 0:
        keep = items != item
        items, scores = items[keep], scores[keep]
    n = min(np.count_nonzero(scores > 0), k)
    return items[:n], scores[:n]


def visitor_items_numpy(ds, ctx, max_live=20):
    """``visitor_items`` before the split (a dict of the live items, then the merge)."""
    R = ds.R
    if 0 <= ctx.person < R.shape[0]:
        a, b = R.indptr[ctx.person], R.indptr[ctx.person + 1]
        own_i, own_w = R.indices[a:b].astype(np.int64), R.data[a:b].astype(np.float64)
    else:
        own_i, own_w = np.zeros(0, np.int64), np.zeros(0)
    n = ds.n_items
    live = {i: v for i, v in ctx.session_items(max_live) if 0 <= i < n}
    if 0 <= ctx.item < n:
        live[int(ctx.item)] = max(live.get(int(ctx.item), 0.0), 1.0)
    for i in ctx.cart_items.tolist() + ctx.order_items.tolist():
        if 0 <= i < n:
            live[i] = max(live.get(i, 0.0), 3.0)
    li = np.fromiter(live, np.int64, len(live))
    lw = np.fromiter(live.values(), np.float64, len(live))
    return _person._merge(own_i, own_w, li, lw)


class Data(_Data):
    """The ``Dataset`` parts the request path reads."""
    def label(self, i):
        return f"p{i}"


def random_R(rng, persons, items, empty_every=5):
    dense = np.where(rng.random((persons, items)) < 0.08, rng.integers(1, 4, (persons, items)), 0).astype(np.float32)
    dense[::empty_every] = 0                                  # persons without a row
    return sparse.csr_matrix(dense)


def test_row_lacks_is_isin():
    rng = np.random.default_rng(0)
    R = random_R(rng, 60, 40)
    for p in range(60):
        row = R.indices[R.indptr[p]:R.indptr[p + 1]]
        for n in (0, 1, 2, 5, 12):
            for trial in range(6):
                if trial % 2 and len(row):           # only items of the row: nothing lacks
                    live = rng.choice(row, n).astype(np.int64)
                else:
                    live = rng.integers(-1, 42, n).astype(np.int64)
                want = bool(np.isin(live, row, invert=True).any())
                assert row_lacks(R.indptr, R.indices, p, live) is want


def test_row_position_is_the_items_place_in_its_row():
    rng = np.random.default_rng(1)
    R = random_R(rng, 60, 40)
    for p in range(60):
        a, b = int(R.indptr[p]), int(R.indptr[p + 1])
        row = R.indices[a:b]
        for item in range(-1, 42):
            hits = np.flatnonzero(row == item)
            assert row_position(R.indices, a, b, item) == (a + int(hits[0]) if len(hits) else -1)


def known_top_numpy(R, trained, items, scores, p, live, k, item):
    """``known_top``'s case in numpy: a person of ``R`` with a row, nothing ``live`` outside it,
    a trained vector and 1 <= k < the shortlists' width; then their ranked row's answer."""
    if not (0 <= p < R.shape[0] and p < len(trained) and 1 <= k < items.shape[1]):
        return None
    row = R.indices[R.indptr[p]:R.indptr[p + 1]]
    if not len(row) or np.isin(live, row, invert=True).any() or not trained[p]:
        return None
    return ranked_top_numpy(items[p], scores[p], k, item)


def known_answer_numpy(R, trained, items, scores, p, live_i, live_w, k, item, n_seeds):
    """``known_answer``'s answer in numpy: ``known_top_numpy``'s top, and the ``n_seeds``
    strongest of the person's row merged with the live items (``_person._merge``, then the
    stable argsort: the seeds the reasons read)."""
    top = known_top_numpy(R, trained, items, scores, p, live_i, k, item)
    if top is None:
        return None
    a, b = R.indptr[p], R.indptr[p + 1]
    merged, w, _ = _person._merge(R.indices[a:b].astype(np.int64), R.data[a:b].astype(np.float64), live_i, live_w)
    return top[0], top[1], merged[np.argsort(-w, kind="stable")[:n_seeds]]


def unpacked(packed):
    """``known_answer``'s packed array as (items, scores, seeds), or None for ``[-1]``."""
    assert packed.dtype == np.int32 and len(packed) >= 1
    n = int(packed[0])
    if n < 0:
        assert len(packed) == 1
        return None
    s = int(packed[1])
    assert len(packed) == 2 + 2 * n + s
    return packed[2:2 + n], packed[2 + n:2 + 2 * n].view(np.float32), packed[2 + 2 * n:]


def ranked_rows(rng, persons, n_items, width, dtype, ties):
    """Random shortlists ranked as ``ranked_shortlists`` ranks them (score descending, then item)."""
    items = np.stack([rng.permutation(n_items)[:width] for _ in range(persons)]).astype(dtype)
    if ties:       # few distinct values: ties everywhere
        scores = rng.integers(-4, 8, (persons, width)).astype(np.float32)
    else:
        scores = rng.normal(size=(persons, width)).astype(np.float32)
    order = np.lexsort((items, -scores), axis=-1)
    return np.take_along_axis(items, order, 1), np.take_along_axis(scores, order, 1)


def test_known_answer_is_the_numpy_pick():
    """Given live items: the top (ties, k around the width, the page's item in the row or
    not, persons outside the matrix, without a row, untrained) and the seeds as numpy."""
    rng = np.random.default_rng(1)
    ties = found = 0
    for trial in range(600):
        persons, n_items = int(rng.integers(1, 12)), int(rng.integers(3, 70))
        R = random_R(rng, persons, n_items, empty_every=int(rng.integers(2, 6)))
        R.data = rng.choice(np.array([0.5, 1.0, 2.0, 3.0], np.float32), len(R.data))   # tied weights
        width = int(rng.integers(1, n_items + 1))
        dtype = (np.uint16, np.int32)[trial % 2]
        items, scores = ranked_rows(rng, persons, n_items, width, dtype, trial % 3 == 0)
        trained = rng.random(persons) < 0.8
        fn = known_answer_u16 if dtype == np.uint16 else known_answer_i32
        for p in range(-1, persons + 1):
            row = R.indices[R.indptr[p]:R.indptr[p + 1]] if 0 <= p < persons else np.zeros(0, np.int32)
            for t in range(4):
                m = int(rng.integers(0, 4))
                live = (rng.choice(row, m, replace=False) if t % 2 and len(row) >= m
                        else rng.choice(np.arange(-1, n_items + 1), min(m, n_items + 2), replace=False)).astype(np.int64)
                live_w = rng.choice([0.5, 1.0, 2.5, 3.0], len(live))
                k = int(rng.integers(0, width + 2))
                item = int(items[p][rng.integers(0, width)]) if t == 3 and 0 <= p < persons else int(rng.integers(-1, n_items))
                n_seeds = int(rng.integers(0, 6)) if t == 2 else 20
                want = known_answer_numpy(R, trained, items, scores, p, live, live_w, k, item, n_seeds)
                got = unpacked(fn(np.zeros((0, 3)), -1, live, live_w, n_items, R.indptr, R.indices, R.data, trained,
                                  items, scores, p, k, item, n_seeds))
                if want is None:
                    assert got is None
                    continue
                assert got is not None
                assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes()
                assert got[2].tolist() == want[2].tolist()
                found += 1
                ties += len(np.unique(want[1])) < len(want[1])
    assert found > 500 and ties > 100
    one = np.array([[7]], np.uint16), np.array([[0.5]], np.float32)
    R = sparse.csr_matrix(np.ones((1, 8), np.float32))
    nothing = np.zeros((0, 3)), -1, np.zeros(0, np.int64), np.zeros(0), 8, R.indptr, R.indices, R.data, np.ones(1, bool)
    assert unpacked(known_answer_u16(*nothing, *one, 0, 1, -1, 20)) is None   # k: not below the width
    two = np.array([[7, 3]], np.uint16), np.array([[0.5, 0.5]], np.float32)
    assert unpacked(known_answer_u16(*nothing, *two, 0, 1, -1, 20))[0].tolist() == [7]
    got = unpacked(known_answer_u16(*nothing, *two, 0, 1, 7, 1))
    assert got[0].tolist() == [3] and got[2].tolist() == [0]      # one seed: the first of equal weights
    zero = np.array([[7, 3]], np.uint16), np.array([[0.0, -1.0]], np.float32)
    got = unpacked(known_answer_u16(*nothing, *zero, 0, 1, -1, 0))
    assert len(got[0]) == len(got[1]) == len(got[2]) == 0          # nothing positive, no seeds asked


def test_known_answer_seeds_merge_the_live_weights_as_numpy():
    """The seeds of a known person (the row's weights with the live items' raised in place,
    then ``strongest_at``'s positions): long rows (the insertion buffer full), live weights
    below, equal to and above the row's, NaN (wins the merge, after every number) and
    infinite, tied weights, and 0 to more seeds than the row has, as numpy's merge and
    stable argsort give them."""
    rng = np.random.default_rng(12)
    nan = inf = 0
    for trial in range(400):
        persons, n_items = 4, int(rng.integers(20, 120))
        dense = np.where(rng.random((persons, n_items)) < 0.6, rng.integers(1, 4, (persons, n_items)), 0)
        R = sparse.csr_matrix(dense.astype(np.float32))
        items, scores = ranked_rows(rng, persons, n_items, int(rng.integers(2, n_items)), np.int32, trial % 2 == 0)
        trained = np.ones(persons, bool)
        for p in range(persons):
            row = R.indices[R.indptr[p]:R.indptr[p + 1]]
            live = rng.choice(row, min(len(row), int(rng.integers(0, 25))), replace=False).astype(np.int64)
            live_w = rng.choice(np.array([0.5, 1.0, 2.0, 3.0, 7.5, np.nan, np.inf]), len(live))
            nan += bool(np.isnan(live_w).any())
            inf += bool(np.isinf(live_w).any())
            for n_seeds in (0, 1, 5, 20, 200):
                k = int(rng.integers(1, items.shape[1]))
                want = known_answer_numpy(R, trained, items, scores, p, live, live_w, k, -1, n_seeds)
                got = unpacked(known_answer_i32(np.zeros((0, 3)), -1, live, live_w, n_items, R.indptr, R.indices,
                                                R.data, trained, items, scores, p, k, -1, n_seeds))
                assert (got is None) == (want is None)
                if want is not None:
                    assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes()
                    assert got[2].tolist() == want[2].tolist()
    assert nan > 200 and inf > 200


def test_known_answer_walks_the_session_as_live_items():
    """With ``max_live``, the kernel walks the live state's columns itself: the answer of
    ``live_items``' arrays on a page without products (the Python walk of the plain list),
    sessions long and short, repeats, bounces, other kinds, earlier visits, products outside
    the catalog, and nothing at all."""
    from server.recommenders.base import walk_columns
    from server.signals import CART, VIEW
    rng = np.random.default_rng(3)
    found = outside = 0
    for trial in range(300):
        persons, n_items = 6, int(rng.integers(5, 40))
        R = random_R(rng, persons, n_items, empty_every=4)
        items, scores = ranked_rows(rng, persons, n_items, int(rng.integers(2, n_items + 1)), np.int32, trial % 2 == 0)
        trained = np.ones(persons, bool)
        ds = Data(R)
        for p in range(persons):
            row = R.indices[R.indptr[p]:R.indptr[p + 1]]
            m = int(rng.integers(0, 30))
            pool = row if trial % 3 and len(row) else np.arange(-1, n_items + 2)   # only the row's: known
            recent = [Recent("p", int(rng.choice(pool)), int(rng.choice([VIEW, CART, 99])), 100 - j,
                             float(rng.choice([0.1, 0.5, 1.0, 2.5])), bool(rng.random() < 0.7)) for j in range(m)]
            max_live = int(rng.choice([0, 1, 3, 20]))
            live_i, live_w = live_items(ds, Context(person=p, recent=recent), max_live)
            outside += any(not 0 <= r.item < n_items for r in recent)
            k = int(rng.integers(1, 10))
            want = known_answer_numpy(R, trained, items, scores, p, live_i, live_w, k, -1, 20)
            got = unpacked(known_answer_i32(walk_columns(recent), max_live, np.zeros(0, np.int64), np.zeros(0), n_items,
                                            R.indptr, R.indices, R.data, trained, items, scores, p, k, -1, 20))
            if want is None:
                assert got is None
                continue
            assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes()
            assert got[2].tolist() == want[2].tolist()
            found += 1
    assert found > 300 and outside > 100


def contexts(rng, persons, items):
    """Requests of every kind: a session (some products outside the catalog), a current
    product, a cart, an order; persons with and without a row, and unknown persons."""
    for p in list(range(-1, persons + 1)):
        for kind in range(5):
            m = int(rng.integers(0, 6))
            picked = rng.choice(items + 2, m, replace=False) - 1
            recent = [Recent(f"p{i}", int(i), 1, 10 - j, float(rng.integers(1, 4)), True) for j, i in enumerate(picked)]
            ctx = Context(person=p, recent=recent)
            if kind == 1:
                ctx.item = int(rng.integers(-1, items + 1))
            elif kind == 2:
                ctx.cart_items = rng.integers(0, items + 1, 2).astype(np.int32)
            elif kind == 3:
                ctx.order_items = rng.integers(0, items, 1).astype(np.int32)
            yield ctx


@pytest.mark.parametrize("stored_zero", [False, True])
def test_live_items_then_merge_row_is_visitor_items(stored_zero):
    rng = np.random.default_rng(2)
    R = random_R(rng, 30, 25)
    if stored_zero:
        R.data[::7] = 0.0                   # stored weights that are not > 0
    ds = Data(R)
    checked_adds = 0
    for ctx in contexts(rng, 30, 25):
        want = visitor_items_numpy(ds, ctx)
        got = visitor_items(ds, ctx)
        assert got[0].tolist() == want[0].tolist() and got[1].tobytes() == want[1].tobytes() and got[2] == want[2]
        li, lw = live_items(ds, ctx)
        if 0 <= ctx.person < R.shape[0] and R.indptr[ctx.person] < R.indptr[ctx.person + 1]:
            # a person with a row: row_lacks (known_top's test) is the merge's has_live
            assert row_lacks(R.indptr, R.indices, ctx.person, li) == merge_row(ds, ctx.person, li, lw)[2]
            checked_adds += 1
    assert checked_adds > 60
    # not canonical (a repeated index): no kernel, the general merge
    Rn = sparse.csr_matrix((np.array([1.0, 2.0], np.float32), np.array([3, 3]), np.array([0, 2])), shape=(1, 5))
    assert not Rn.has_canonical_format
    assert _person.positive_rows(Data(Rn)) is None
    items, w, has_live = merge_row(Data(Rn), 0, np.array([3, 1], np.int64), np.array([1.0, 1.0]))
    assert items.tolist() == [1, 3] and w.tolist() == [1.0, 2.0] and has_live


def test_live_items_of_walked_sessions_are_the_tuples():
    """A bound session (``RecentList``: its views walked by ``kernels/seeds``) gives
    ``live_items`` the arrays of its view where every product is in the catalog: the same items
    and float64 weights, bit for bit, as the plain list's tuples (long sessions, repeats,
    bounces, other kinds, earlier visits, products outside the catalog or unknown)."""
    from server.recommenders.base import RecentList
    from server.signals import CART, VIEW
    rng = np.random.default_rng(21)
    ds = Data(random_R(rng, 10, 30))
    walked = 0
    for trial in range(600):
        m = int(rng.integers(0, 45))
        recent = [Recent("p", int(rng.integers(-1, 31 if trial % 3 == 0 else 30)), int(rng.choice([VIEW, CART, 99])),
                         100 - j, float(rng.choice([0.1, 0.5, 1.0, 2.5])), bool(rng.random() < 0.7)) for j in range(m)]
        page = {} if trial % 4 else {"item": int(rng.integers(-1, 30))}
        plain = live_items(ds, Context(person=1, recent=list(recent), **page))
        ctx = Context(person=1, recent=RecentList.of(recent), **page)
        got = live_items(ds, ctx)
        assert got[0].dtype == np.int64 and got[1].dtype == np.float64
        assert got[0].tolist() == plain[0].tolist() and got[1].tobytes() == plain[1].tobytes()
        walked += not page and bool(len(got[0])) and got[1] is getattr(ctx.session_vectors(20), "_w64", None)
    assert walked > 100


def test_trained_flags_follow_the_vectors():
    m = ImplicitALS(ALSParams(factors=4))
    m.user_factors = np.array([[0, 0, 0, 0], [0, 1e-30, 0, 0], [1, 2, 3, 4]], np.float32)
    assert [m.trained(u) for u in range(3)] == [False, True, True]
    m.user_factors = np.zeros((3, 4), np.float32)          # new vectors: new flags
    assert not m.trained(2)


@pytest.fixture(scope="module")
def mf_model():
    rng = np.random.default_rng(4)
    R = random_R(rng, 200, 300, empty_every=9)
    ds = Data(R)
    model = MatrixFactorization().fit(type("DS", (), {"R": R})())
    als = model[0]
    als.item_factors[150:170] = als.item_factors[130:150]     # equal items: tied scores
    norms = np.linalg.norm(als.item_factors, axis=1).astype(np.float32)
    shortlist = person_candidates(als)
    return ds, (als, norms, shortlist, ranked_shortlists(als, shortlist))


def answer(c):
    return c.items.tolist(), c.scores.tobytes(), [c.reason(i) for i in range(len(c))]


def test_recommend_with_the_shortcut_is_the_merged_answer(mf_model, monkeypatch):
    """A known person without new items: the answer read in one call (``known_answer``: the
    top, and the seeds of the row merged with the live items; the session walked in the
    kernel for a bound ``RecentList`` on a page without products) equals the answer of the
    merged path (the shortcut turned off), every reason included."""
    from server.recommenders.base import RecentList
    ds, model = mf_model
    rec = MatrixFactorization()
    rng = np.random.default_rng(5)
    ctxs = list(contexts(rng, 200, 300))
    for n, ctx in enumerate(ctxs[::3]):     # sessions of the row's items only: nothing new
        if 0 <= ctx.person < 200:
            row = ds.R.indices[ds.R.indptr[ctx.person]:ds.R.indptr[ctx.person + 1]]
            ctx.recent = [Recent(f"p{i}", int(i), 1, 5, float(rng.integers(1, 4)), True) for i in row[:3]]
            ctx.item, ctx.cart_items = -1, np.zeros(0, np.int32)
    for ctx in ctxs[1::2]:                  # half of them bound (the kernel walks them)
        ctx.recent = RecentList.of(ctx.recent)
    import server.recommenders.matrix_factorization as mf
    shortcuts, walked = [], []
    known_answer = mf._known_answer

    def counted(known, ds, ctx, k):
        packed, live = known_answer(known, ds, ctx, k)
        shortcuts.append(packed is not None)
        walked.append(packed is not None and live is None)
        return packed, live
    monkeypatch.setattr(mf, "_known_answer", counted)
    fast = [answer(rec.recommend(model, ds, ctx, k)) for ctx in ctxs for k in (5, 44)]
    assert sum(shortcuts) > 200 and sum(walked) > 100
    monkeypatch.setattr(mf, "_known_answer", lambda *a: (None, None))
    slow = [answer(rec.recommend(model, ds, ctx, k)) for ctx in ctxs for k in (5, 44)]
    assert fast == slow
    assert sum(len(a[0]) > 0 for a in fast) > 1000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_catalog_top_is_the_tie_rule_over_every_position(dtype):
    """``catalog_top`` (float32) and ``catalog_top_f64`` are ``best_positive`` over every
    position and the plain computation: the positive scores (finite ones only, or +inf too)
    sorted by (score descending, position ascending), the first k."""
    from server.recommenders.kernels.factors import catalog_top, catalog_top_f64
    from server.recommenders.kernels.sums import best_positive, best_positive_f64, positions
    top, best_positive = (catalog_top, best_positive) if dtype == np.float32 else (catalog_top_f64, best_positive_f64)
    rng = np.random.default_rng(6)
    crossed = ties = 0
    for trial in range(4000):
        n = int(rng.integers(0, 300)) if trial % 50 else int(rng.integers(0, 2))   # empty, single
        if trial % 3 == 0:       # few distinct values: ties everywhere
            s = rng.integers(-3, 6, n).astype(dtype)
        elif trial % 3 == 1:     # rising with the position, as a catalog's often do
            s = (np.sort(rng.normal(size=n)) + rng.normal(0, 0.1, n)).astype(dtype)
        else:
            s = rng.normal(size=n).astype(dtype)
        if trial % 7 == 0 and n:
            s[rng.integers(0, n, 3)] = np.nan
        if trial % 5 == 0 and n:
            s[rng.integers(0, n, 2)] = np.inf
            s[rng.integers(0, n)] = -np.inf
        k = int(rng.integers(0, 80))
        finite_only = bool(trial % 2)
        ok = np.flatnonzero((np.isfinite(s) | (not finite_only)) & (s > 0))
        want = ok[np.lexsort((ok, -s[ok]))][:max(k, 0)]
        items, best = top(s, k, finite_only)
        assert items.dtype == np.int32 and best.dtype == dtype
        assert items.tolist() == want.tolist() and best.tobytes() == s[want].tobytes()
        if k >= 1:
            assert best_positive(s, positions(n), k, finite_only).tolist() == want.tolist()
        vals = np.sort(s[ok])[::-1]
        crossed += len(vals) > k >= 1 and vals[k - 1] == vals[k]
        ties += len(np.unique(best)) < len(best)
    assert crossed > 100 and ties > 100


def test_scored_top_over_the_catalog_is_top_positions():
    """_scored_top without a shortlist (a folded-in visitor): the kernel over every product
    gives ``top_positions`` over the catalog (the current product left out; an infinite or NaN
    score counts as 0), ties across the k-th place included (the lower item stays)."""
    from server.recommenders._text import top_positions
    from server.recommenders.matrix_factorization import _scored_top

    class Als:   # what _scored_top reads of ImplicitALS
        def __init__(self, s):
            self.s, self.n_items = s, len(s)

        def scores(self, vec):
            return self.s.copy()

    rng = np.random.default_rng(3)
    crossed = 0
    for t in range(1500):
        n = int(rng.integers(1, 120))
        s = (rng.integers(-2, 5, n) / 2 if t % 2 else rng.normal(size=n)).astype(np.float32)
        if t % 7 == 0:
            s[rng.integers(0, n, 2)] = np.nan
        k = int(rng.integers(0, 30))
        item = int(rng.integers(-1, n))
        got = _scored_top(Als(s), None, None, k, item)
        ref = s.copy()
        if item >= 0:
            ref[item] = -np.inf
        ref = np.where(np.isfinite(ref), ref, 0)
        pos = top_positions(ref, k) if k else np.zeros(0, np.int64)
        assert got[0].dtype == np.int32 and got[1].dtype == np.float32
        assert got[0].tolist() == pos.tolist() and got[1].tobytes() == s[pos].tobytes()
        vals = np.sort(ref[ref > 0])[::-1]
        crossed += len(vals) > k >= 1 and vals[k - 1] == vals[k]
    assert crossed > 100


def test_strongest_is_the_stable_argsort():
    from server.recommenders.kernels.factors import strongest
    rng = np.random.default_rng(9)
    ties = 0
    for trial in range(3000):
        m = int(rng.integers(0, 40)) if trial % 40 else int(rng.integers(0, 2))   # empty, single
        items = rng.permutation(200)[:m].astype(np.int64)
        w = (rng.integers(1, 5, m) if trial % 2 else rng.random(m)).astype(np.float64)
        if trial % 5 == 0 and m:
            w[rng.integers(0, m, 2)] = np.nan
        if trial % 7 == 0 and m:
            w[rng.integers(0, m)] = np.inf
        n = int(rng.integers(0, 25))
        want = items[np.argsort(-w, kind="stable")[:n]]
        assert strongest(items, w, n).tolist() == want.tolist()
        ties += len(np.unique(w[np.isfinite(w)])) < np.isfinite(w).sum()
    assert ties > 500


def test_visitor_seeds_are_merge_row_then_strongest():
    from server.recommenders.kernels.factors import visitor_seeds
    rng = np.random.default_rng(10)
    R = random_R(rng, 40, 60)
    ds = Data(R)
    checked = 0
    for ctx in contexts(rng, 40, 60):
        li, lw = live_items(ds, ctx)
        items, w, _ = merge_row(ds, ctx.person, li, lw)
        for n in (0, 1, 3, 20):
            want = items[np.argsort(-w, kind="stable")[:n]]
            got = visitor_seeds(R.indptr, R.indices, R.data, ctx.person, li, lw, n)
            assert got.tolist() == want.tolist()
            checked += len(want) > 1
    assert checked > 200


def closest_numpy(Y, norms, cand, seeds):
    """The reason's pick before the kernels: per candidate, the seed of largest cosine other
    than itself, or -1 when that cosine is not finite."""
    dots = Y[cand] @ Y[seeds].T
    sim = dots / np.maximum(norms[cand][:, None] * norms[seeds][None, :], np.float32(1e-9))
    sim[cand[:, None] == seeds[None, :]] = -np.inf
    best = sim.argmax(axis=1)
    return np.where(np.isfinite(sim.max(axis=1)), seeds[best], -1)


def test_closest_seeds_is_the_numpy_pick():
    from server.recommenders.kernels.factors import closest_seeds
    rng = np.random.default_rng(11)
    for trial in range(1500):
        n_items = int(rng.integers(2, 50))
        Y = rng.integers(-2, 3, (n_items, 4)).astype(np.float32) if trial % 2 else rng.normal(size=(n_items, 4)).astype(np.float32)
        if trial % 5 == 0:
            Y[rng.integers(0, n_items)] = np.nan
        if trial % 7 == 0:
            Y[rng.integers(0, n_items)] = 0                 # a zero norm: the 1e-9 floor
        norms = np.linalg.norm(Y, axis=1).astype(np.float32)
        cand = rng.permutation(n_items)[:int(rng.integers(1, n_items + 1))].astype(np.int32)
        seeds = rng.permutation(n_items)[:int(rng.integers(1, min(n_items, 20) + 1))].astype(np.int64)
        got = closest_seeds(Y[cand] @ Y[seeds].T, norms, cand, seeds)
        with np.errstate(invalid="ignore"):
            assert got.tolist() == closest_numpy(Y, norms, cand, seeds).tolist()
    one = np.ones((1, 1), np.float32)
    assert closest_seeds(one, np.ones(3, np.float32), np.array([1], np.int32), np.array([1], np.int64)).tolist() == [-1]
    assert closest_seeds(np.ones((2, 0), np.float32), np.ones(3, np.float32), np.array([1, 2], np.int32),
                         np.zeros(0, np.int64)).tolist() == [-1, -1]


def test_closest_seed_is_the_numpy_pick_or_undecided():
    """``closest_seed`` (one candidate, no matmul) names the seed numpy's matmul and pick name,
    or -2: never another seed, on factors with ties (equal rows, integer factors whose cosines
    tie exactly), zero rows, NaN, the candidate among the seeds, no seeds, one seed; and it
    decides almost every case of continuous factors (48 of them, as the model's)."""
    from server.recommenders.kernels.factors import closest_seed
    rng = np.random.default_rng(13)
    decided = undecided = 0
    for trial in range(1500):
        n_items, f = int(rng.integers(2, 50)), (4, 48)[trial % 2]
        Y = rng.integers(-2, 3, (n_items, f)).astype(np.float32) if trial % 3 == 0 else rng.normal(size=(n_items, f)).astype(np.float32)
        if trial % 4 == 1:
            Y[rng.integers(0, n_items)] = Y[rng.integers(0, n_items)]     # two equal rows
        if trial % 5 == 0:
            Y[rng.integers(0, n_items)] = np.nan
        if trial % 7 == 0:
            Y[rng.integers(0, n_items, 2)] = 0                 # zero norms: the 1e-9 floor, exact zero cosines
        norms = np.linalg.norm(Y, axis=1).astype(np.float32)
        cand = rng.permutation(n_items)[:int(rng.integers(1, n_items + 1))].astype(np.int32)
        seeds = rng.permutation(n_items)[:int(rng.integers(0, min(n_items, 20) + 1))].astype(np.int64)
        with np.errstate(invalid="ignore"):
            want = closest_numpy(Y, norms, cand, seeds) if len(seeds) else np.full(len(cand), -1)
        for c, w in zip(cand.tolist(), want.tolist()):
            got = closest_seed(Y, norms, c, seeds.astype(np.int32))
            assert got in (w, -2), (trial, c, got, w)
            decided += got == w
            undecided += got == -2
            if trial % 3 and trial % 4 != 1 and trial % 5 and trial % 7 and f == 48:
                assert got == w      # continuous factors, no equal rows: told apart
    assert decided > 10 * undecided > 0      # (the undecided: the ties made on purpose)
    assert closest_seed(np.ones((2, 3), np.float32), np.ones(2, np.float32), 1, np.array([1], np.int32)) == -1
    assert closest_seed(np.ones((2, 3), np.float32), np.ones(2, np.float32), 1, np.zeros(0, np.int32)) == -1


def test_undecided_reasons_are_numpys(mf_model, monkeypatch):
    """Where ``closest_seed`` cannot decide, the answer's reasons come from numpy's matmul of
    every candidate and seed: with every call undecided, the reasons are still numpy's pick."""
    from server.recommenders import matrix_factorization as mf
    monkeypatch.setattr(mf, "closest_seed", lambda *a: -2)
    ds, model = mf_model
    als, norms = model[:2]
    rng = np.random.default_rng(14)
    named = 0
    for ctx in contexts(rng, 200, 300):
        c = MatrixFactorization().recommend(model, ds, ctx, 44)
        if not len(c):
            continue
        want = numpy_reasons(ds, als, norms, c, ctx)
        order = rng.permutation(len(c))                  # asked in any order, some twice
        got = {int(i): c.reason(int(i)) for i in np.concatenate([order, order[:3]])}
        assert [got[i] for i in range(len(c))] == want
        named += sum(r != "picked for you" for r in want)
    assert named > 1000


def test_reasons_of_factors_the_kernel_does_not_take(mf_model):
    """Item factors not as a fit makes them (rows not contiguous): the reasons are numpy's
    pick all the same (numpy's matmul), not an error."""
    from copy import copy
    ds, model = mf_model
    als = copy(model[0])
    als.item_factors = np.asfortranarray(model[0].item_factors)
    other = (als, *model[1:])
    rec = MatrixFactorization()
    rng = np.random.default_rng(15)
    checked = 0
    for ctx in list(contexts(rng, 200, 300))[:300]:
        a, b = rec.recommend(model, ds, ctx, 44), rec.recommend(other, ds, ctx, 44)
        assert [a.reason(i) for i in range(len(a))] == [b.reason(i) for i in range(len(b))]
        checked += len(a)
    assert checked > 1000


def test_reasons_are_the_numpy_pick(mf_model):
    """Every reason of whole answers (the known person's shortcut and the merged path) names
    the seed the numpy code picks: the visitor's 20 items of largest weight, then cosines."""
    ds, model = mf_model
    als, norms = model[:2]
    rec = MatrixFactorization()
    rng = np.random.default_rng(12)
    named = 0
    for ctx in contexts(rng, 200, 300):
        c = rec.recommend(model, ds, ctx, 44)
        if not len(c):
            continue
        want = numpy_reasons(ds, als, norms, c, ctx)
        assert [c.reason(i) for i in range(len(c))] == want
        named += sum(r != "picked for you" for r in want)
    assert named > 1000


def numpy_reasons(ds, als, norms, c, ctx) -> list[str]:
    """The reasons of answer ``c`` as the numpy code names them: the visitor's 20 items of
    largest weight as seeds, then the largest cosine (``closest_numpy``)."""
    items, w, _ = visitor_items(ds, ctx)
    seeds = items[np.argsort(-w, kind="stable")[:20]]
    with np.errstate(invalid="ignore"):
        want = closest_numpy(als.item_factors, norms, c.items, seeds)
    return [f"picked for you (because of {ds.label(int(s))})" if s >= 0 else "picked for you" for s in want]


def test_clean_items_is_the_filter_keeping_everything():
    from server.recommenders.kernels.factors import clean_items
    rng = np.random.default_rng(7)
    clean = 0
    for trial in range(3000):
        m = int(rng.integers(0, 8))
        items = np.sort(rng.integers(-1, 12, m)) if trial % 3 else rng.integers(-1, 12, m)
        w = rng.choice([-1.0, 0.0, 0.5, 2.0, np.nan], m, p=[.05, .05, .45, .4, .05]) if trial % 2 else np.ones(m)
        keep = (items >= 0) & (items < 10) & (w > 0)
        want = bool(keep.all()) and bool((items[1:] > items[:-1]).all())
        assert clean_items(items.astype(np.int64), w, 10) is want
        clean += want
    assert clean > 300


def test_fold_in_of_clean_and_unclean_items():
    """The shortcut for clean items gives the vector of the filtering path, bit for bit."""
    rng = np.random.default_rng(8)
    m = ImplicitALS(ALSParams(factors=8))
    m.item_factors = rng.normal(size=(40, 8)).astype(np.float32)
    for _ in range(200):
        items = np.unique(rng.integers(0, 40, int(rng.integers(1, 10))))
        w = rng.random(len(items)) + 0.1
        got = m.fold_in(items, w)
        # the same items, one of them repeated with weight 0 and one unknown (not clean: filtered)
        dirty_i = np.concatenate([items, [items[0], 45]])
        dirty_w = np.concatenate([w, [0.0, 1.0]])
        assert got.tobytes() == m.fold_in(dirty_i, dirty_w).tobytes()
        assert got.tobytes() == m.fold_in(items[::-1].copy(), w[::-1].copy()).tobytes()   # merged: sorted
