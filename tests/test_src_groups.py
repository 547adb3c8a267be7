"""customer_group's nearest centre for a visitor the model does not know (``kernels/groups.
nearest_centre`` and ``customer_group.nearest_centre``) against the numpy it replaces
(``assign(share_vectors(...))``), on random shares and centres with ties, zeros, one category,
one centre and the numpy path past ``MAX_PAIRWISE``."""
import numpy as np

from server.recommenders.customer_group import nearest_centre
from server.recommenders.kernels.groups import MAX_PAIRWISE, assign, share_vectors
from server.recommenders.kernels.groups import nearest_centre as kernel


def reference(cat_of, items, centres) -> int:
    """GroupModel.visitor_cluster's numpy code before the kernel."""
    share = np.zeros(centres.shape[1])
    for i, w in items:
        if 0 <= i < len(cat_of) and cat_of[i] >= 0:
            share[cat_of[i]] += w
    if share.sum() <= 0:
        return -1
    return int(assign(share_vectors(share[None, :]), centres)[0])


def test_the_kernel_is_numpys_nearest_centre_ties_included():
    rng = np.random.default_rng(5)
    for t in range(4000):
        n = int(rng.integers(1, MAX_PAIRWISE + 1)) if t % 3 else int(rng.integers(1, 20))
        k = int(rng.integers(1, 9))
        share = rng.random(n) * 10.0 ** rng.integers(-3, 4, n)
        share[rng.random(n) < 0.5] = 0.0
        if not share.any():
            share[int(rng.integers(0, n))] = 1.0
        if t % 4 == 0:      # few levels: equal shares, equal distances
            share = np.round(share * 2) + (share > 0)
        centres = rng.random((k, n))
        if t % 5 == 0 and k > 1:   # two equal centres: the first wins
            centres[k - 1] = centres[0]
        if t % 7 == 0:             # a centre on the visitor
            centres[int(rng.integers(0, k))] = share_vectors(share[None, :])[0]
        want = int(assign(share_vectors(share[None, :]), centres)[0])
        assert kernel(share, np.ascontiguousarray(centres)) == want, t


def test_the_visitor_cluster_is_the_numpy_one():
    rng = np.random.default_rng(6)
    for t in range(1500):
        n_items, n_cats = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        cat_of = rng.integers(-1, n_cats, n_items).tolist()
        m = int(rng.integers(0, 12))
        items = [(int(i), float(w)) for i, w in zip(rng.integers(-2, n_items + 2, m),
                                                      rng.integers(1, 4, m) / 4 if t % 2 else rng.random(m) + 0.01)]
        centres = np.ascontiguousarray(rng.random((int(rng.integers(1, 6)), n_cats)))
        assert nearest_centre(cat_of, items, centres) == reference(cat_of, items, centres)
    # past MAX_PAIRWISE categories: numpy itself
    cat_of = list(range(MAX_PAIRWISE + 5))
    items = [(3, 1.0), (MAX_PAIRWISE + 2, 0.5)]
    centres = np.ascontiguousarray(rng.random((3, MAX_PAIRWISE + 5)))
    assert nearest_centre(cat_of, items, centres) == reference(cat_of, items, centres)
    # no categorised item: no cluster
    assert nearest_centre([-1, -1], [(0, 1.0), (1, 2.0)], centres[:, :2].copy()) == -1
    assert nearest_centre([0], [], centres[:, :1].copy()) == -1


def test_the_kernel_refuses_other_dtypes():
    import pytest
    with pytest.raises(TypeError):
        kernel(np.ones(3, np.float32), np.ones((2, 3)))


def test_the_sums_are_in_numpys_order():
    """Centres that are permutations of each other, a visitor with equal shares: their squared
    distances are the same numbers summed in another order, so the nearest is decided by the
    rounding of numpy's summation order alone (a plain left-to-right sum disagrees often)."""
    rng = np.random.default_rng(7)
    plain_differs = 0
    for t in range(3000):
        n = int(rng.integers(2, MAX_PAIRWISE + 1))
        share = np.ones(n)
        c0 = rng.random(n)
        centres = np.ascontiguousarray(np.stack([c0, c0[rng.permutation(n)], c0[rng.permutation(n)]]))
        want = int(assign(share_vectors(share[None, :]), centres)[0])
        assert kernel(share, centres) == want, t
        x = np.sqrt(share / share.sum())
        plain = [sum(((x - c) ** 2).tolist()) for c in centres]
        plain_differs += int(np.argmin(plain)) != want
    assert plain_differs > 100


def _group_model(rng, persons, items, cats, with_centres):
    """A ``GroupModel`` as a fit leaves it: tiers, clusters (some -1), centres, each group's top."""
    from server.recommenders.customer_group import GroupModel
    from server.recommenders.kernels.groups import TIERS
    m = GroupModel.__new__(GroupModel)
    k = 3 if with_centres else 0
    m.tier = rng.integers(0, len(TIERS), persons).astype(np.int8)
    m.cluster = rng.integers(-1, k, persons).astype(np.int64) if k else np.full(persons, -1, np.int64)
    m.centres = rng.random((k, cats)) if k else np.zeros((0, cats))
    m.item_cat = rng.integers(-1, cats, items).astype(np.int64)
    m.cats = [f"c{j}" for j in range(cats)]

    def top():
        pos = rng.choice(items, 8, replace=False)
        return pos.astype(np.int32), np.sort(rng.integers(1, 5, 8).astype(np.float32))[::-1].copy()
    m.tier_top = [top() for _ in TIERS]
    m.cluster_top = [top() for _ in range(k)]
    m.cluster_name = [f"c{j}" for j in range(k)]
    return m


def test_a_persons_answer_read_from_their_group_is_the_computed_one(monkeypatch):
    """``person_answers`` (a known person's group answers, read with two look-ups) gives what
    the tier, segment and cluster path gives: persons with and without a cluster of their own,
    models with and without centres, profiles with a segment (a tier's name or not), persons
    outside the model, several k."""
    from server.recommenders.base import Context, Recent
    from server.recommenders.customer_group import CustomerGroup
    rng = np.random.default_rng(8)
    rec = CustomerGroup()
    read = 0
    for trial in range(40):
        model = _group_model(rng, 30, 50, 4, trial % 2 == 0)
        ctxs = []
        for p in range(-1, 32):
            recent = [Recent("x", int(i), 1, 10 - j, 1.0, True) for j, i in enumerate(rng.integers(0, 50, 3))]
            profile = [None, {}, {"segment": "VIP "}, {"segment": "other"}, {"gender": "f"}][int(rng.integers(0, 5))]
            ctxs.append(Context(person=p, recent=recent, profile=profile))
        ks = [int(x) for x in rng.integers(1, 12, len(ctxs))]
        fast = [rec.recommend(model, None, c, k) for c, k in zip(ctxs, ks)]
        read += sum(c is model.person_answers()[ctx.person].get(k)
                    for c, ctx, k in zip(fast, ctxs, ks) if 0 <= ctx.person < 30 and model.person_answers()[ctx.person])
        other = type(model).__new__(type(model))   # (the same fit, no memo: every answer computed)
        for name in ("tier", "cluster", "centres", "item_cat", "cats", "tier_top", "cluster_top", "cluster_name"):
            setattr(other, name, getattr(model, name))
        monkeypatch.setattr(type(other), "person_answers", lambda self: [])
        slow = [rec.recommend(other, None, c, k) for c, k in zip(ctxs, ks)]
        monkeypatch.undo()
        for a, b in zip(fast, slow):
            assert a.items.tolist() == b.items.tolist() and a.scores.tobytes() == b.scores.tobytes()
            assert [a.reason(i) for i in range(len(a))] == [b.reason(i) for i in range(len(b))]
    assert read > 300


def test_items_centre_is_nearest_centre_of_the_pairs():
    """``items_centre`` (the pairs as two arrays, the shares summed in the kernel) is
    ``nearest_centre`` of the pairs: items outside the catalog or without a category, repeated
    categories, equal weights, one item, none, one centre, one category."""
    from server.recommenders.kernels.groups import items_centre
    rng = np.random.default_rng(9)
    for t in range(3000):
        n_items, n_cats = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        cat_of = rng.integers(-1, n_cats, n_items)
        m = int(rng.integers(0, 12))
        items = rng.integers(-2, n_items + 2, m).astype(np.int64)
        w = (rng.integers(1, 4, m) / 4 if t % 2 else rng.random(m) * 10.0 ** rng.integers(-3, 3, m)).astype(np.float64)
        centres = np.ascontiguousarray(rng.random((int(rng.integers(1, 6)), n_cats)))
        want = nearest_centre(cat_of.tolist(), list(zip(items.tolist(), w.tolist())), centres)
        assert items_centre(items, w, cat_of.astype(np.int64), centres) == want, t
    assert items_centre(np.zeros(0, np.int64), np.zeros(0), np.zeros(3, np.int64), np.ones((2, 1))) == -1


def test_the_visitor_cluster_of_a_walked_session_is_the_pairs_one():
    """A bound session (``RecentList``: the view's arrays to ``items_centre``) and the same
    session as a plain list (its pairs to ``nearest_centre``) give the same cluster."""
    from server.recommenders.base import Context, Recent, RecentList
    from server.signals import CART, VIEW
    rng = np.random.default_rng(10)
    walked = 0
    for t in range(400):
        model = _group_model(rng, 5, 50, int(rng.integers(1, 6)), True)
        recent = [Recent("x", int(rng.integers(-1, 52)), int(rng.choice([VIEW, CART, 99])), 100 - j,
                         float(rng.choice([0.1, 0.5, 1.0, 2.5])), bool(rng.random() < 0.7)) for j in range(int(rng.integers(0, 25)))]
        plain = model.visitor_cluster(Context(person=-1, recent=list(recent)))
        ctx = Context(person=-1, recent=RecentList.of(recent))
        assert model.visitor_cluster(ctx) == plain
        walked += ctx.session_vectors(10).weights64 is not None and plain >= 0
    assert walked > 200
