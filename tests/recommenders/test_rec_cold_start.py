"""Every recommender of this group survives a brand-new tenant and a brand-new visitor."""
import pytest

from server.recommenders.base import Context, Recent
from server.signals import VIEW
from tests.recommenders.helpers import ShopData, product

MINE = ["user_cf", "matrix_factorization", "content_based", "search_keyword", "zero_result", "demographic",
        "customer_group", "review_based", "similar_image", "top_conversion", "top_rec_ctr", "top_rec_inflow",
        "time_of_day"]


def contexts(ds):
    first = ds.item_ids[0] if ds.n_items else "nope"
    return [Context(), Context(visitor="new", hour=23, weekday=6),
            Context(product=first, item=ds.item(first)),
            Context(recent=[Recent(first, ds.item(first), VIEW, 0, 1.0, True)]),
            Context(query="여성 가디건"), Context(query="   "), Context(profile={"gender": "f", "age_band": "25-34"}),
            Context(profile={"interests": ["캠핑"]}), Context(person=10_000, item=10_000)]


@pytest.mark.parametrize("catalog", [False, True], ids=["empty shard", "catalog only"])
def test_cold_start_never_raises(tmp_path, catalog):
    d = ShopData(tmp_path)
    if catalog:
        d.products([product("a", "여성 니트 가디건"), product("b", "남성 면 티셔츠"), product("c", "캠핑 텐트")])
    m = d.model(only=MINE)
    assert not m.errors
    for name in MINE:
        rec = m.recommenders[name]
        for ctx in contexts(m.ds):
            c = rec.recommend(m.fitted[name], m.ds, ctx, 5)
            assert len(c) <= 5
            assert all(0 <= i < m.ds.n_items for i in c.items.tolist())
            for n in range(len(c)):
                assert isinstance(c.reason(n), str) and c.reason(n)
    # zero-result alternatives are never empty while the shop has products
    c = m.recommenders["zero_result"].recommend(m.fitted["zero_result"], m.ds, Context(query="qqq"), 5)
    assert len(c) == (3 if catalog else 0)
    d.close()
