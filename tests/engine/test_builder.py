"""The builder process's loop (server/builder.py), run in-process on a real data dir: workers'
requests, rebuilds after new events from anywhere, a failed build keeps the last good model,
and the workers' side (``RemoteModelStore``) loads what the builder published."""
from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from server import builder as B
from server.config import Settings
from server.recommenders import model as model_mod
from server.shards import Shard, open_connection
from server.tenants import TenantRegistry
from tests.engine.fixtures import T0, ShopData, product, view


@pytest.fixture
def env(tmp_path):
    settings = Settings.from_env(env={}, data_dir=tmp_path / "data", engine_rebuild_after_events=3, ranker_enabled=False)
    reg = TenantRegistry(settings.data_dir)
    t, _ = reg.create("tt", ["https://shop.example"])
    shard = Shard.open("tt", reg.shard_path("tt"), settings)
    d = ShopData.__new__(ShopData)
    d.shard = shard
    d.products([product("a"), product("b"), product("c")])
    d.events([view("a"), view("b", ts=T0 + 1)])
    b = B.Builder(settings)
    yield settings, d, b
    d.close()
    reg.close()


def _run_once(b: B.Builder) -> B._Tenant | None:
    b.scan()
    t = b.next_due()
    if t is not None:
        b.build(t)
    return t


def _current(settings) -> dict:
    return json.loads((B.models_dir(settings, "tt") / "current.json").read_text())


def _build_and_load(store, shard, b):
    """A worker asks for a build (as POST /v1/engine/rebuild does), the builder runs once, the
    worker loads what it published: the worker's model afterwards."""
    async def go():
        fut = store.schedule(shard, force=True)
        _run_once(b)
        await asyncio.wait_for(asyncio.wrap_future(fut), 10)
        return store.get("tt")
    return asyncio.run(go())


def test_nothing_is_built_for_a_tenant_nobody_serves(env):
    settings, d, b = env
    assert _run_once(b) is None
    assert not B.models_dir(settings, "tt").exists()


def test_worker_request_builds_and_the_worker_loads_it(env):
    settings, d, b = env
    store = B.RemoteModelStore(settings)

    async def go():
        fut = store.schedule(d.shard, force=True)   # what POST /v1/engine/rebuild does
        assert _run_once(b) is not None              # the builder takes the request
        await asyncio.wait_for(asyncio.wrap_future(fut), 10)
        return fut.result()

    m = asyncio.run(go())
    assert m is not None and m.ds.n_feedback == 2 and store.get("tt") is m
    cur = _current(settings)
    assert cur["n"] == 1 and cur["failures"] == 0 and not cur["building"]
    assert store.status("tt")["model"]["dataset"]["feedback"] == 2
    assert _run_once(b) is None  # nothing new: no build


def test_new_events_from_any_process_trigger_a_rebuild(env):
    settings, d, b = env
    (B.models_dir(settings, "tt")).mkdir()
    (B.models_dir(settings, "tt") / "active").touch()
    assert _run_once(b) is not None
    t = b.tenants["tt"]
    d.events([view("c", visitor="x", session="x", ts=T0 + 5)])
    t.last_check = 0
    assert _run_once(b) is None  # 1 new event, the threshold is 3
    d.events([view("a", visitor="y", session="y", ts=T0 + 6), view("c", visitor="y", session="y", ts=T0 + 7)])
    t.last_check = 0
    assert _run_once(b) is t
    cur = _current(settings)
    assert cur["model"]["dataset"]["feedback"] == 5 and cur["n"] == 2


def test_catalog_change_rebuilds(env):
    settings, d, b = env
    B.models_dir(settings, "tt").mkdir()
    (B.models_dir(settings, "tt") / "active").touch()
    _run_once(b)
    t = b.tenants["tt"]
    d.products([product("d")])
    t.last_check = 0
    t.last_build -= B.CATALOG_DELAY_S
    assert _run_once(b) is t
    assert _current(settings)["model"]["dataset"]["items"] == 4


def test_failed_build_keeps_the_last_good_model(env, monkeypatch):
    settings, d, b = env
    store = B.RemoteModelStore(settings)


    first = _build_and_load(store, d.shard, b)
    assert first is not None

    def broken(*a, **kw):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(model_mod, "build_model", broken)
    again = _build_and_load(store, d.shard, b)
    assert again is first  # still the last good model
    cur = _current(settings)
    assert cur["n"] == 1 and cur["failures"] == 1 and "disk on fire" in cur["last_error"]
    # and a failing tenant is retried with a pause, not in a tight loop
    b.tenants["tt"].force = True
    assert not b.due(b.tenants["tt"])


def test_deleted_tenant_is_forgotten(env):
    settings, d, b = env
    B.models_dir(settings, "tt").mkdir()
    (B.models_dir(settings, "tt") / "active").touch()
    _run_once(b)
    assert "tt" in b.tenants
    TenantRegistry(settings.data_dir).delete("tt")
    time.sleep(settings.tenant_cache_s + 0.1)
    b.scan()
    assert "tt" not in b.tenants


def test_a_recreated_tenant_starts_a_new_model_series(env):
    """Deleted and created again under the same slug, with a restarted builder: the worker
    loads the new tenant's first model although its number is lower than the one it holds."""
    import shutil

    settings, d, b = env
    store = B.RemoteModelStore(settings)


    for _ in range(3):
        old = _build_and_load(store, d.shard, b)
    assert _current(settings)["n"] == 3
    shutil.rmtree(B.models_dir(settings, "tt"))   # what tenant delete does to the folder
    b = B.Builder(settings)                        # a restarted builder: the series starts over
    new = _build_and_load(store, d.shard, b)
    assert _current(settings)["n"] == 1 and new is not old


def test_a_damaged_model_file_keeps_the_last_model(env):
    settings, d, b = env
    store = B.RemoteModelStore(settings)


    first = _build_and_load(store, d.shard, b)
    b.tenants["tt"].force = True
    b.scan()
    b.build(b.tenants["tt"])
    cur = _current(settings)
    (B.models_dir(settings, "tt") / cur["file"]).write_bytes(b"not a pickle")
    st = store._loaded["tt"]
    asyncio.run(store._load_if_newer("tt", st))
    assert store.get("tt") is first and st.n == 1  # still the last good one, and not retried
    assert st.mtime == (B.models_dir(settings, "tt") / "current.json").stat().st_mtime


def test_the_inbox_is_read_on_every_pass_and_tenant_folders_only_on_full_scans(env):
    """A worker's note reaches the builder in a pass that does not look at any tenant folder
    (the idle loop's cost does not grow with the number of tenants); a deleted tenant's note is
    dropped; ``active`` files alone are noticed by the full scans."""
    settings, d, b = env
    store = B.RemoteModelStore(settings)
    b.scan(full=True)
    assert b.tenants == {}
    inbox = B.inbox_dir(settings)

    async def first_request():
        return await store.ensure(d.shard, 0)   # a worker's first request: its "active" note
    asyncio.run(first_request())
    assert [n.split("--")[0] for n in os.listdir(inbox)] == ["tt"]
    b.scan(full=False)
    assert "tt" in b.tenants and b.next_due() is b.tenants["tt"]  # no model yet: built at once
    assert list(inbox.iterdir()) == []                           # the note was taken
    b.build(b.tenants["tt"])

    rid = store._request("tt", "force")                          # POST /v1/engine/rebuild
    (inbox / "gone--0123456789abcdef").write_text("force")       # a note of a tenant that does not exist
    b.scan(full=False)
    t = b.tenants["tt"]
    assert t.force and t.requests == [rid] and "gone" not in b.tenants
    assert list(inbox.iterdir()) == []
    b.build(t)
    assert rid in _current(settings)["done"]

    del b.tenants["tt"]                                          # an idle tenant, forgotten
    (B.models_dir(settings, "tt") / "active").touch()            # a worker still serves it
    b.scan(full=False)
    assert "tt" not in b.tenants                                 # folders are not read between full scans
    b.scan(full=True)
    assert "tt" in b.tenants


def test_an_unchanged_shard_is_not_queried_on_every_check(env):
    """The per-second check reads the shard only when its files changed (or once every
    ``QUERY_S``); new events from another connection are still seen on the next check."""
    settings, d, b = env
    B.models_dir(settings, "tt").mkdir()
    (B.models_dir(settings, "tt") / "active").touch()
    assert _run_once(b) is not None
    t = b.tenants["tt"]
    opened = []  # the shard's queries
    real = b._check_query
    b._check_query = lambda t, inode: opened.append(1) or real(t, inode)

    def check():
        t.last_check = 0
        return b.due(t)
    for _ in range(3):
        assert not check()
    first = len(opened)
    assert first <= 2            # (the first check may see the files its own connection touched)
    for _ in range(5):
        assert not check()
    assert len(opened) == first  # unchanged files: no query
    d.events([view("c", visitor="x", session="x", ts=T0 + 5), view("a", visitor="x", session="x", ts=T0 + 6),
              view("b", visitor="y", session="y", ts=T0 + 7)])
    assert check()               # 3 new events (the threshold): a rebuild is due
    assert len(opened) == first + 1 and t.seen_seq > t.seq
    check()
    assert len(opened) == first + 1
    t.last_query -= B.QUERY_S    # once a minute the shard is queried whatever its files say
    check()
    assert len(opened) == first + 2


def test_the_checks_keep_a_connection_that_holds_no_snapshot(env):
    """The per-second check queries on one kept connection (not one per check), which holds no
    read transaction between checks (the WAL can start over), opens anew when the shard file is
    replaced (the tenant deleted and created again), and is closed with a forgotten tenant."""
    settings, d, b = env
    B.models_dir(settings, "tt").mkdir()
    (B.models_dir(settings, "tt") / "active").touch()
    assert _run_once(b) is not None
    t = b.tenants["tt"]
    opened = []
    real = b._conn
    b._conn = lambda t: opened.append(1) or real(t)

    def check():
        t.last_check, t.last_query = 0, -B.QUERY_S  # query whatever the files say
        return b.due(t)
    for k in range(3):
        d.events([view("c", visitor="x", session="x", ts=T0 + 10 + k)])
        check()
    assert len(opened) == 1 and t.seen_seq == t.seq + 3
    conn = b._check_conns["tt"][1]
    assert not conn.in_transaction
    other = open_connection(d.shard.path)
    busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    other.close()
    assert busy == 0                                   # no snapshot held: the WAL started over
    assert os.path.getsize(f"{d.shard.path}-wal") == 0

    # the shard made anew under the same name: a new connection reads the new file
    path = d.shard.path
    d.close()
    os.replace(path, f"{path}.old")
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")
    shard = Shard.open("tt", path, settings)
    shard.writer.submit(lambda c: c.execute("INSERT INTO products (id, title, url, price, currency, in_stock,"
                                            " updated_at, created_at) VALUES ('z', 'z', '/z', 1, 'EUR', 1, 1, 1)")).result()
    check()
    assert len(opened) == 2 and t.seen_catalog[0] == 1
    shard.close_sync()
    d.shard = Shard.open("tt", path, settings)         # (for the fixture's teardown)

    b.forget("tt")
    assert "tt" not in b._check_conns and "tt" not in b.tenants
    with pytest.raises(Exception):
        conn.execute("SELECT 1")                        # closed


def test_a_worker_poll_reads_one_file_until_the_builder_publishes(env):
    """The worker's poll passes over its tenants only when the builder's publish marker
    changed (or every ``FULL_POLL_S``): a new model is still loaded by the next poll."""
    settings, d, b = env
    store = B.RemoteModelStore(settings)
    first = _build_and_load(store, d.shard, b)
    looked = []
    real = store._load_if_newer

    async def counting(slug, st):
        looked.append(slug)
        await real(slug, st)
    store._load_if_newer = counting

    async def polls(n):
        return [await store.poll_once() for _ in range(n)]
    asyncio.run(polls(1))                     # (the pass after the build)
    looked.clear()
    assert asyncio.run(polls(5)) == [False] * 5 and looked == []   # nothing published: one read each
    b.tenants["tt"].force = True
    b.build(b.tenants["tt"])                  # the builder publishes a new model
    assert asyncio.run(polls(1)) == [True] and looked == ["tt"]
    assert store.get("tt") is not first and store._loaded["tt"].n == 2
    store._full_at -= store.FULL_POLL_S       # and every FULL_POLL_S whatever the marker says
    assert asyncio.run(polls(1)) == [True]


def test_the_builder_builds_in_the_tenants_time_zone(env):
    settings, d, b = env
    TenantRegistry(settings.data_dir).update("tt", timezone="Asia/Seoul")
    time.sleep(settings.tenant_cache_s + 0.1)   # (the builder's registry re-reads within this)
    store = B.RemoteModelStore(settings)
    m = _build_and_load(store, d.shard, b)
    assert m.ds.local.name == "Asia/Seoul" and m.ds.local.at(0) == (9, 3)


class _Ranker:
    """A stand-in for a trained ranker state: what the builder's second publication adds."""
    def __init__(self, version):
        self.version = version


def test_the_ranker_publication_of_the_served_build_keeps_the_served_model(env):
    """After a build the builder publishes the model, then the same build again with its new
    ranker: a worker serving the first keeps that model object (its live bindings, caches and
    reply heads) and takes only the ranker; a new build is loaded as a new model."""
    settings, d, b = env
    store = B.RemoteModelStore(settings)
    loaded = []
    store.on_loaded = lambda slug, model: loaded.append(model)
    first = _build_and_load(store, d.shard, b)
    assert loaded == [first] and getattr(first, "learned_ranker", None) is None
    t = b.tenants["tt"]
    build = _current(settings)["build"]
    assert build == t.build_id

    published = B._load(B.models_dir(settings, "tt") / _current(settings)["file"])   # the builder's own model, as train() has it
    published.learned_ranker = _Ranker("r1")
    b.publish(t, published, [])
    cur = _current(settings)
    assert cur["build"] == build and cur["n"] == 2
    st = store._loaded["tt"]
    asyncio.run(store._load_if_newer("tt", st))
    assert store.get("tt") is first and st.n == 2            # the same object, the ranker taken
    assert first.learned_ranker.version == "r1" and loaded == [first]   # not warmed again

    b.tenants["tt"].force = True                              # a new build: a new model
    b.scan()
    b.build(b.tenants["tt"])
    assert _current(settings)["build"] != build
    asyncio.run(store._load_if_newer("tt", st))
    assert store.get("tt") is not first and st.n == 3 and loaded[-1] is store.get("tt")


def test_a_restarted_builder_s_build_is_not_taken_for_the_served_one(env):
    """Build ids are unique, not counters: a builder started again (same model series) whose
    first build would have the served build's number still gives a new model."""
    settings, d, b = env
    store = B.RemoteModelStore(settings)
    first = _build_and_load(store, d.shard, b)
    b2 = B.Builder(settings)                                  # the builder process started again
    second = _build_and_load(store, d.shard, b2)
    assert second is not first and store._loaded["tt"].build == b2.tenants["tt"].build_id != b.tenants["tt"].build_id
