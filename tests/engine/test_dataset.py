import numpy as np

from server.recommenders.dataset import build_dataset
from server.signals import CART, PURCHASE, VIEW
from tests.engine.fixtures import MIN, T0, ShopData, buy, cart, engage, product, view


def test_dataset_reads_shard(tmp_path):
    d = ShopData(tmp_path).products([product("a", "Blue mug", "Home > Mugs"), product("b", "Red mug", "Home > Mugs"),
                                     product("c", "Tea", "Food")])
    d.events([view("a"), engage("a", 20_000), view("b", ts=T0 + MIN), engage("b", 1_000, ts=T0 + MIN),
              cart("a", ts=T0 + 2 * MIN), buy("o1", ["a", "c"], ts=T0 + 3 * MIN),
              view("zz", visitor="v2", session="s2", ts=T0 + 4 * MIN)])
    conn = d.shard.connect_read()
    ds = build_dataset(conn)
    conn.close()
    assert ds.item_ids[:3] == ["a", "b", "c"] and ds.n_items == 4  # zz only seen in events
    assert not ds.in_catalog[ds.item("zz")] and ds.in_catalog[ds.item("a")]
    assert ds.clock_ms == T0 + 4 * MIN
    kinds = {(ds.item_ids[i], int(k)) for i, k in zip(ds.fb_item, ds.fb_kind)}
    assert ("a", VIEW) in kinds and ("a", CART) in kinds and ("c", PURCHASE) in kinds
    # a 1-second view of b is a bounce: far below the 20-second read of a
    wa = ds.fb_weight[(ds.fb_item == ds.item("a")) & (ds.fb_kind == VIEW)][0]
    wb = ds.fb_weight[(ds.fb_item == ds.item("b")) & (ds.fb_kind == VIEW)][0]
    assert wb < 0.2 < 1.0 <= wa
    assert ds.B.shape == (1, 4) and ds.B[0, ds.item("a")] == 1
    p = ds.person(None, "v1")
    assert p >= 0 and ds.R[p, ds.item("a")] > ds.R[p, ds.item("b")]
    assert ds.category_items("Home").tolist() == [0, 1]
    d.close()


def test_empty_shard(tmp_path):
    d = ShopData(tmp_path)
    m = d.model()
    assert m.ds.n_items == 0 and m.ds.clock_ms == 0
    d.close()


def test_order_lines_read_in_chunks_gives_the_same_baskets(tmp_path, monkeypatch):
    import server.recommenders.dataset as D
    d = ShopData(tmp_path).products([product(p) for p in "abcdef"])
    d.events([buy(f"o{n}", list("abcdef")[n % 3:n % 3 + 3], f"v{n % 4}", f"s{n}", T0 + n) for n in range(9)])
    conn = d.shard.connect_read()
    whole = D.build_dataset(conn)
    monkeypatch.setattr(D, "ORDER_CHUNK", 2)  # orders straddle chunks
    chunked = D.build_dataset(conn)
    conn.close()

    def baskets(ds):
        return sorted((ds.basket_ids[b], ds.person_ids[ds.basket_person[b]], tuple(sorted(ds.item_ids[i] for i in ds.B[b].indices)))
                      for b in range(ds.B.shape[0]))
    assert baskets(whole) == baskets(chunked) and len(baskets(whole)) == 9
    d.close()


def test_live_factor_matches_the_build_factor():
    import numpy as np

    from server.live import _factor
    from server.signals import engagement_factor
    for eng, scroll, content, usual in [(1000, 90, 0, 20_000), (20_000, 50, 5_000, 20_000), (90_000, 100, 90_000, 10_000),
                                        (4_000, 0, 0, 60_000)]:
        vec = engagement_factor(np.array([eng]), np.array([scroll]), np.array([content]), np.array([usual]),
                                np.array([True]))[0]
        assert abs(vec - _factor(eng, scroll, usual, content)) < 1e-9
