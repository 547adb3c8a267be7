"""``blend._fused``'s ``slot_select_2``/``_4`` call without numba's dispatch
(``jit.Kernel.unchecked``): the same slots as through the dispatch; the arguments not made
by the slot's own code (page products, the cart, other sources' answers) that are not of the
signature's ndim and layout go through the dispatch (which refuses them, as before), and a
neighbour table not of ``neighbour_top``'s types is refused by ``Neighbours.table``."""
import numpy as np
import pytest

from server.placements import blend
from server.recommenders._common import Neighbours
from tests.engine.fixtures import ShopData, rules_shop
from tests.engine.test_slot_plan import _requests, _serve
from tests.engine.test_slot_walk import _live


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=6)
    d.close()


def _counted(monkeypatch):
    """Counts of the calls without the dispatch and through it."""
    calls = {"unchecked": 0, "dispatch": 0}
    for name in ("slot_select_2", "slot_select_4"):
        k = getattr(blend.K, name)
        k.compile()
        monkeypatch.setattr(k, "unchecked", lambda *a, _f=k.unchecked: calls.__setitem__(
            "unchecked", calls["unchecked"] + 1) or _f(*a))
    real = blend._compiled
    monkeypatch.setattr(blend, "_compiled", lambda fn: calls.__setitem__("dispatch", calls["dispatch"] + 1) or real(fn))
    return calls


def _fresh(model):
    model.clear_caches()
    model.__dict__.pop("_slot_plans", None)


def test_the_call_without_dispatch_gives_the_dispatched_slots(model, monkeypatch):
    requests = _live(_requests(model, 200, 11), np.random.default_rng(11)) * 2
    calls = _counted(monkeypatch)
    got = _serve(model, requests)
    assert calls["unchecked"] > 200
    _fresh(model)
    monkeypatch.setattr(blend, "_unchecked", blend._compiled)   # (every call through the dispatch)
    assert _serve(model, requests) == got
    _fresh(model)
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)   # (each source asked on its own)
    assert _serve(model, requests) == got


def test_page_products_and_carts_of_another_layout_or_ndim_go_through_the_dispatch(model, monkeypatch):
    """A strided cart or order (int32, not contiguous), a 2-d cart: the dispatch refuses the
    walk's page products (the queries then) and takes the strided cart (``int32[:]``); the
    slots equal those of each source asked."""
    base = [r for r in _live(_requests(model, 120, 12), np.random.default_rng(12))]
    requests = []
    for i, (fields, slots) in enumerate(base):
        items = np.repeat(np.asarray(fields["cart_items"], np.int32), 2)
        if i % 3 == 0:
            fields = dict(fields, cart_items=items[::2])
        elif i % 3 == 1 and len(items):
            fields = dict(fields, order_items=np.repeat(np.array([1, 2], np.int32), 2)[::2])
        requests.append((fields, slots))
    assert not any(blend._flat_int32(f["cart_items"]) for f, _ in requests[::3] if len(f["cart_items"]) > 1)
    assert sum(len(f["cart_items"]) > 1 for f, _ in requests[::3]) > 5
    calls = _counted(monkeypatch)
    got = _serve(model, requests)
    assert calls["dispatch"] > 20 and calls["unchecked"] > 20
    _fresh(model)
    monkeypatch.undo()
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got
    # (a 2-d cart: the dispatch refuses it, as before; the slot asks each source)
    ctx_fields, slots = next((f, s) for f, s in base if len(f["cart_items"]) >= 2)
    two_d = dict(ctx_fields, cart_items=np.asarray(ctx_fields["cart_items"], np.int32)[:2].reshape(1, 2).copy())
    _fresh(model)
    monkeypatch.undo()
    calls = _counted(monkeypatch)
    try:
        _serve(model, [(two_d, slots)])
    except Exception:
        pass   # (the steps after the call may refuse a 2-d cart too; the call did not read it unchecked)
    assert calls["unchecked"] == 0


def test_flat_int32_is_the_signatures_page_products():
    a = np.arange(6, dtype=np.int32)
    assert blend._flat_int32(a) and blend._flat_int32(blend._NO_PAGE)
    ro = a.copy()
    ro.flags.writeable = False
    assert blend._flat_int32(ro)   # (read only: the call reads them, never writes)
    for bad in (a[::2], a.astype(np.int64), a.astype(np.float32), a.reshape(2, 3), [1, 2]):
        assert not blend._flat_int32(bad)


def test_a_table_not_of_neighbour_tops_types_is_refused():
    idx = np.array([[1, -1], [0, 1], [-1, -1]], np.int32)
    score = np.array([[0.5, 0], [0.2, 0.1], [0, 0]], np.float32)
    pad, sc, ends = Neighbours(idx, score).table()
    assert sc is score and pad.tolist() == [[1, 3], [0, 1], [3, 3]] and ends.tolist() == [1, 2, 0]
    ro = score.copy()
    ro.flags.writeable = False
    for bad_idx, bad_score in ((idx, score.astype(np.float64)), (idx, np.asfortranarray(score)), (idx, ro),
                               (idx, score[:, :1]), (idx, score.ravel())):
        with pytest.raises(TypeError):
            Neighbours(bad_idx, bad_score).table()
