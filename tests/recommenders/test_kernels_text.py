"""TF-IDF kernel: word + in-word character n-grams, Korean without an analyser."""
import numpy as np
import pytest

from server.recommenders.kernels.text import TfidfIndex, char_ngrams, tokens, words

DOCS = [
    "여성 니트 가디건 베이지",        # 0
    "여성 울 니트 스웨터",            # 1
    "남성 면 티셔츠 화이트",          # 2
    "남성 반팔 티셔츠 블랙",          # 3
    "Blue ceramic coffee mug",       # 4
    "Red ceramic tea cup",           # 5
]


def test_tokens_words_and_grams():
    assert words("여성 니트-가디건, WOOL!") == ["여성", "니트", "가디건", "wool"]
    assert char_ngrams("가디건") == ["가디", "디건", "가디건"]
    assert char_ngrams("a") == ["a"]
    ws, grams = tokens("ＡＢＣ 면")  # full-width folds to ascii; 1-char word kept as its own gram
    assert ws == ["abc", "면"]
    assert "ab" in grams and "abc" in grams and "면" in grams


def test_rows_are_unit_and_blocks_weighted():
    ix = TfidfIndex().fit(DOCS)
    norms = np.sqrt(np.asarray(ix.matrix.multiply(ix.matrix).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-5)
    # an identical document has cosine 1
    assert ix.query_scores(DOCS[2])[2] == pytest.approx(1.0, abs=1e-5)


def test_korean_item_neighbours():
    ix = TfidfIndex().fit(DOCS)
    idx, sc = ix.neighbors(k=2)
    assert idx[0, 0] == 1          # cardigan ↔ sweater (여성, 니트)
    assert idx[2, 0] == 3          # two men's t-shirts
    assert idx[4, 0] == 5          # two ceramics
    assert sc[0, 0] > sc[0, 1] >= 0
    assert (idx != np.arange(6)[:, None]).all()   # never itself


def test_korean_partial_word_and_particle_query():
    ix = TfidfIndex().fit(DOCS)
    # "가디건을" (with object particle) and "가디" (partial) still find the cardigan first
    assert ix.query("가디건을", k=1)[0].tolist() == [0]
    assert ix.query("가디", k=1)[0].tolist() == [0]
    assert ix.query("티셔츠", k=2)[0].tolist() in ([2, 3], [3, 2])


def test_misspelt_latin_query():
    ix = TfidfIndex().fit(DOCS)
    assert ix.query("cermaic mugg", k=1)[0].tolist() == [4]


def test_unknown_query_and_empty_corpus():
    ix = TfidfIndex().fit(DOCS)
    items, scores = ix.query("zzzz qqqq")
    assert items.size == 0 and scores.size == 0
    empty = TfidfIndex().fit([])
    assert empty.query("가디건")[0].size == 0
    i, s = empty.neighbors(5)
    assert i.shape == (0, 5)


def test_known_cosine_value_words_only():
    # word block only, two docs sharing one of two words with equal idf → cosine 0.5
    ix = TfidfIndex(word_weight=1.0).fit(["aa bb", "aa cc", "dd"])
    s = ix.query_scores("aa bb")
    idf_aa = np.log(4 / 3) + 1
    idf_bb = np.log(4 / 2) + 1
    expected = idf_aa * idf_aa / (np.hypot(idf_aa, idf_bb) * np.hypot(idf_aa, idf_bb))
    assert s[1] == pytest.approx(expected, rel=1e-5)
    assert s[2] == 0


def test_similar_to_vector_mean_of_items():
    ix = TfidfIndex().fit(DOCS)
    v = ix.matrix[[0, 4]].mean(axis=0)           # a visitor who looked at a cardigan and a mug
    items, _ = ix.similar_to_vector(np.asarray(v).ravel(), k=3, exclude=np.array([0, 4]))
    assert set(items[:2].tolist()) == {1, 5}


def test_pruned_equals_fit_with_max_df():
    docs = [f"셔츠 모델{i} {'면' if i % 3 else '울'}" for i in range(20)] + ["가방 가죽", "가방 캔버스"]
    full = TfidfIndex().fit(docs)
    a = full.pruned(0.5)
    b = TfidfIndex(max_df=0.5).fit(docs)
    assert a.vocab == b.vocab
    assert np.allclose(a.matrix.toarray(), b.matrix.toarray(), atol=1e-6)
    assert "w:셔츠" in full.vocab and "w:셔츠" not in a.vocab
    assert np.allclose(a.query_scores("가방"), b.query_scores("가방"), atol=1e-6)
