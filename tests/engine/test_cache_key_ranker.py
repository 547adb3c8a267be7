"""The result cache keys on the learned ranker's version: a newly trained ranker is never
answered with lists the blend (or an older ranker) ordered."""
from __future__ import annotations

from server import serving
from server.placements import ranker as hook


class FakeRanker:
    def __init__(self):
        self.version = None

    def cache_token(self, model):
        return self.version

    def rank(self, model, ctx, pool):  # pragma: no cover - not called here
        return sorted(pool)


def test_ranker_version_is_part_of_the_cache_key():
    before = hook.get_ranker()
    fake = FakeRanker()
    hook.set_ranker(fake)
    try:
        model = object()
        assert serving._ranker_token(model) is None
        fake.version = "r2"
        assert serving._ranker_token(model) == "r2"
    finally:
        hook.set_ranker(before)
    assert serving._ranker_token(object()) is None  # the blend has no version


def test_cache_key_tells_every_part_apart():
    """The result cache's key (one MessagePack string, ``serving._cache_key``) is equal only when
    every part is: each part changed alone, values that print alike (None, "", "null", 1 and 1.0,
    ["a", "b"] and ["ab"]) give another key; the same parts, the same key."""
    import gc

    from server.placements.config import Pick
    from server.serving import Body, Page, Slot

    class Model:
        built_at = 1700000000.25

    model = Model()

    def key(page=None, slots=None, pname="main", variant="A", person=3, user=None, live=(7,), session="s1",
            hour=(472000, 13), version=2, slug="shop", built_at=None, m=model):
        if built_at is not None:
            m = type("M", (), {"built_at": built_at})()
        body = Body(slots=slots or [Slot(id="a")], user=user, session=session, page=page or Page())
        picks = [Pick(s.placement, pname, {"name": variant}, {}) for s in body.slots]
        return serving._cache_key(slug, m, version, body, picks, person, live, hour)

    base = key()
    assert isinstance(base, bytes) and not gc.is_tracked(base)
    assert key() == base
    variants = [
        key(page=Page(type="detail")), key(page=Page(product="p1")), key(page=Page(product="null")),
        key(page=Page(product="")), key(page=Page(category="c")), key(page=Page(query="q")),
        key(page=Page(cart=["a", "b"])), key(page=Page(cart=["ab"])), key(page=Page(order=["a"])),
        key(slots=[Slot(id="b")]), key(slots=[Slot(id="a", count=9)]), key(slots=[Slot(id="a", exclude=["x"])]),
        key(slots=[Slot(id="a", rules={"dedupe": True})]),
        key(slots=[Slot(id="a"), Slot(id="b")]), key(pname="cart"), key(variant="B"), key(person=-1),
        key(user="u"), key(user=""), key(live=()), key(live=(8,)), key(session="s2"), key(hour=(472000, 14)),
        key(hour=(472001, 13)), key(version=3), key(slug="shop2"), key(built_at=1700000000.5), key(m=Model()),
        key(built_at=1700000000),
    ]
    assert len(set(variants + [base])) == len(variants) + 1
    assert key(person=1) != key(person=1.0) and key(live=(), session="x") == key(live=(), session="y")
