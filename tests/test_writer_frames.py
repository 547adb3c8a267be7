"""The writer process's request reader (WriterService._serve_connection): frames cut anywhere by
the socket, several in one read, larger than its buffer, and a job it cannot unpickle, all read as
the worker wrote them (server/writer_client.py's wire format)."""
from __future__ import annotations

import functools
import pickle
import random
import socket
import threading

from server.config import Settings
from server.writer_client import REQUEST_HEADER, encode_request, parse_replies
from server.writer_service import WriterService


def _serve(tmp_path, chunks: list[bytes]) -> tuple[list, bytes]:
    """Send ``chunks`` one ``sendall`` each into a connection served by a WriterService; the
    frames it queued and what it answered directly."""
    service = WriterService(Settings.from_env(env={}, data_dir=tmp_path))
    queued: list = []
    service._queue_frame = lambda target, meta, jobs: queued.append((meta, jobs))
    ours, theirs = socket.socketpair()
    reader = threading.Thread(target=service._serve_connection, args=(theirs,))
    reader.start()
    for chunk in chunks:
        ours.sendall(chunk)
    ours.shutdown(socket.SHUT_WR)
    reader.join(timeout=30)
    assert not reader.is_alive()
    answered = b""
    while True:
        part = ours.recv(1 << 16)
        if not part:
            break
        answered += part
    ours.close()
    return queued, answered


def _frames(rng: random.Random, n: int) -> tuple[list[bytes], list]:
    frames, expect = [], []
    for i in range(n):
        size = rng.choice([0, 1, 10, 1000, 70_000, 300_000])  # some larger than the reader's 64 KiB buffer
        meta = [(i * 10 + k, f"shop{k}", k) for k in range(rng.randint(1, 3))]
        jobs = [functools.partial(bytes.fromhex, rng.randbytes(size).hex()) for _ in meta]
        frame, failed = encode_request(meta, jobs)
        assert not failed
        frames.append(frame)
        expect.append((meta, [(j.func, j.args) for j in jobs]))
    return frames, expect


def _seen(queued: list) -> list:
    return [(meta, [(j.func, j.args) for j in jobs]) for meta, jobs in queued]


def test_frames_cut_anywhere_are_read_whole_and_in_order(tmp_path):
    rng = random.Random(7)
    frames, expect = _frames(rng, 40)
    stream = b"".join(frames)
    chunks, i = [], 0
    while i < len(stream):
        n = rng.choice([1, 3, 7, 8, 9, 500, 4096, 65_536, 200_000])
        chunks.append(stream[i:i + n])
        i += n
    queued, answered = _serve(tmp_path, chunks)
    assert _seen(queued) == expect
    assert answered == b""


def test_many_frames_in_one_send_and_a_truncated_last_frame(tmp_path):
    frames, expect = _frames(random.Random(3), 12)
    stream = b"".join(frames)
    queued, _ = _serve(tmp_path, [stream + frames[0][:-1]])  # the last frame is cut short: dropped
    assert _seen(queued) == expect


def test_a_job_the_writer_cannot_unpickle_fails_alone(tmp_path):
    good, expect = _frames(random.Random(5), 2)
    meta = [(77, "shop", 1), (78, "shop", 1)]
    mb = pickle.dumps(meta, 5)
    jb = b"cno_such_module_for_writer_tests\nf\n."  # a global this process cannot import
    bad = REQUEST_HEADER.pack(len(mb), len(jb)) + mb + jb
    queued, answered = _serve(tmp_path, [good[0] + bad + good[1]])
    assert _seen(queued) == expect  # the frames around it are read as sent
    items, used = parse_replies(answered)
    assert used == len(answered)
    assert [(rid, ok) for rid, ok, _ in items] == [(77, False), (78, False)]
    assert all(isinstance(exc, ModuleNotFoundError) for _, _, exc in items)
