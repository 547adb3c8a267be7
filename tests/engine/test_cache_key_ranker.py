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
