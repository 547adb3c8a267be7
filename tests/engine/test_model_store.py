"""Background builds: a failed rebuild keeps the last good model; a failing recommender is
left out; enough new events trigger a rebuild; requests never wait for a rebuild."""
import time

import pytest

from server.recommenders import model as model_mod
from server.recommenders import registry
from server.recommenders.base import Candidates, Recommender
from server.recommenders.model import ModelStore
from tests.engine.fixtures import T0, ShopData, product, view


@pytest.fixture
def shop(tmp_path):
    d = ShopData(tmp_path).products([product("a"), product("b")])
    d.events([view("a"), view("b", ts=T0 + 1)])
    yield d
    d.close()


def test_failed_rebuild_keeps_last_good_model(shop, monkeypatch):
    store = ModelStore()
    first = store.schedule(shop.shard, force=True).result(timeout=30)
    assert first is not None and store.get("t") is first

    def broken(*a, **kw):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(model_mod, "build_model", broken)
    assert store.schedule(shop.shard, force=True).result(timeout=30) is None
    assert store.get("t") is first
    st = store.status("t")
    assert st["failures"] == 1 and "disk on fire" in st["last_error"] and st["model"] is not None
    store.shutdown()


def test_failing_recommender_is_left_out(shop, monkeypatch):
    class Broken(Recommender):
        def fit(self, ds):
            raise ValueError("bad fit")

        def recommend(self, model, ds, ctx, k):
            return Candidates.empty()
    Broken.name = "broken_for_test"
    monkeypatch.setitem(registry._REGISTRY, "broken_for_test", Broken)
    m = shop.model()
    assert "broken_for_test" in m.errors and "broken_for_test" not in m.fitted
    assert "viewed_together" in m.fitted


def test_new_events_trigger_a_rebuild(shop):
    store = ModelStore(rebuild_after_events=3)
    store.schedule(shop.shard, force=True).result(timeout=30)
    built = store.get("t").built_at
    shop.events([view("b", visitor="x", session="x", ts=T0 + 5)])
    store.on_events(None, shop.shard, 1)
    assert store.status("t")["new_events"] == 1  # below the threshold: no rebuild
    shop.events([view("a", visitor="y", session="y", ts=T0 + 6), view("b", visitor="y", session="y", ts=T0 + 7)])
    store.on_events(None, shop.shard, 2)
    deadline = time.time() + 30
    while store.get("t").built_at == built and time.time() < deadline:
        time.sleep(0.02)
    assert store.get("t").built_at != built and store.get("t").ds.n_feedback == 5
    store.shutdown()


def test_tick_rebuilds_when_another_process_wrote(shop):
    store = ModelStore(rebuild_interval_s=0)
    store.seq_check_s = 0
    store.schedule(shop.shard, force=True).result(timeout=30)
    built = store.get("t").built_at
    store.tick([shop.shard])  # nothing new
    time.sleep(0.05)
    assert store.get("t").built_at == built
    shop.events([view("b", visitor="z", session="z", ts=T0 + 9)])  # not counted by this store
    store.tick([shop.shard])
    deadline = time.time() + 30
    while store.get("t").built_at == built and time.time() < deadline:
        time.sleep(0.02)
    assert store.get("t").built_at != built
    store.shutdown()


def test_models_of_closed_shards_are_forgotten(shop):
    store = ModelStore()
    store.schedule(shop.shard, force=True).result(timeout=30)
    store.tick([shop.shard])
    assert store.get("t") is not None
    store.tick([])  # the shard was closed as idle
    assert store.get("t") is None
    store.shutdown()
