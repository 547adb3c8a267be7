"""category_top's rankings made by ``fit`` for every category path against the code that
sorted the category's products on every request: popularity ties, categories with no activity
(by creation time), an unknown leaf (its parent's ranking, the leaf named), the current
product's category, any k (0 and negative included), and a model pickled before the rankings
(the popularity alone)."""
import numpy as np

from server.recommenders.base import Candidates, Context
from server.recommenders.category_top import CategoryRanks, CategoryTop


class DS:
    def __init__(self, rng, n):
        paths = ["A", "A > B", "A > C", "D", "D > E > F"]
        self.category = [paths[int(rng.integers(0, len(paths)))] for _ in range(n)]
        self.categories = sorted(set(self.category)) + ["", "Q > R"]   # (a name no item has)
        self.created_at = rng.integers(0, 5, n).astype(np.int64) * 1000   # ties in creation time too
        self._derived = {}

    def category_items(self, cat):
        return np.array([i for i, c in enumerate(self.category) if c == cat or c.startswith(cat + " > ")], np.int64)

    def derived(self, name, fn):
        if name not in self._derived:
            self._derived[name] = fn(self)
        return self._derived[name]


def reference(model, ds, ctx, k):
    """category_top's recommend before the ranking was kept."""
    cat = ctx.category
    if not cat and ctx.item >= 0:
        cat = ds.category[ctx.item]
    if not cat:
        return Candidates.empty()
    members = ds.category_items(cat)
    if len(members) == 0 and " > " in cat:
        members = ds.category_items(cat.rsplit(" > ", 1)[0])
    if len(members) == 0:
        return Candidates.empty()
    s = model[members]
    if s.max(initial=0) <= 0:
        created = ds.created_at[members].astype(np.float64)
        s = (1.0 + (created - created.min()) / max(created.max() - created.min(), 1.0)).astype(np.float32)
    order = np.argsort(-s, kind="stable")[:k]
    return Candidates(members[order], s[order] + 1e-6, f"top in {cat.split(' > ')[-1]}")


def test_kept_rankings_are_the_sorted_answer():
    rng = np.random.default_rng(3)
    rec = CategoryTop()
    for t in range(60):
        n = int(rng.integers(1, 80))
        ds = DS(rng, n)
        models = [rng.integers(0, 3, n).astype(np.float32) for _ in range(2)]   # ties, zeros
        for c in range(n):          # a category without activity in the first model
            if ds.category[c] == "D > E > F":
                models[0][c] = 0.0
        fitted = [CategoryRanks(m, ds) for m in models] + models      # (the popularity alone: an old model)
        for _ in range(60):
            pick = int(rng.integers(0, 4))
            model, popular = fitted[pick], models[pick % 2]
            ctx = Context(category=rng.choice([None, "A", "A > B", "D", "D > E > F", "A > Z", "Z", "D > E > F > G", "D > E"]),
                          item=int(rng.integers(-1, n)))
            k = int(rng.integers(-2, 30))
            got, want = rec.recommend(model, ds, ctx, k), reference(popular, ds, ctx, k)
            assert got.items.tolist() == want.items.tolist() and got.items.dtype == np.int32
            assert got.scores.tobytes() == want.scores.tobytes()
            assert [got.reason(p) for p in range(len(got))] == [want.reason(p) for p in range(len(want))]
        assert set(fitted[0].at) <= {"A", "A > B", "A > C", "D", "D > E", "D > E > F"}


def test_answers_kept_per_path_and_k(monkeypatch):
    """A path's answer for a k is made once and shared (the same object), equal to the one made
    anew; a model pickled before the answers were kept makes them too; past MAX_ANSWERS the
    answers are made per call, still equal."""
    import pickle

    from server.recommenders import category_top as ct
    rng = np.random.default_rng(5)
    ds = DS(rng, 40)
    popular = rng.integers(0, 3, 40).astype(np.float32)
    model = CategoryRanks(popular, ds)
    rec = CategoryTop()
    ctx = Context(category="A")
    first = rec.recommend(model, ds, ctx, 5)
    assert rec.recommend(model, ds, ctx, 5) is first
    want = reference(popular, ds, ctx, 5)
    assert first.items.tolist() == want.items.tolist() and first.scores.tobytes() == want.scores.tobytes()
    assert rec.recommend(model, ds, ctx, 6) is not first   # (another k: its own answer)
    old = pickle.loads(pickle.dumps(model))
    del old._answers      # (as a model pickled before the slot)
    got = rec.recommend(old, ds, ctx, 5)
    assert got.items.tolist() == first.items.tolist() and rec.recommend(old, ds, ctx, 5) is got
    monkeypatch.setattr(ct, "MAX_ANSWERS", 0)
    fresh = CategoryRanks(popular, ds)
    a, b = rec.recommend(fresh, ds, ctx, 5), rec.recommend(fresh, ds, ctx, 5)
    assert a is not b and a.items.tolist() == b.items.tolist() == first.items.tolist() and not fresh._answers
