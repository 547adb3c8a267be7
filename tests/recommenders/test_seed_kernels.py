"""``kernels/seeds`` (a request's session and page seeds over the live state's columns) against
the Python walk they replace (``Context`` over a plain list) and the views' definitions, bit for
bit: random visits with repeated products, every kind, bounces, NaN and tiny weights, earlier
visits, the page's products (duplicates, the current product among the cart), empty lists,
single interactions, bounds from 0 to past the kernels' 64."""
import math
import random

import numpy as np

from server.recommenders.base import Context, Recent, RecentList, SeedVectors, walk_columns
from server.recommenders.kernels import seeds as K
from server.signals import CART, CLICK, IMPRESSION, PURCHASE, REMOVE, REVIEW, VIEW
from tests.recommenders.test_request_helpers import _session_items   # the definition
from tests.test_context_views import _seed_items

KINDS = (VIEW, VIEW, CART, PURCHASE, CLICK, REVIEW, REMOVE, IMPRESSION)
WEIGHTS = (0.1, 0.2, 0.5, 1.0, 2.0, 2.5, 5.0, float("nan"), 0.19999, 1e-300, float("inf"))


def _pairs_equal(a, b):
    assert [i for i, _ in a] == [i for i, _ in b] and all(type(i) is int for i, _ in a)
    for (_, x), (_, y) in zip(a, b):
        assert x == y or (math.isnan(x) and math.isnan(y))   # bit for bit
        assert type(x) is float


def _vectors_equal(a: SeedVectors, b: SeedVectors):
    assert a.items.dtype == b.items.dtype == np.int64 and a.weights.dtype == b.weights.dtype == np.float32
    assert a.items.tolist() == b.items.tolist() and a.weights.tobytes() == b.weights.tobytes()
    assert (a.low, a.end, a.positive) == (b.low, b.end, b.positive)


def _visit(rng, n):
    spread = rng.choice((1, 5, 30, 120))   # 120 distinct products: more than the kernels walk
    return [Recent("p", rng.randrange(-1, spread), rng.choice(KINDS), 0, rng.choice(WEIGHTS), rng.random() < 0.5)
            for _ in range(n)]


def test_views_of_the_columns_equal_the_python_walk_and_the_definitions():
    rng = random.Random(17)
    for n in [0, 1, 1, 2] + [rng.randrange(0, 160) for _ in range(300)]:
        recent = _visit(rng, n)
        page = dict(item=rng.choice((-1, -1, 0, 3, 50)),
                    cart_items=np.array([rng.randrange(0, 60) for _ in range(rng.choice((0, 0, 1, 3, 12)))], np.int32),
                    order_items=np.array(rng.sample(range(60), rng.choice((0, 0, 2))), np.int32))
        fast = Context(recent=RecentList.of(recent), **page)
        plain = Context(recent=list(recent), **page)
        for m in (rng.randrange(0, 70), 0, 1, 8, 10, 20, 64, 65, 100):
            for only in (False, True):
                _pairs_equal(fast.session_items(m, only), _session_items(recent, m, only))
                _vectors_equal(fast.session_vectors(m, only), plain.session_vectors(m, only))
            _pairs_equal(fast.seed_items(m), _seed_items(plain, m))
            _vectors_equal(fast.seed_vectors(m), plain.seed_vectors(m))
            for v in (fast.session_vectors(m), fast.seed_vectors(m)):   # (walked: float64 weights when asked)
                assert getattr(v, "_w64", None) is None or v.seeds is not None   # (made when asked: by pairs() here)
                if v.weights64 is not None:
                    assert v.weights64 is v.weights64 and v.weights64.astype(np.float32).tobytes() == v.weights.tobytes()
                    assert v.weights64.tolist() == [w for _, w in v.pairs()] and v.weights64.dtype == np.float64
            assert plain.seed_vectors(m).weights64 is None
            assert fast._seeds(m) == plain._seeds(m)


def test_the_kernels_directly_on_edge_cases():
    """Empty columns, a bound of 0, one interaction, a product seen again after the bound was
    reached (its weight still grows: the walk stops at the first NEW product beyond it), a
    repeat weighed with the latest new product's decay, NaN dropped after taking its rank."""
    def walk(recent, m, only=False):
        cols = walk_columns(recent)
        items, w32, low, end, positive = K.session_seeds(cols, m, only)
        w = K.session_weights(cols, m, only)
        assert w32.tolist() == w.astype(np.float32).tolist() and len(w) == len(items)
        return list(zip(items.tolist(), w.tolist())), (low, end, positive)

    r = lambda i, w=1.0, s=True, kind=VIEW: Recent("p", i, kind, 0, w, s)
    assert walk([], 10) == ([], (0, 0, True))
    assert walk([r(3)], 0) == ([], (0, 0, True))
    assert walk([r(3)], 1) == ([(3, 1.0)], (3, 4, True))
    got, stats = walk([r(3), r(4), r(3, 2.0), r(5), r(4, 1.0, False)], 2)
    assert got == [(3, 1.0 + 2.0 * 0.8), (4, 0.8)] and stats == (3, 5, True)
    got, _ = walk([r(3, float("nan")), r(4), r(5)], 2)
    assert got == [(4, 0.8)]                          # the NaN product took rank 0 and is dropped
    got, _ = walk([r(3, 1.0, False), r(4, 1.0, True)], 5, only=True)
    assert got == [(4, 1.0)]
    assert walk([r(-1), r(2, 0.1), r(2, kind=REMOVE), r(2, kind=IMPRESSION)], 5)[0] == []   # none is walked
    cols = walk_columns([r(3), r(4)])
    no = np.zeros(0, np.int32)
    items, w32, low, end, positive = K.page_seeds(cols, 3, 4, np.array([7, 4, 7], np.int32), no)
    w = K.page_weights(cols, 3, 4, np.array([7, 4, 7], np.int32), no)
    assert items.tolist() == [4, 7, 3] and w.tolist() == [3.0, 2.0, 0.2] and (low, end, positive) == (3, 8, True)
    assert w32.tolist() == [3.0, 2.0, np.float32(0.2)]
    assert [len(x) for x in K.page_seeds(cols, 0, 4, no, no)[:2]] == [0, 0] and K.page_seeds(cols, 0, 4, no, no)[2:] == (0, 0, True)
    assert len(K.page_weights(cols, 0, 4, no, no)) == 0 and len(K.session_weights(cols, 0, False)) == 0
    assert K.DECAY.tolist() == [0.8 ** k for k in range(K.MAX_ITEMS)]


def test_a_walked_view_makes_its_float64_weights_when_asked():
    recent = [Recent("p", i % 7, VIEW, 0, 0.5 + i / 10, i % 3 > 0) for i in range(20)]
    for page in (dict(), dict(item=3, cart_items=np.array([5, 1], np.int32))):
        ctx = Context(recent=RecentList.of(recent), **page)
        plain = Context(recent=list(recent), **page)
        for v, ref in ((ctx.session_vectors(8), plain.session_items(8)), (ctx.seed_vectors(10), plain.seed_items(10))):
            assert v._w64 is None and v.seeds is None   # not made with the view
            w = v.weights64
            assert w.dtype == np.float64 and w.tolist() == [x for _, x in ref] and v.weights64 is w
            assert list(v.pairs()) == ref


def test_a_list_changed_since_its_columns_is_walked_in_python():
    recent = RecentList.of([Recent("p", 1, VIEW, 0, 1.0, True)])
    ctx = Context(recent=recent)
    assert ctx.session_items(10) == [(1, 1.0)]
    recent.append(Recent("p", 2, VIEW, 0, 1.0, True))   # (not done by the engine: a request's list is not changed)
    ctx = Context(recent=recent)
    assert ctx.session_items(10) == [(1, 1.0), (2, 0.8)] and ctx.seed_vectors(10).items.tolist() == [1, 2]


def test_read_only_page_products_take_the_python_walk():
    cart = np.array([5, 6], np.int32)
    cart.flags.writeable = False
    recent = [Recent("p", 1, VIEW, 0, 1.0, True)]
    fast = Context(recent=RecentList.of(recent), cart_items=cart)
    _vectors_equal(fast.seed_vectors(10), Context(recent=recent, cart_items=cart).seed_vectors(10))
    assert fast.seed_items(10) == [(5, 2.0), (6, 2.0), (1, 0.2)] and fast.session_items(20) == [(1, 1.0)]
