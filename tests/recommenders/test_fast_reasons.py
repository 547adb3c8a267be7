"""``Candidates.reason`` reading the item sources' ``ClosestReasons`` itself (no call of the
sequence's own), against the sequence and the plain format, with the model's texts memo; the
other kinds of reasons (one string, a function of the item, a list) as before."""
import numpy as np

from server.recommenders.base import Candidates, ClosestReasons, LazyReasons


class DS:
    labels = 0

    def label(self, i):
        DS.labels += 1
        return f"p{i}"


def test_closest_reasons_through_candidates():
    rng = np.random.default_rng(5)
    texts: dict = {}
    for _ in range(50):
        n = int(rng.integers(0, 30))
        closest = rng.integers(0, 12, n).astype(np.int32)
        c = Candidates.of(np.arange(n, dtype=np.int32), np.ones(n, np.float32), ClosestReasons("with {}", DS(), closest, texts))
        seq = ClosestReasons("with {}", DS(), closest, texts)
        for p in rng.permutation(n).tolist():
            assert c.reason(p) == seq[p] == f"with p{closest[p]}"
    assert DS.labels <= 12 and set(texts) <= set(range(12))      # each text made once, then read
    texts[3] = "kept"
    c = Candidates.of(np.zeros(1, np.int32), np.ones(1, np.float32), ClosestReasons("with {}", DS(), np.array([3], np.int32), texts))
    assert c.reason(0) == "kept"


def test_other_reasons_unchanged():
    items = np.array([4, 7], np.int32)
    assert Candidates(items, [1, 2], "same").reason(1) == "same"
    assert Candidates(items, [1, 2], lambda i: f"i{i}").reason(1) == "i7"
    assert Candidates(items, [1, 2], ["a", "b"]).reason(0) == "a"
    assert Candidates(items, [1, 2], LazyReasons(lambda p: f"at{p}", 2)).reason(1) == "at1"
    c = Candidates.of(items, np.array([1, 2], np.float32), "x")
    assert c.items is items and c.scores.dtype == np.float32 and len(c) == 2
