"""The slot machinery's code arrays (server/placements/blend.py): what the selection kernels
compare, made by shortcuts that must equal the plain construction."""
import numpy as np

from server.placements import blend


def _plain_codes(held: dict) -> np.ndarray:
    return np.array([list(held), [blend.name_code(h) for h in held.values()]], np.int64).reshape(2, len(held))


def test_held_codes_equal_the_plain_construction_for_any_holder():
    for held in ({}, {5: "buy_again"}, {3: "recently_viewed", 1: "buy_again", 9: "recently_viewed"},
                 {2: "buy_again", 7: "a_test_holder", 4: "recently_viewed"}):   # (another holder: the slow path)
        got = blend.Held(held).codes()
        assert got.dtype == np.int64 and got.shape == (2, len(held))
        assert np.array_equal(got, _plain_codes(held))


def test_src_codes_are_the_names_codes_shared_per_list_and_bounded(monkeypatch):
    names = ["realtime_personal", "item_cf", "a_test_source", "item_cf"]
    got = blend.src_codes(names)
    assert got.dtype == np.int64 and got.tolist() == [blend.name_code(n) for n in names]
    assert blend.src_codes(list(names)) is got   # (one array per list of names)
    assert blend.src_codes([]).tolist() == []
    monkeypatch.setattr(blend, "_SRC_CODES", {})
    for n in range(1100):
        blend.src_codes([f"test_source_{n}"])
    assert len(blend._SRC_CODES) <= 1024


def test_a_pool_key_hashed_once_equals_its_tuple():
    a = blend.SourceKey((8, None, (blend.SourceKey(("item_cf", None, (1, 2))), 0.6)))
    b = blend.SourceKey((8, None, (blend.SourceKey(("item_cf", None, (1, 2))), 0.6)))
    c = blend.SourceKey((8, None, (blend.SourceKey(("item_cf", None, (1, 3))), 0.6)))
    assert a == b and hash(a) == hash(b) and a != c and len({a, b, c}) == 2


def test_pool_ranking_asks_a_ranker_unless_it_is_the_blend_or_leaves_the_slot_to_it(monkeypatch):
    from server.placements import ranker as RK

    rows = np.array([[3, 5, 9], [0, 0, 0], [0, 1, 2], [1, 2, 0], [0, 1, 2]], np.int64)
    score = np.array([0.5, 0.9, 0.7], np.float32)
    blend_order = [1, 2, 0]
    asked = []

    class Custom:
        def rank(self, model, ctx, cands):
            asked.append(cands.items.tolist())
            return np.array([2, 1, 0])

    class Guarded(Custom):
        def __init__(self, ok):
            self.ok = ok

        def serves(self, model, ctx):
            return self.ok

    for ranker, want, asks in ((RK.BlendRanker(), blend_order, False), (Custom(), [2, 1, 0], True),
                               (Guarded(False), blend_order, False), (Guarded(True), [2, 1, 0], True)):
        monkeypatch.setattr(RK, "RANKER", ranker)
        pool = blend.Pool(rows, score, ["a"], [None])
        pool._per_source = np.zeros((3, 1), np.float32)
        asked.clear()
        assert list(pool.ranking(None, None)) == want
        assert asked == ([[3, 5, 9]] if asks else [])
