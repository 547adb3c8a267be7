"""The in-memory live state (server/live.py) answers exactly what the SQL reference reads, while
events keep arriving (out of time order, purchases, impressions, engagement), for visitors read
before and after the writes, in two "workers" (two LiveStates on one shard), and after an
LRU eviction or a bulk import; seeing commits through the shard's WAL-index and, without one,
through ``PRAGMA data_version``."""
from __future__ import annotations

import random

import pytest

from server import live as L
from tests.engine.fixtures import T0, ShopData, buy, e, engage, product, view


def _same(a, b):
    (ra, ba, na), (rb, bb, nb) = a, b
    assert [(r.product, r.item, r.kind, r.ts, round(r.weight, 6), r.in_session) for r in ra] == \
           [(r.product, r.item, r.kind, r.ts, round(r.weight, 6), r.in_session) for r in rb]
    assert ba == bb and na == nb


@pytest.fixture
def shop(tmp_path):
    d = ShopData(tmp_path).products([product(f"p{i}") for i in range(12)])
    yield d
    d.close()


@pytest.fixture(params=["wal-index", "wal-index pread", "data_version"])
def looks(request, monkeypatch):
    """How LiveState.sync sees commits: the WAL-index header (mapped, or read with ``pread``
    when the file was too short to map), or (no WAL-index) the PRAGMA."""
    if request.param == "data_version":
        monkeypatch.setattr(L, "_wal_index", lambda conn: None)
    elif request.param == "wal-index pread":
        wal_index = L._wal_index

        def unmapped(conn):   # (the process's shared descriptor, without its map)
            f = wal_index(conn)
            if f is None:
                return None
            g = L._ShmFile.__new__(L._ShmFile)
            g.fd, g.dev, g.ino, g.header = f.fd, f.dev, f.ino, None
            return g
        monkeypatch.setattr(L, "_wal_index", unmapped)
    return request.param


@pytest.fixture
def reader(shop):
    """A read connection of the shop's shard and its model's dataset."""
    conn = shop.shard.connect_read()
    yield conn, shop.model().ds
    conn.close()


def _random_events(rng: random.Random, visitors: list[str], n: int, used: set) -> list[dict]:
    out = []
    for _ in range(n):
        v = rng.choice(visitors)
        s = v + rng.choice(["a", "b"])
        ts = T0 + rng.randrange(0, 10_000_000)
        while ts in used:  # distinct times: the SQL's order among equal times is not specified
            ts += 1
        used.add(ts)
        p = f"p{rng.randrange(12)}"
        kind = rng.random()
        if kind < 0.35:
            out.append(view(p, visitor=v, session=s, ts=ts))
        elif kind < 0.6:
            out.append(engage(p, rng.choice([800, 5000, 40_000]), visitor=v, session=s, ts=ts, scroll=rng.randrange(100),
                              content_ms={"description": rng.randrange(3000)}))
        elif kind < 0.7:
            out.append(e("add_to_cart", v, s, ts, product=p))
        elif kind < 0.75:
            out.append(e("remove_from_cart", v, s, ts, product=p))
        elif kind < 0.85:
            out.append(e("rec_impression", v, s, ts, product=p, rec_id="r_1"))
        elif kind < 0.9:
            out.append(e("page_view", v, s, ts, page="main"))
        else:
            out.append(buy(f"o{rng.randrange(10**9)}", rng.sample([f"p{i}" for i in range(12)], rng.randint(1, 4)),
                           visitor=v, session=s, ts=ts))
    return out


def test_memory_equals_sql_while_events_arrive(shop, reader, looks):
    rng = random.Random(5)
    visitors = [f"v{i}" for i in range(6)]
    conn, ds = reader
    w1, w2 = L.LiveState(), L.LiveState(max_visitors=3)  # w2 evicts: reloads must stay exact
    used: set = set()
    for round_ in range(25):
        shop.events(_random_events(rng, visitors, rng.randint(1, 30), used))
        for w in (w1, w2):
            w.sync(conn)
            for v in rng.sample(visitors, 4):
                s = v + rng.choice(["a", "b"])
                _same(w.context(conn, ds, v, s), L.live_context(conn, ds, v, s))
    assert w1.hits > 0 and w1.tail_rows > 0 and w2.loads > w1.loads
    assert (w1.wal_index is not None) == (looks != "data_version")
    assert (looks == "wal-index") == (w1.wal_index is not None and w1.wal_index.header is not None)


def test_long_history_keeps_the_newest(shop, reader):
    conn, ds = reader
    w = L.LiveState()
    shop.events([view("p1", visitor="x", session="x", ts=T0 + i) for i in range(100)])
    w.sync(conn)
    w.context(conn, ds, "x", "x")  # loaded: capped at RECENT_EVENTS rows
    late = [view(f"p{i % 12}", visitor="x", session="x", ts=T0 + 50 + i * 1000) for i in range(80)]
    shop.events(late + [buy(f"o{i}", ["p2", "p3"], visitor="x", session="x", ts=T0 + 5 + i) for i in range(70)])
    w.sync(conn)
    _same(w.context(conn, ds, "x", "x"), L.live_context(conn, ds, "x", "x"))
    assert len(w.visitors["x"][0]) == L.RECENT_EVENTS and len(w.visitors["x"][1]) == L.RECENT_LINES


def test_bulk_import_starts_over(shop, reader, monkeypatch):
    monkeypatch.setattr(L, "TAIL_MAX", 10)
    conn, ds = reader
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "y", "y")
    shop.events([view("p4", visitor="y", session="y", ts=T0 + i) for i in range(30)])
    w.sync(conn)
    assert not w.visitors  # forgotten, read again on the next request
    _same(w.context(conn, ds, "y", "y"), L.live_context(conn, ds, "y", "y"))


def test_held_state_is_invisible_to_the_cyclic_gc(shop, reader):
    """Held visitors are tuples of atoms: the GC untracks them, so they never lengthen its pauses."""
    import gc

    conn, ds = reader
    w = L.LiveState()
    for i in range(50):
        shop.events([view(f"p{i % 12}", visitor=f"g{i}", session="s", ts=T0 + i),
                     buy(f"og{i}", ["p1"], visitor=f"g{i}", session="s", ts=T0 + i + 1)])
    w.sync(conn)
    for i in range(50):
        w.context(conn, ds, f"g{i}", "s")
    shop.events([engage("p3", 9000, visitor=f"g{i}", session="s", ts=T0 + 500 + i) for i in range(50)])
    w.sync(conn)
    for i in range(25):  # digested and bound to the model again by a request (the others: not yet)
        w.context(conn, ds, f"g{i}", "s")
    for _ in range(5):  # each pass untracks one level of nested tuples
        gc.collect()
    assert not any(gc.is_tracked(v) for v in w.visitors.values())
    assert all(w.visitors[f"g{i}"][5] is not None for i in range(25)) and w.visitors["g30"][5] is None


def test_a_new_model_binds_the_held_visitors_anew(shop, reader):
    """Held visitors keep their context bound to the model of the last request: a request with
    another model (a rebuild; None: no model) must answer for that model, then for the first again."""
    conn, ds = reader
    shop.events([view("p1", visitor="m", session="m", ts=T0), engage("p1", 9000, visitor="m", session="m", ts=T0 + 1),
                 buy("om", ["p2", "p13"], visitor="m", session="m", ts=T0 + 2)])
    other = shop.products([product("p13")]).model().ds  # rebuilt: p13 known, items renumbered
    w = L.LiveState()
    w.sync(conn)
    for d in (ds, other, None, ds, other):
        got = w.context(conn, d, "m", "m")
        _same(got, L.live_context(conn, d, "m", "m"))
    assert any(r.product == "p13" and r.item >= 0 for r in got[0])


def test_preload_reads_the_latest_visitors_exactly(shop, reader):
    import asyncio

    conn, ds = reader
    shop.events([view(f"p{i % 12}", visitor=f"old{i}", session="s", ts=T0 + i) for i in range(20)])
    shop.events([view(f"p{i % 12}", visitor=f"new{i}", session="s", ts=T0 + 100 + i) for i in range(20)]
                + [buy("o-pre", ["p1", "p2"], visitor="new3", session="s", ts=T0 + 300)])
    w = L.LiveState(max_visitors=30)
    n = asyncio.run(w.preload(conn, events=21, chunk=4))
    assert n == 20 and set(w.visitors) == {f"new{i}" for i in range(20)}
    for i in (0, 3, 19):  # answered from memory, equal to the SQL
        loads = w.loads
        _same(w.context(conn, ds, f"new{i}", "s"), L.live_context(conn, ds, f"new{i}", "s"))
        assert w.loads == loads
    shop.events([engage("p5", 7000, visitor="new3", session="s", ts=T0 + 400)])
    w.sync(conn)
    _same(w.context(conn, ds, "new3", "s"), L.live_context(conn, ds, "new3", "s"))


def test_two_connections_never_hide_a_change(shop, looks):
    """``PRAGMA data_version`` counts per connection: the warm start syncs through its own
    connection, and its counter's value must not make the request's connection skip a change."""

    class Counter:  # a connection whose data_version the test sets
        def __init__(self, conn):
            self.conn, self.dv = conn, 1

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA data_version"):
                return self.conn.execute(f"SELECT {self.dv}")
            return self.conn.execute(sql, *args)

    ds = shop.model().ds
    a, b = Counter(shop.shard.connect_read()), Counter(shop.shard.connect_read())
    w = L.LiveState()
    try:
        shop.events([view("p1", visitor="k", session="k", ts=T0)])
        w.sync(a)
        w.context(a, ds, "k", "k")
        b.dv = 7
        w.sync(b)                      # the warm start looks through b: nothing new
        shop.events([view("p3", visitor="k", session="k", ts=T0 + 100)])
        a.dv = 7                       # a's own counter moved on, to b's value by chance
        w.sync(a)
        assert w.context(a, ds, "k", "k")[0][0].product == "p3"
        _same(w.context(a, ds, "k", "k"), L.live_context(a.conn, ds, "k", "k"))
    finally:
        a.conn.close()
        b.conn.close()


def test_a_request_visits_once_and_sessions_switch(shop, reader):
    """A request's ``visit`` holds the visitor: its ``context`` does not visit again (one LRU touch,
    one hit); the context bound for one session answers another session's request exactly."""
    conn, ds = reader
    shop.events([view("p1", visitor="q", session="qa", ts=T0), engage("p1", 9000, visitor="q", session="qa", ts=T0 + 1),
                 view("p2", visitor="q", session="qb", ts=T0 + 2), buy("oq", ["p3"], visitor="q", session="qb", ts=T0 + 3)])
    w = L.LiveState()
    w.sync(conn)
    w.visit(conn, "q")
    hits, loads = w.hits, w.loads
    for s in ("qa", "qa", "qb", None, "", "qc", "qa"):
        w.visit(conn, "q")
        _same(w.context(conn, ds, "q", s), L.live_context(conn, ds, "q", s))
    assert (w.hits, w.loads) == (hits + 7, loads)
    w.visit(conn, "zz")  # another visitor's request (never seen: read)
    _same(w.context(conn, ds, "q", "qb"), L.live_context(conn, ds, "q", "qb"))  # without its visit: one
    assert (w.hits, w.loads) == (hits + 8, loads + 1) and next(reversed(w.visitors)) == "q"


def _dms_lock_held(shm_path) -> bool:
    """From another process: is the shared lock every SQLite connection holds on its ``-shm``
    file (the "DMS" byte, offset 128) held by someone? (An exclusive lock on it fails then.)"""
    import subprocess
    import sys
    code = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
            "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)\n    print('free')\n"
            "except OSError:\n    print('held')\n")
    out = subprocess.run([sys.executable, "-c", code, str(shm_path)], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "held"


def test_the_wal_index_descriptor_never_drops_sqlite_locks(tmp_path):
    """Closing any descriptor of a file drops all of the process's POSIX locks on it, SQLite's
    locks on the ``-shm`` file included (another process could then rebuild the WAL-index
    under this one's connections). The live state's descriptor (and its header's map, which
    holds another) is one per file and process, survives the LiveStates that read it, and is
    closed only once SQLite deleted the file; the map reads what ``pread`` reads."""
    import gc
    import os
    import sqlite3

    db = tmp_path / "s.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO events VALUES (1)")
    conn.commit()
    shm = f"{db}-shm"
    assert _dms_lock_held(shm)
    states = [L.LiveState(), L.LiveState()]
    for st in states:
        st.sync(conn)
    first = states[0].wal_index
    assert first is not None and states[1].wal_index is first   # one descriptor, shared
    del states, st
    gc.collect()                                                 # the LiveStates are gone ...
    assert _dms_lock_held(shm)                                   # ... and SQLite's lock is still held
    again = L.LiveState()
    again.sync(conn)
    assert again.wal_index is first and first.fd is not None

    conn.close()                                                 # the last connection: SQLite deletes -shm
    assert not os.path.exists(shm)
    conn = sqlite3.connect(db)
    conn.execute("SELECT count(*) FROM events").fetchone()       # a new -shm (another file)
    fresh = L.LiveState()
    fresh.sync(conn)
    assert fresh.wal_index is not first and first.fd is None and first.header is None   # the stale one was closed
    assert _dms_lock_held(shm)
    before = os.pread(fresh.wal_index.fd, L.WAL_INDEX_HEADER, 0)
    assert fresh.wal_index.header is not None and fresh.wal_index.header[:L.WAL_INDEX_HEADER] == before   # mapped
    conn.execute("INSERT INTO events VALUES (2)")
    conn.commit()
    after = os.pread(fresh.wal_index.fd, L.WAL_INDEX_HEADER, 0)
    assert after != before and fresh.wal_index.header[:L.WAL_INDEX_HEADER] == after   # the live file: commits show

    # what the test guards against: a second descriptor opened and closed drops the locks
    os.close(os.open(shm, os.O_RDONLY))
    assert not _dms_lock_held(shm)
    conn.close()


def test_a_wal_index_shorter_than_its_header_is_read_with_pread(tmp_path):
    """A ``-shm`` file shorter than the header when opened is not mapped (a map past a file's
    end faults): ``sync`` reads it with ``pread``, and ``close`` closes what is open."""
    import os
    path = tmp_path / "short-shm"
    path.write_bytes(b"\0" * 10)
    f = L._ShmFile(os.open(path, os.O_RDONLY))
    assert f.header is None and len(os.pread(f.fd, L.WAL_INDEX_HEADER, 0)) < L.WAL_INDEX_HEADER
    f.close()
    assert f.fd is None and f.header is None
    path.write_bytes(b"\1" * 4096)
    f = L._ShmFile(os.open(path, os.O_RDONLY))
    assert f.header[:L.WAL_INDEX_HEADER] == b"\1" * L.WAL_INDEX_HEADER
    f.close()
    assert f.fd is None and f.header is None
