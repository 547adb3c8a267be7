"""content_based, search_keyword, zero_result, review_based on Korean and English catalogs."""
import pytest

from server.recommenders.base import Context
from tests.recommenders.helpers import (MIN, T0, ShopData, buy, cart, fit, ids, product, recs, reviews, search,
                                        session_ctx, view)

CATALOG = [
    product("cardigan", "여성 니트 가디건 베이지", "의류 > 여성 > 니트", brand="모노"),
    product("sweater", "여성 울 니트 스웨터", "의류 > 여성 > 니트", brand="모노"),
    product("tshirt_w", "남성 면 티셔츠 화이트", "의류 > 남성 > 티셔츠"),
    product("tshirt_b", "남성 반팔 티셔츠 블랙", "의류 > 남성 > 티셔츠"),
    product("mug", "Blue ceramic coffee mug", "Home > Kitchen"),
    product("cup", "Red ceramic tea cup", "Home > Kitchen"),
    product("tent", "캠핑 텐트 4인용", "레저 > 캠핑"),
]


def catalog(tmp_path):
    return ShopData(tmp_path).products(CATALOG)


def test_content_based_korean_neighbours_with_reason(tmp_path):
    d = catalog(tmp_path)
    rec, model, ds = fit(d, "content_based")
    out = recs(rec, model, ds, Context(product="cardigan", item=ds.item("cardigan")), k=3)
    assert out[0][0] == "sweater"
    assert out[0][2] == "similar to 여성 니트 가디건 베이지"
    assert "cardigan" not in ids(out)
    out = recs(rec, model, ds, session_ctx(ds, ["tshirt_w"]), k=1)
    assert ids(out) == ["tshirt_b"]
    out = recs(rec, model, ds, session_ctx(ds, ["mug"]), k=1)
    assert ids(out) == ["cup"]
    d.close()


def test_content_based_cold_start(tmp_path):
    d = ShopData(tmp_path)
    rec, model, ds = fit(d, "content_based")
    assert len(rec.recommend(model, ds, Context(), 5)) == 0
    d.products(CATALOG)
    rec, model, ds = fit(d, "content_based")
    assert len(rec.recommend(model, ds, Context(), 5)) == 0        # no seed: nothing to be similar to


def test_search_keyword_text_korean_particle_and_partial(tmp_path):
    d = catalog(tmp_path)
    rec, model, ds = fit(d, "search_keyword")
    assert recs(rec, model, ds, Context(query="가디건을"), k=1)[0][0] == "cardigan"
    top = recs(rec, model, ds, Context(query="티셔츠"), k=2)
    assert set(ids(top)) == {"tshirt_w", "tshirt_b"}
    assert top[0][2] == "matches '티셔츠'"
    assert recs(rec, model, ds, Context(query="ceramic"), k=2)[0][0] in ("mug", "cup")
    d.close()


def test_search_keyword_behaviour_after_search(tmp_path):
    """Searchers of '선물' (gift: matches no title) went on to view and buy the tent."""
    d = catalog(tmp_path)
    events = []
    for n in range(3):
        v, s, t = f"v{n}", f"s{n}", T0 + n * 60 * MIN
        events += [search("선물", v, s, t), view("tent", v, s, t + MIN), buy(f"o{n}", ["tent"], v, s, t + 2 * MIN),
                   view("mug", v, s, t + 40 * MIN)]                  # 40 min later: not a follow-up
    events += [search("선물", "v9", "s9", T0), search("커피", "v9", "s9", T0 + MIN), view("cup", "v9", "s9", T0 + 2 * MIN)]
    d.events(events)
    rec, model, ds = fit(d, "search_keyword")
    out = recs(rec, model, ds, Context(query="선물"), k=3)
    assert ids(out) == ["tent"]        # the cup followed the next search, the mug came too late
    assert out[0][2] == "chosen by people who searched '선물'"
    # a new query close to a known one borrows its behaviour
    out = recs(rec, model, ds, Context(query=" 선물 "), k=1)
    assert ids(out) == ["tent"]
    d.close()


def test_search_keyword_cold_start(tmp_path):
    d = ShopData(tmp_path)
    rec, model, ds = fit(d, "search_keyword")
    assert len(rec.recommend(model, ds, Context(query="가디건"), 5)) == 0
    d.close()


def test_zero_result_misspelling_and_partial_korean(tmp_path):
    d = catalog(tmp_path)
    rec, model, ds = fit(d, "zero_result")
    assert recs(rec, model, ds, Context(query="cermaic mugg"), k=1)[0][0] == "mug"
    assert recs(rec, model, ds, Context(query="가디"), k=1)[0][0] == "cardigan"
    assert recs(rec, model, ds, Context(query="텐트캠핑"), k=1)[0][0] == "tent"   # no space
    out = recs(rec, model, ds, Context(query="캠"), k=1)
    assert out[0][0] == "tent" and out[0][2] == "close to '캠'"
    d.close()


def test_zero_result_never_empty(tmp_path):
    d = catalog(tmp_path)
    d.events([view("mug", ts=T0), view("mug", "v2", "s2", T0), cart("mug", ts=T0 + MIN)])
    rec, model, ds = fit(d, "zero_result")
    out = recs(rec, model, ds, Context(query="zzzz qqqq"), k=3)
    assert len(out) == 3
    assert out[0][0] == "mug" and out[0][2] == "popular in the shop"
    # a weak match is topped up to k with popular products, matches first
    out = recs(rec, model, ds, Context(query="가디"), k=4)
    assert out[0][0] == "cardigan" and len(out) == 4 and len(set(ids(out))) == 4
    d.close()


def test_zero_result_catalog_only_and_empty(tmp_path):
    d = ShopData(tmp_path)
    rec, model, ds = fit(d, "zero_result")
    assert len(rec.recommend(model, ds, Context(query="x"), 5)) == 0     # nothing in the shop at all
    d.products(CATALOG)
    rec, model, ds = fit(d, "zero_result")
    assert len(recs(rec, model, ds, Context(query="qqqq"), k=3)) == 3    # no events: newest products
    d.close()


def test_review_based_text_and_reviewers(tmp_path):
    d = catalog(tmp_path)
    reviews(d, [
        {"id": "r1", "product": "cardigan", "user": "u1", "rating": 5, "text": "포근하고 따뜻해요 가을에 딱"},
        {"id": "r2", "product": "tent", "user": "u9", "rating": 4, "text": "포근하고 따뜻해요 겨울 캠핑"},
        {"id": "r3", "product": "mug", "user": "u2", "rating": 5, "text": "great gift, sturdy"},
        {"id": "r4", "product": "cup", "user": "u2", "rating": 4, "text": "lovely colour"},
        {"id": "r5", "product": "mug", "user": "u3", "rating": 5, "text": "sturdy and big"},
        {"id": "r6", "product": "cup", "user": "u3", "rating": 5, "text": "nice"},
    ])
    rec, model, ds = fit(d, "review_based")
    out = recs(rec, model, ds, Context(product="cardigan", item=ds.item("cardigan")), k=2)
    assert out[0][0] == "tent" and out[0][2] == "reviewed alike to 여성 니트 가디건 베이지"
    out = recs(rec, model, ds, Context(product="cup", item=ds.item("cup")), k=2)
    assert out[0][0] == "mug" and out[0][2] == "reviewers of Red ceramic tea cup also reviewed it"
    d.close()


def test_review_based_cold_start(tmp_path):
    d = catalog(tmp_path)
    rec, model, ds = fit(d, "review_based")
    assert model is None
    assert len(rec.recommend(model, ds, Context(product="cup", item=ds.item("cup")), 5)) == 0
    d.close()


def test_search_keyword_new_query_borrows_similar_known_query(tmp_path):
    d = catalog(tmp_path)
    d.events([search("니트 가디건", f"v{n}", f"s{n}", T0 + n * MIN) for n in range(3)]
             + [view("sweater", f"v{n}", f"s{n}", T0 + n * MIN + 1000) for n in range(3)])
    rec, model, ds = fit(d, "search_keyword")
    out = recs(rec, model, ds, Context(query="니트가디건"), k=2)     # no space: never searched as such
    assert "sweater" in ids(out)
    assert dict((r[0], r[2]) for r in out)["sweater"] == "chosen by people who searched '니트가디건'"
    d.close()


def test_search_for_the_shops_most_common_word(tmp_path):
    """'셔츠' is in most titles of a shirt shop: still a match (no max_df for queries)."""
    d = ShopData(tmp_path).products([product(f"s{i}", f"셔츠 모델{i}") for i in range(60)]
                                    + [product(f"b{i}", f"가방 {i}") for i in range(10)])
    rec, model, ds = fit(d, "search_keyword")
    out = recs(rec, model, ds, Context(query="셔츠"), k=5)
    assert len(out) == 5 and all(p.startswith("s") for p in ids(out))
    d.close()


def test_content_based_large_catalog_path_matches_precomputed(tmp_path, monkeypatch):
    """Above MAX_PRECOMPUTED items, neighbours are computed on first use: same answers."""
    from server.recommenders import _text
    d = catalog(tmp_path)
    rec, model, ds = fit(d, "content_based")
    monkeypatch.setattr(_text, "MAX_PRECOMPUTED", 1)
    lazy = _text.TextNeighbours(model.index)
    assert lazy.idx is None
    for i in range(ds.n_items):
        a, b = model.of(i), lazy.of(i)
        assert a[0].tolist() == b[0].tolist() and abs(a[1] - b[1]).max(initial=0) < 1e-5
    assert len(lazy._cache) == ds.n_items
    d.close()


@pytest.mark.parametrize("name", ["search_keyword", "zero_result"])
def test_equal_matches_go_to_the_popular_product(tmp_path, name):
    d = ShopData(tmp_path).products([product("x1", "린넨 셔츠"), product("x2", "린넨 셔츠"), product("y", "가방")])
    d.events([view("x2", f"v{i}", f"s{i}", T0 + i * MIN) for i in range(5)] + [view("y", "w", "w", T0)])
    rec, model, ds = fit(d, name)
    assert ids(recs(rec, model, ds, Context(query="린넨"), k=2)) == ["x2", "x1"]
    d.close()
