"""The live part of a recommendation request: the visitor's latest product interactions and
purchases, as the shard holds them this instant.

``live_context(conn, ds, visitor, session)`` reads them with SQL (the reference). Per request
that cost ~110 µs (p99 ~600 µs) for a returning customer, so each worker keeps them in memory
(``LiveState``, one per open shard), exact and shared through the shard:

- ``LiveState.sync(conn)``: when the shard changed (any process's commit), the events stored
  since the last ``seq`` seen are read (product events and purchases, in ``seq`` order: one
  writer per shard commits them in that order) and applied to the visitors held in memory. So
  an event stored by any worker shapes the very next request. Whether it changed: the header
  of the shard's WAL-index (its ``-shm`` file, shared by every process; each commit changes it,
  https://www.sqlite.org/walformat.html), read from a read-only map of it, no system call (a
  ``PRAGMA data_version`` cost ~15 µs a request in the server, a ``pread`` ~1-2.5; a ``pread``
  where the file was too short to map: ``_ShmFile``); ``PRAGMA data_version`` where there is
  no such file;
- a visitor not in memory is read once with the reference SQL; the tail then skips its events
  up to the highest ``seq`` that read saw;
- at most ``max_visitors`` visitors are held (least recently used go); a jump of more than
  ``TAIL_MAX`` events (an import) forgets them all: they are read again on their next request;
  so does a privacy erasure (``privacy.erase`` counts them in the shard's ``meta``, read when
  the shard changed), so that an erased visitor's events leave every worker's memory at once;
- warm start (``preload``): when a worker opens a shard, the visitors of its last
  ``live_preload_events`` events are read in the background, a few between requests, so a
  restarted worker does not meet its active visitors cold.
Each visitor keeps what the SQL would return: its newest ``RECENT_EVENTS`` product events by
time and newest ``RECENT_LINES`` purchase lines. A purchase seen by the tail counts from its
event (an order sent twice under two event ids counts from its newest copy; ``order_lines``
keeps the first: the products are the same).
"""
from __future__ import annotations

import functools
import itertools
import mmap
import operator
import os
import sqlite3
import threading
from collections import OrderedDict
from itertools import repeat

import msgspec
import numpy as np

from .recommenders.base import Bought, Recent, RecentList, walk_columns
from .signals import CART, PURCHASE, REMOVE, REVIEW, VIEW
from .signals.weights import DEFAULT as SIGNALS

RECENT_EVENTS = 60
RECENT_LINES = 100
TAIL_MAX = 20_000

_LIVE_SQL = ("SELECT type, product, ts, session, CASE WHEN type='engagement' THEN json_extract(data,'$.engaged_ms') END,"
             " CASE WHEN type='engagement' THEN json_extract(data,'$.scroll_pct') END,"
             " CASE WHEN type='engagement' THEN coalesce(json_extract(data,'$.content_ms.description'),0)"
             " + coalesce(json_extract(data,'$.content_ms.reviews'),0) + coalesce(json_extract(data,'$.content_ms.images'),0) END,"
             " seq FROM events WHERE visitor=? AND product IS NOT NULL ORDER BY ts DESC, seq DESC LIMIT ?")
# the orders below are the indexes' own (visitor, ts, then the row's key): no sort step
_LINES_SQL = "SELECT product, ts, order_id FROM order_lines WHERE visitor=? ORDER BY ts DESC, order_id DESC, product DESC LIMIT ?"
_TAIL_SQL = ("SELECT seq, visitor, type, product, ts, session, data FROM events"
             " WHERE seq > ? AND (product IS NOT NULL OR type = 'purchase') ORDER BY seq LIMIT ?")
_ERASURES_SQL = "SELECT value FROM meta WHERE key = 'erasures'"
_UNSEEN = object()   # (``LiveState.erasures`` before the first sync)
WAL_INDEX_HEADER = 96  # bytes: the WAL-index header, held twice (a writer changes one, then the other)
_KIND = {"page_view": VIEW, "engagement": VIEW, "rec_click": VIEW, "add_to_cart": CART,
         "remove_from_cart": REMOVE, "review": REVIEW}
_decode = msgspec.json.decode
_TYPE_WEIGHT = {kind: SIGNALS.type_weight(kind) for kind in set(_KIND.values())}   # (a frozen config)


def _factor(engaged: float, scroll: float, usual: float, content: float = 0.0) -> float:
    """``signals.engagement_factor`` for one view (scalar: no numpy call per request)."""
    cfg = SIGNALS
    if engaged < cfg.bounce_ms:
        return cfg.bounce_factor
    f = 0.5 + 0.5 * min(engaged / max(usual, cfg.bounce_ms), cfg.rel_cap)
    f *= 1.0 + cfg.scroll_bonus * min(max(scroll, 0.0), 100.0) / 100.0
    f *= 1.0 + cfg.content_bonus * min(max(content / max(engaged, 1.0), 0.0), 1.0)
    return min(f, cfg.max_factor)


def read_rows(conn: sqlite3.Connection, visitor: str) -> tuple[list[tuple], list[tuple], int]:
    """The visitor's newest product events (ts desc: type, product, ts, session, engaged ms,
    scroll %, content ms, seq), newest purchase lines (product, ts, order) and the highest seq read."""
    rows = conn.execute(_LIVE_SQL, (visitor, RECENT_EVENTS)).fetchall()
    lines = conn.execute(_LINES_SQL, (visitor, RECENT_LINES)).fetchall()
    return rows, lines, max((r[7] for r in rows), default=0)


def derive(rows, lines, ds, session: str | None) -> tuple[list[Recent], dict[str, int], int]:
    """(recent interactions newest first, purchases product -> newest ts, newest ts)."""
    entries, bought, newest = _digest(rows, lines)
    return list(map(_recent, _bind(entries, ds, session))), bought, newest


def _digest(rows, lines) -> tuple:
    """What ``derive`` returns that depends neither on the model nor on the session, made of
    tuples and atoms (a visitor's state keeps it) but ``bought``: ``(entries, bought, newest)``. ``entries``:
    one per recent interaction, in ``derive``'s order: (product, kind, ts, signal weight before
    engagement, the sessions it happened in, (engaged ms, max scroll, content ms) of a measured
    view else None); ``bought``: {product: newest ts} of the purchases, newest first (a dict of
    strings and ints, which the cyclic GC does not track)."""
    entries, newest = _digest_rows(rows)
    bought, purchases, newest_bought = _digest_lines(lines)
    return _merged(entries, purchases), bought, max(newest, newest_bought)


def _digest_rows(rows) -> tuple[list, int]:
    """``_digest``'s part of the product events: (their entries, aggregated, newest ts or 0)."""
    agg: dict[tuple[str, int], list] = {}
    newest = 0
    for row in rows:
        etype, product, ts, sess, engaged, scroll, content = row[:7]
        kind = _KIND.get(etype)
        if kind is None:
            continue
        newest = max(newest, ts)
        key = (product, kind)
        a = agg.get(key)
        if a is None:
            # ts of newest, sessions, engaged ms (None: unmeasured), max scroll, content ms
            a = agg[key] = [ts, [], None, 0.0, 0.0]
        if sess not in a[1]:
            a[1].append(sess)
        if engaged is not None:
            a[2] = (a[2] or 0) + engaged
            a[3] = max(a[3], scroll or 0.0)
            a[4] += content or 0
    return [(product, kind, ts, _TYPE_WEIGHT[kind], tuple(sessions),
             (engaged, scroll, content) if kind == VIEW and engaged is not None else None)
            for (product, kind), (ts, sessions, engaged, scroll, content) in agg.items()], newest


def _digest_lines(lines) -> tuple[dict, tuple, int]:
    """``_digest``'s part of the purchase lines: (bought, the entries of the latest 20
    purchases, the newest ts or 0)."""
    bought: dict[str, int] = {}
    for p, ts, _ in lines:
        if p not in bought:
            bought[p] = ts
    w = SIGNALS.purchase   # the latest purchases count as recent interactions
    return (bought, tuple([(p, PURCHASE, ts, w, (), None) for p, ts in itertools.islice(bought.items(), 20)]),
            max(bought.values(), default=0))


def _merged(entries: list, purchases: tuple) -> tuple:
    """The events' entries, then the purchases', newest first (a stable sort: as by -ts)."""
    entries += purchases
    entries.sort(key=_TS, reverse=True)
    return tuple(entries)


_TS = operator.itemgetter(2)
_recent = functools.partial(tuple.__new__, Recent)  # Recent(*t) without its Python-level __new__, in C
_NO_SESSION = object()      # in no interaction's sessions


def _bind(entries: tuple, ds, session: str | None) -> tuple[tuple, ...]:
    """``_digest``'s entries for the model ``ds`` and the request's ``session``: the fields of
    its ``Recent`` interactions as plain tuples (which the cyclic GC untracks: a named tuple it
    never does), a view's weight by its engagement against the product's usual engaged time."""
    item = ds.item_index.get if ds is not None else {}.get   # (no model: every product unknown)
    usual = ds.usual_engaged_ms if ds is not None else None
    n_usual = len(usual) if usual is not None else 0
    ids, indices = _model_objects(ds) if ds is not None else (None, None)
    s = session or _NO_SESSION
    out = []
    for product, kind, ts, w, sessions, eng in entries:
        i = item(product, -1)
        if eng is not None:
            w *= _factor(eng[0], eng[1], float(usual[i]) if 0 <= i < n_usual else 30_000.0, eng[2])
        if i >= 0:   # the model's objects of this product (equal): see ``_model_objects``
            product, i = ids[i], indices[i]
        out.append((product, i, kind, ts, w, s in sessions))
    return tuple(out)


def binds_alike(old, new) -> bool:
    """Whether ``_bind`` gives the same fields with the model ``new`` as with ``old``: what it
    reads of a model is each product's index (``item_ids``, in order) and its usual engaged
    time. Then a state bound to ``old`` is ``new``'s as it is, and a model change need not
    bind every returning visitor again (~40 µs each: a rebuild on unchanged data, as the
    builder's first build after a restart makes; any change of the catalog's products or their
    usual times binds all anew). Compared once per model change (~0.1 ms for 4,000 products)."""
    if old is None or new is None:
        return False
    if old.item_ids != new.item_ids:
        return False
    a, b = old.usual_engaged_ms, new.usual_engaged_ms
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def _model_objects(ds) -> tuple[list, tuple]:
    """Per model: its product ids and one int object per item index (a tuple of ints: the cyclic
    GC untracks it). A bound interaction holds these rather than its own copies (the same
    values): every visitor holding a product shares them, which saves memory, and a request's
    ``Recent`` list (``_recent_list``, which touches each field it copies) finds a popular
    product's fields warm in the CPU caches."""
    return ds.derived("_live_model_objects", lambda ds: (ds.item_ids, tuple(range(ds.n_items))))


def _bind_model(entries: tuple, ds, session: str | None) -> tuple:
    """``_digest``'s entries bound to the model ``ds`` once, for any session:
    ``(session, bound, flips, columns)``, ``bound`` being ``_bind(entries, ds, session)`` for the session
    of the state's newest event (``_newest_session``: a visitor's request is most often in the
    session of the page view it has just sent, whose list is then ``bound`` as it is),
    ``flips`` ((position, sessions, its fields with ``in_session`` the other way), ...) of the
    entries that happened in some session: only those may differ for another session
    (``_recent_list``), and ``columns`` what the session walk reads of ``bound``
    (``base.walk_columns``: a request in that session takes its seed views from them in
    compiled calls, ``Context.session_vectors``). A state holds the four flat, beside its
    ``ds_serial`` (a nested tuple stays tracked by the cyclic GC a collection longer; an
    array is not tracked)."""
    bound = _bind(entries, ds, session)
    return (session, bound, tuple([(j, e[4], (*bound[j][:5], not bound[j][5])) for j, e in enumerate(entries) if e[4]]),
            walk_columns(bound))


def _newest_session(rows: tuple) -> str | None:
    """The session of a visitor's newest product event (``rows`` newest first), None if none."""
    return (rows[0][3] or None) if rows else None


_new_tuple = tuple.__new__


def _recent_list(bound_session: str | None, fields: tuple, flips: tuple, columns, session: str | None) -> list:
    """``list(map(_recent, _bind(entries, ds, session)))`` from ``_bind_model(entries, ds, s)``:
    the request's ``Recent`` interactions, made in C: for the session ``s``, a ``RecentList`` of
    the bound tuples (each made a ``Recent`` when read) with the bound ``columns``; for another
    session a list, the entries whose ``in_session`` differs replaced."""
    session = session or None
    if session == bound_session:
        out = RecentList(fields)   # (the bound tuples: ``Recent`` made only of those read)
        out.columns, out.size, out.views = columns, len(fields), {}
        return out
    out = list(map(_new_tuple, repeat(Recent), fields))
    s = session or _NO_SESSION
    for j, sessions, flipped in flips:
        if (s in sessions) is not fields[j][5]:
            out[j] = _new_tuple(Recent, flipped)
    return out


def live_context(conn: sqlite3.Connection, ds, visitor: str | None, session: str | None) -> tuple[list[Recent], dict[str, int], int]:
    """This visitor's latest product interactions (newest first), purchases, newest ts: SQL."""
    if not visitor:
        return [], {}, 0
    rows, lines, _ = read_rows(conn, visitor)
    return derive(rows, lines, ds, session)


_serials = itertools.count(1)


class LiveState:
    """One shard's live visitors in one process (see the module docstring).

    A visitor's state is one tuple ``(rows, lines, seq, key, digest, bound)`` of tuples and
    atoms, replaced (not changed) by each new event: Python's cyclic GC untracks such tuples, so
    50,000 held visitors add nothing to its scans (a full collection over mutable per-visitor
    objects paused requests for ~70 ms). ``rows``/``lines`` are newest first (at most
    RECENT_EVENTS / RECENT_LINES), ``seq`` the highest event already in them, ``key`` what a
    result cache keys on: unique per process, new after every change, ``()`` for a visitor
    without history. ``digest`` is their ``_digest`` (entries, newest ts) and what it was made
    of (rows, lines, the purchases' entries and newest ts: the first request after events
    makes it anew, keeping the purchases' part while the lines are the same; its purchases
    dict is held beside, in ``bought``: a dict in the tuple would keep it tracked); ``bound``
    is (``ds_serial``, ``_bind_model`` of the entries: bound to that model for any session,
    ready as it is for the session of the newest event), so that a request only makes its ``Recent`` list of them (``_recent_list``) and
    takes a read-only view of its purchases (``Bought``). Both are made on a read (bound to the model of the last request)
    and by the first request after an event (``bound`` None until then: every worker applies
    every event, and a visitor may send several between two requests); a request with another
    model binds anew."""

    def __init__(self, max_visitors: int = 50_000):
        self.max_visitors = max_visitors
        self.visitors: "OrderedDict[str, tuple]" = OrderedDict()
        self.bought: dict[str, dict] = {}   # per visitor with a digest: its ``_digest``'s ``bought``
        self.seq: int | None = None
        self.ds, self.ds_serial = None, 0  # the model of the last request; new serial: a new model
        self.wal_index = None  # the shard's -shm file (a shared ``_ShmFile``), None: not in WAL mode
        self.looks: dict[int, bytes | int] = {}  # per connection: what sync last saw (data_version is per connection)
        self.erasures = _UNSEEN   # the shard's count of privacy erasures (``privacy.erase``) last seen
        self.loads = self.hits = self.tail_rows = 0
        self._visited = None  # the visitor of the last ``visit``

    def sync(self, conn: sqlite3.Connection) -> None:
        if self.seq is None and self.wal_index is None:
            self.wal_index = _wal_index(conn)
        shm = self.wal_index
        if shm is None:
            look = b""
        elif shm.header is not None:   # (the mapped header: no system call)
            look = shm.header[:WAL_INDEX_HEADER]
        else:
            look = os.pread(shm.fd, WAL_INDEX_HEADER, 0) if shm.fd is not None else b""
        if len(look) < WAL_INDEX_HEADER:  # no WAL-index (or one being made anew): ask SQLite
            look = conn.execute("PRAGMA data_version").fetchone()[0]
        if self.looks.get(id(conn)) == look and self.seq is not None:
            return  # nothing committed since this connection last looked
        self.looks[id(conn)] = look
        # an erasure (``privacy.erase``, any process) deleted some visitor's rows: what is held is
        # forgotten, each visitor read again on its next request (a new key: no cached answer
        # made of the erased rows is served again); read only when the shard changed
        try:
            erasures = conn.execute(_ERASURES_SQL).fetchone()
        except sqlite3.OperationalError:   # (a database without the shard schema's ``meta``)
            erasures = None
        if erasures != self.erasures:
            if self.erasures is not _UNSEEN:
                self.visitors.clear()
                self.bought.clear()
            self.erasures = erasures
        if self.seq is None:
            self.seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return
        rows = conn.execute(_TAIL_SQL, (self.seq, TAIL_MAX + 1)).fetchall()
        if len(rows) > TAIL_MAX:  # a bulk import: start over from the end
            self.visitors.clear()
            self.bought.clear()
            self.seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            return
        if rows:
            self.seq = rows[-1][0]
            self.tail_rows += len(rows)
            visitors = self.visitors
            for row in rows:
                v = visitors.get(row[1])
                if v is not None and row[0] > v[2]:
                    visitors[row[1]] = _apply(v, row)

    async def preload(self, conn: sqlite3.Connection, events: int, chunk: int = 25) -> int:
        """Warm start: read the visitors of the shard's last ``events`` events (newest first,
        up to ``max_visitors``) the way a first request would, a few at a time between requests
        (each read is exact: the tail is synced first, as in a request). Returns how many."""
        import asyncio

        if events <= 0:
            return 0
        self.sync(conn)
        top = self.seq or 0
        order: dict[str, None] = {}
        hi = top
        while hi > max(top - events, 0) and len(order) < self.max_visitors:
            lo = max(hi - 10_000, top - events, 0)
            for (v,) in conn.execute("SELECT visitor FROM events WHERE seq > ? AND seq <= ? ORDER BY seq DESC", (lo, hi)):
                order.setdefault(v, None)
            hi = lo
            await asyncio.sleep(0)
        todo = [v for v in order if v not in self.visitors][:max(self.max_visitors - len(self.visitors), 0)]
        loaded = 0
        for i in range(0, len(todo), chunk):
            self.sync(conn)
            for v in todo[i:i + chunk]:
                if v not in self.visitors:
                    self.visitors[v], self.bought[v] = _read_state(conn, v, self.ds, self.ds_serial)
                    self.visitors.move_to_end(v, last=False)  # older than any visitor a request asked for
                    loaded += 1
            await asyncio.sleep(0)
        return loaded

    def visit(self, conn: sqlite3.Connection, visitor: str | None) -> tuple:
        """Hold ``visitor``'s state (read from the shard when not held; call ``sync`` first in
        the same request) and return its key: what a result cache keys on (new after each of the
        visitor's events; ``()`` for a visitor without any, so all new visitors share cached
        answers), known before deciding whether ``context`` must be built at all."""
        if not visitor:
            return ()
        self._visited = visitor
        v = self.visitors.get(visitor)
        if v is None:
            v, self.bought[visitor] = _read_state(conn, visitor, self.ds, self.ds_serial)
            self.visitors[visitor] = v
            self.loads += 1
            if len(self.visitors) > self.max_visitors:
                self.bought.pop(self.visitors.popitem(last=False)[0], None)
        else:
            self.visitors.move_to_end(visitor)
            self.hits += 1
        return v[3]

    def context(self, conn: sqlite3.Connection, ds, visitor: str | None, session: str | None):
        """``live_context`` from memory (call ``sync`` first in the same request; after ``visit``
        of the same visitor, it is not visited again)."""
        if not visitor:
            return [], {}, 0
        # the request's ``visit`` of this visitor has held it already: not twice
        v = self.visitors.get(visitor) if visitor == self._visited else None
        if v is None:
            self.visit(conn, visitor)
            v = self.visitors[visitor]
        if ds is not self.ds:   # a model other than the last request's: bindings to the old one serve
            if not binds_alike(self.ds, ds):   # only while it binds every product alike
                self.ds_serial = next(_serials)
            self.ds = ds
        b = v[5]
        if b is None or b[0] != self.ds_serial:
            digest = v[4]
            if digest is None or digest[2] is not v[0] or digest[3] is not v[1]:   # events since
                digest = self._digest(visitor, v)
            b = (self.ds_serial, *_bind_model(digest[0], ds, _newest_session(v[0])))
            v = self.visitors[visitor] = (*v[:4], digest, b)
        # the purchases as a read-only view of the held dict (not a copy), with their newest ts (the digest's)
        return _recent_list(b[1], b[2], b[3], b[4], session), Bought(self.bought[visitor], v[4][5]), v[4][1]

    def _digest(self, visitor: str, v: tuple) -> tuple:
        """The state ``v``'s digest anew after events (see ``_state_digest``)."""
        digest, bought = _state_digest(v[0], v[1], v[4])
        if bought is not None:
            self.bought[visitor] = bought
        return digest


class _ShmFile:
    """A read-only descriptor of one ``-shm`` file (see ``_wal_index``); ``fd`` None once closed.

    ``header``: the file's WAL-index header mapped read-only (``mmap``, shared with SQLite's own
    map of it), so that ``LiveState.sync`` reads it without a system call (a ``pread`` cost
    ~1-2.5 µs a request); None when the file was shorter than the header then (``pread`` is
    used). Reading a shared map is what a ``pread`` of it reads (the same page-cache page). A
    map of a page past the file's end faults (SIGBUS), but SQLite never makes a ``-shm``
    shorter than one page while a connection has it open (the first connection to open a file
    cuts it to 3 bytes, not 0; ``unixLockSharedMemory``), and this process keeps one open (see
    ``_wal_index``). The map holds a duplicate descriptor of the file (``mmap`` makes one), so
    it is closed with ``fd``, under the same rule."""
    __slots__ = ("fd", "dev", "ino", "header")

    def __init__(self, fd: int):
        st = os.fstat(fd)
        self.fd, self.dev, self.ino = fd, st.st_dev, st.st_ino
        self.header = None
        if st.st_size >= WAL_INDEX_HEADER:
            try:
                self.header = mmap.mmap(fd, WAL_INDEX_HEADER, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        """Closes the descriptor and the map (see ``_wal_index``: only once the file is not the shard's)."""
        header, fd, self.header, self.fd = self.header, self.fd, None, None
        if header is not None:
            header.close()
        os.close(fd)


_SHM: dict[str, _ShmFile] = {}   # -shm path -> this process's one descriptor of it
_SHM_LOCK = threading.Lock()


def _wal_index(conn: sqlite3.Connection) -> _ShmFile | None:
    """The shard's WAL-index file opened for reading, or None (not in WAL mode, no file). It
    stays the shard's own while a connection of this process keeps the shard open (SQLite
    deletes it when the last one closes): the engine's request connection does.

    Closing any descriptor of a file drops every POSIX lock this process holds on it, and
    SQLite's connections lock the ``-shm`` file (https://www.sqlite.org/howtocorrupt.html,
    2.2): so a descriptor is opened once per file and process, shared, and closed only once its
    path names another file or none (every connection closed, SQLite deleted it: none of this
    process's locks can be on it), when the next one is opened."""
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            return None
        path = conn.execute("PRAGMA database_list").fetchone()[2] + "-shm"
        with _SHM_LOCK:
            for p, f in list(_SHM.items()):   # the files deleted or replaced since: their descriptors go
                try:
                    st = os.stat(p)
                    live = (st.st_dev, st.st_ino) == (f.dev, f.ino)
                except OSError:
                    live = False
                if not live:
                    del _SHM[p]
                    f.close()
            f = _SHM.get(path)
            if f is None:
                f = _SHM[path] = _ShmFile(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            return f
    except OSError:
        return None


def _read_state(conn: sqlite3.Connection, visitor: str, ds, ds_serial: int) -> tuple[tuple, dict]:
    """A visitor's state read with the reference SQL, (rows, lines, seq, key, digest, bound) bound
    to the model ``ds`` (``ds_serial``: see ``LiveState``) as its request will want it, and its
    purchases (``_digest``'s ``bought``)."""
    rows, lines, seq = read_rows(conn, visitor)
    rows, lines = tuple(rows), tuple(lines)
    digest, bought = _state_digest(rows, lines)
    return (rows, lines, seq, (next(_serials),) if (rows or lines) else (), digest,
            (ds_serial, *_bind_model(digest[0], ds, _newest_session(rows)))), bought


def _state_digest(rows: tuple, lines: tuple, old: tuple | None = None) -> tuple[tuple, dict | None]:
    """A held state's digest of its ``rows`` and ``lines``: ((entries, newest ts, rows, lines,
    the purchases' entries, their newest ts), bought) as ``_digest`` makes them; with ``old``,
    the digest of an earlier state, its purchases' part is kept when made of the same lines (a
    view or a cart changes no line), and ``bought`` is then None (unchanged)."""
    entries, newest = _digest_rows(rows)
    if old is not None and old[3] is lines:
        bought, purchases, newest_bought = None, old[4], old[5]
    else:
        bought, purchases, newest_bought = _digest_lines(lines)
    return (_merged(entries, purchases), max(newest, newest_bought), rows, lines, purchases, newest_bought), bought


def _apply(v: tuple, row: tuple) -> tuple:
    """The visitor's state ``v`` with one more event (a tail row), not yet digested."""
    seq, _, etype, product, ts, session, data = row
    rows, lines = v[0], v[1]
    if etype == "purchase":
        try:
            d = _decode(data)
            new_lines, order = d.get("lines") or [], d.get("order", "")
        except (msgspec.DecodeError, AttributeError):
            new_lines, order = [], ""
        for line in new_lines:
            if isinstance(line, dict) and line.get("product"):
                lines = _insert(lines, (line["product"], ts, order), RECENT_LINES, _line_key)
    elif product is not None:
        engaged = scroll = content = None
        if etype == "engagement":
            try:
                d = _decode(data)
            except msgspec.DecodeError:
                d = {}
            engaged, scroll = d.get("engaged_ms"), d.get("scroll_pct")
            c = d.get("content_ms") or {}
            content = (c.get("description") or 0) + (c.get("reviews") or 0) + (c.get("images") or 0) if isinstance(c, dict) else 0
        rows = _insert(rows, (etype, product, ts, session, engaged, scroll, content, seq), RECENT_EVENTS, _row_key)
    return rows, lines, seq, (next(_serials),), v[4], None   # (the old digest: see ``LiveState._digest``)


def _row_key(r: tuple) -> tuple:
    return r[2], r[7]             # ts, seq: the SQL's order


def _line_key(r: tuple) -> tuple:
    return r[1], r[2], r[0]       # ts, order, product: the SQL's order


def _insert(items: tuple, item: tuple, cap: int, key) -> tuple:
    """``items`` (sorted by ``key`` descending) with ``item`` in its place, capped; unchanged
    if already held (an order's line sent twice)."""
    k_new = key(item)
    k = 0
    n = len(items)
    while k < n:
        k_old = key(items[k])
        if k_old == k_new:
            return items
        if k_old < k_new:
            break
        k += 1
    return (items[:k] + (item,) + items[k:])[:cap]
