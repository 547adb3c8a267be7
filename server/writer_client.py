"""The serving side of the writer process (``server/writer_service.py``).

When ``Settings.sidecar("writer")`` (``funnelrec serve``), every shard's one writer runs in the
writer process and ``Shard.writer`` is a ``RemoteWriter``: the same interface as ``ShardWriter``
(``submit``, ``submit_async``, ``depth``, ``is_alive``, ``stop``), so callers do not change.
A job (a picklable callable ``job(conn)``) goes over a Unix socket; its answer (result or
exception, pickled) comes back after the COMMIT that holds it.

The IPC is batched both ways. On the event loop, the jobs submitted in one loop iteration are
sent as one frame (one pickle, one ``send``) by a callback scheduled with ``call_soon``, or as
soon as ``FRAME_MAX_JOBS`` are waiting; the
socket is read with ``loop.add_reader`` and futures are resolved on the loop itself (no thread
hop). The writer process answers all of one commit's jobs of one connection in one frame.
Threads (CLI, model builds, tests) use a second, blocking connection with a reader thread.

Wire format (both connections):
  request  ``<II`` (meta length, jobs length), pickle of ``[(request id, slug, generation), ...]``,
           pickle of ``[job, ...]`` (two pickles, so a job the writer cannot unpickle fails alone
           with its request ids known);
  reply    ``<I`` length, pickle of ``[(request id, ok, result or exception), ...]``.

If the writer process is gone (crashed, being restarted by the watchdog of
``server/sidecars.py``), pending and new jobs fail at once with ``WriterUnavailable`` (a 503 in
the API's error shape); the next job reconnects.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import pickle
import socket
import struct
import threading
from pathlib import Path

from .errors import ApiError

log = logging.getLogger("funnelrec.writer_client")

REQUEST_HEADER = struct.Struct("<II")
REPLY_HEADER = struct.Struct("<I")
PICKLE_PROTOCOL = 5
SOCKET_NAME = "writer.sock"
LOCK_NAME = "writer.lock"
# A frame goes out as soon as it holds this many jobs, not only at the end of the loop iteration:
# with 64 connections of 50-event requests, one frame per iteration made the loop and the writer
# take turns (one decoding a burst while the other idled). Measured, alternating runs of 50-event
# batches: 49-57k events/s with 8 against 32-49k with one frame per iteration.
FRAME_MAX_JOBS = 8


class WriterUnavailable(ApiError):
    """The writer process is not there (restarting): retry shortly."""

    def __init__(self, detail: str = ""):
        super().__init__(503, "writer_unavailable",
                         "the storage writer is restarting; retry in a moment" + (f" ({detail})" if detail else ""),
                         headers={"Retry-After": "1"})

    def __reduce__(self):
        return (type(self), ())


def socket_path(settings) -> Path:
    return Path(settings.run_dir()) / SOCKET_NAME


def unix_address(path: Path) -> tuple[str, int | None]:
    """An address for ``bind``/``connect``: the path itself, or, when it is longer than a Unix
    socket address may be (108 bytes), ``/proc/self/fd/<dir fd>/<name>`` (close the fd after)."""
    p = str(path)
    if len(os.fsencode(p)) < 100:
        return p, None
    fd = os.open(os.path.dirname(p), os.O_RDONLY | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{os.path.basename(p)}", fd


def connect(path: Path) -> socket.socket:
    addr, fd = unix_address(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(addr)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def encode_request(meta: list, jobs: list) -> tuple[bytes, list[tuple[int, Exception]]]:
    """One request frame; jobs that cannot be pickled are left out and returned with their error."""
    failed: list[tuple[int, Exception]] = []
    try:
        jb = pickle.dumps(jobs, PICKLE_PROTOCOL)
    except Exception:
        keep_meta, keep_jobs = [], []
        for m, job in zip(meta, jobs):
            try:
                pickle.dumps(job, PICKLE_PROTOCOL)
            except Exception as exc:
                failed.append((m[0], TypeError(f"a writer job must be picklable (module-level function or "
                                               f"functools.partial of one): {exc!r}")))
                continue
            keep_meta.append(m)
            keep_jobs.append(job)
        meta, jobs = keep_meta, keep_jobs
        jb = pickle.dumps(jobs, PICKLE_PROTOCOL)
    mb = pickle.dumps(meta, PICKLE_PROTOCOL)
    return REQUEST_HEADER.pack(len(mb), len(jb)) + mb + jb, failed


def encode_reply(items: list) -> bytes:
    """``[(request id, ok, value)]`` as one frame; an unpicklable result or exception is replaced
    by a RuntimeError naming it (the job's effect is committed either way)."""
    try:
        data = pickle.dumps(items, PICKLE_PROTOCOL)
    except Exception:
        safe = []
        for rid, ok, value in items:
            try:
                pickle.dumps(value, PICKLE_PROTOCOL)
            except Exception as exc:
                ok, value = False, RuntimeError(f"writer job {'result' if ok else 'error'} {value!r} "
                                                f"could not be sent back: {exc!r}")
            safe.append((rid, ok, value))
        data = pickle.dumps(safe, PICKLE_PROTOCOL)
    return REPLY_HEADER.pack(len(data)) + data


def parse_replies(data: bytes) -> tuple[list, int]:
    """The complete reply frames at the start of ``data`` (their items) and the bytes used."""
    out: list = []
    off = 0
    n = len(data)
    while n - off >= 4:
        (size,) = REPLY_HEADER.unpack_from(data, off)
        if n - off - 4 < size:
            break
        out.extend(pickle.loads(data[off + 4:off + 4 + size]))
        off += 4 + size
    return out, off


class RemoteWriter:
    """A shard's writer in the writer process, seen from here (the interface of ShardWriter)."""

    def __init__(self, client: "WriterClient", slug: str, generation: int):
        self.client = client
        self.slug = slug
        self.generation = generation
        self.inflight = 0  # this process's jobs of this shard not yet answered
        self._stopped = False

    def submit(self, job) -> concurrent.futures.Future:
        """For threads (and loop callbacks): a concurrent future resolved after the commit."""
        if self._stopped:
            fut: concurrent.futures.Future = concurrent.futures.Future()
            fut.set_exception(RuntimeError("shard writer is stopped"))
            return fut
        return self.client.submit(self, job)

    def submit_async(self, job) -> asyncio.Future:
        """For the event loop: sent with the other jobs of this loop iteration in one frame."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self._stopped:
            fut.set_exception(RuntimeError("shard writer is stopped"))
            return fut
        self.client.enqueue(loop, self, job, fut, True)
        return fut

    def depth(self) -> int:
        return self.inflight

    def is_alive(self) -> bool:
        return not self._stopped

    def start_and_wait(self) -> None:
        pass

    def stop(self) -> None:
        """Stop using this stand-in; jobs already sent are still answered."""
        self._stopped = True


class WriterClient:
    """One per process and writer socket: a connection for the event loop, one for threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._ids = itertools.count(1)
        # event-loop connection (only touched from its loop's thread)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._pending: dict[int, tuple] = {}  # request id -> (future, RemoteWriter, is_asyncio)
        self._meta: list = []
        self._jobs: list = []
        self._flush_scheduled = False
        self._rbuf = b""
        self._wbuf = bytearray()
        # thread connection
        self._tlock = threading.Lock()
        self._tsock: socket.socket | None = None
        self._tpending: dict[int, tuple] = {}

    def writer(self, slug: str, generation: int) -> RemoteWriter:
        return RemoteWriter(self, slug, generation)

    # -- the event loop's connection ---------------------------------------------------
    def enqueue(self, loop, writer: RemoteWriter, job, fut, is_async: bool) -> None:
        if self._sock is None or self._loop is not loop:
            try:
                self._connect_loop(loop)
            except OSError as exc:
                _fail(fut, is_async, WriterUnavailable(exc.strerror or repr(exc)))
                return
        rid = next(self._ids)
        self._pending[rid] = (fut, writer, is_async)
        writer.inflight += 1
        self._meta.append((rid, writer.slug, writer.generation))
        self._jobs.append(job)
        if len(self._meta) >= FRAME_MAX_JOBS:
            self._flush()  # the writer starts on these while the loop decodes the rest of the burst
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _connect_loop(self, loop) -> None:
        if self._sock is not None:
            self._lost(ConnectionError("event loop changed"))
        sock = connect(self.path)
        sock.setblocking(False)
        self._sock, self._loop = sock, loop
        self._rbuf = b""
        self._wbuf = bytearray()
        loop.add_reader(sock.fileno(), self._on_readable)

    def _flush(self) -> None:
        self._flush_scheduled = False
        meta, jobs = self._meta, self._jobs
        self._meta, self._jobs = [], []
        if not meta:
            return
        if self._sock is None:
            self._fail_ids([m[0] for m in meta], WriterUnavailable())
            return
        frame, failed = encode_request(meta, jobs)
        for rid, exc in failed:
            self._answer(rid, False, exc)
        if len(failed) == len(meta):
            return
        if self._wbuf:
            self._wbuf += frame
            return
        try:
            sent = self._sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(frame):
            self._wbuf += frame[sent:]
            self._loop.add_writer(self._sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self._sock.send(self._wbuf)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._wbuf[:sent]
        if not self._wbuf:
            self._loop.remove_writer(self._sock.fileno())

    def _on_readable(self) -> None:
        try:
            chunk = self._sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not chunk:
            self._lost(ConnectionError("the writer process closed the connection"))
            return
        data = self._rbuf + chunk if self._rbuf else chunk
        items, used = parse_replies(data)
        self._rbuf = data[used:]
        for rid, ok, value in items:
            self._answer(rid, ok, value)

    def _answer(self, rid: int, ok: bool, value) -> None:
        entry = self._pending.pop(rid, None)
        if entry is None:
            return
        fut, writer, is_async = entry
        writer.inflight -= 1
        if is_async:
            if not fut.done():  # cancelled: the client went away
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
        elif fut.set_running_or_notify_cancel():
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _fail_ids(self, ids, exc: Exception) -> None:
        for rid in ids:
            self._answer(rid, False, exc)

    def _lost(self, exc: BaseException) -> None:
        """The connection broke: every job sent or queued on it fails with WriterUnavailable
        (committed or not is unknown; the API's writes are idempotent, so clients retry)."""
        sock, loop = self._sock, self._loop
        self._sock = None
        if sock is not None:
            log.error("writer process connection lost", extra={"error": repr(exc)})
            if loop is not None and not loop.is_closed():
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
            sock.close()
        self._meta, self._jobs = [], []
        self._rbuf = b""
        self._wbuf = bytearray()
        self._fail_ids(list(self._pending), WriterUnavailable())

    # -- threads -----------------------------------------------------------------------
    def submit(self, writer: RemoteWriter, job) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:  # a callback on an event loop: join that loop's next frame
            self.enqueue(loop, writer, job, fut, False)
            return fut
        with self._tlock:
            try:
                if self._tsock is None:
                    self._tsock = connect(self.path)
                    threading.Thread(target=self._read_thread, args=(self._tsock,), name="writer-client",
                                     daemon=True).start()
            except OSError as exc:
                fut.set_exception(WriterUnavailable(exc.strerror or repr(exc)))
                return fut
            rid = next(self._ids)
            frame, failed = encode_request([(rid, writer.slug, writer.generation)], [job])
            if failed:
                fut.set_exception(failed[0][1])
                return fut
            self._tpending[rid] = (fut, writer)
            writer.inflight += 1
            try:
                self._tsock.sendall(frame)
            except OSError:
                self._tlost(self._tsock)
        return fut

    def _read_thread(self, sock: socket.socket) -> None:
        data = b""
        try:
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data = data + chunk if data else chunk
                items, used = parse_replies(data)
                data = data[used:]
                for rid, ok, value in items:
                    with self._tlock:
                        entry = self._tpending.pop(rid, None)
                    if entry is None:
                        continue
                    fut, writer = entry
                    writer.inflight -= 1
                    if fut.set_running_or_notify_cancel():
                        if ok:
                            fut.set_result(value)
                        else:
                            fut.set_exception(value)
        except OSError:
            pass
        with self._tlock:
            self._tlost(sock)
        sock.close()

    def _tlost(self, sock) -> None:  # holding _tlock
        if self._tsock is sock:
            self._tsock = None
            pending, self._tpending = self._tpending, {}
            with_exc = WriterUnavailable()
            for fut, writer in pending.values():
                writer.inflight -= 1
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(with_exc)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _fail(fut, is_async: bool, exc: Exception) -> None:
    if is_async:
        fut.set_exception(exc)
    elif fut.set_running_or_notify_cancel():
        fut.set_exception(exc)


_clients: dict[str, WriterClient] = {}
_clients_lock = threading.Lock()


def client_for(settings) -> WriterClient:
    """This process's client of the writer process of ``settings.data_dir``."""
    path = str(socket_path(settings))
    client = _clients.get(path)
    if client is None:
        with _clients_lock:
            client = _clients.setdefault(path, WriterClient(Path(path)))
    return client
