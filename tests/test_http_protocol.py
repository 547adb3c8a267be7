"""``funnelrec serve``'s HTTP protocol (server/workers.py): each response head is held until its
body and written with it (one ``write``), never lost, never reordered, never held past the
event loop's pass; the server answers with it as before (a real uvicorn on a free port)."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from server import workers


class FakeTransport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False
        self.reading = True

    def write(self, data):
        assert not self.closed
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name in ("sockname", "peername") else default


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def test_a_head_goes_out_with_its_body():
    async def go():
        t = FakeTransport()
        w = workers._OneWriteTransport(t, asyncio.get_running_loop())
        w.write(HEAD)
        assert t.writes == []                       # held
        w.write(b"hello")
        assert t.writes == [HEAD + b"hello"]        # one write
        w.write(b"more")                            # not a head: at once
        assert t.writes[-1] == b"more"
        await asyncio.sleep(0)
        assert len(t.writes) == 2                   # nothing left behind
    asyncio.run(go())


def test_a_head_alone_leaves_by_the_end_of_the_loop_pass_and_before_close():
    async def go():
        loop = asyncio.get_running_loop()
        t = FakeTransport()
        w = workers._OneWriteTransport(t, loop)
        w.write(HEAD)                               # a streaming response: its body comes later
        await asyncio.sleep(0)
        assert t.writes == [HEAD]
        w.write(b"chunk")
        assert t.writes == [HEAD, b"chunk"]
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")   # held too, then closed: written first
        w.close()
        assert t.writes[-1] == b"HTTP/1.1 100 Continue\r\n\r\n" and t.closed
        await asyncio.sleep(0)
        assert len(t.writes) == 3                   # the pending flush finds nothing
        w.pause_reading()
        assert not t.reading and w.get_extra_info("peername") == ("127.0.0.1", 1) and w.is_closing()
    asyncio.run(go())


@pytest.mark.skipif(workers.HttpProtocol is None, reason="no httptools")
def test_uvicorn_serves_with_it_one_write_a_response():
    """A real uvicorn with ``HttpProtocol``: keep-alive requests answered whole, each response
    one ``write`` on the socket's transport."""
    import uvicorn

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = json.dumps({"path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    writes: list[bytes] = []

    class Recorder:  # the socket's transport, counting its writes
        def __init__(self, transport):
            self._t = transport

        def write(self, data):
            writes.append(bytes(data))
            self._t.write(data)

        def __getattr__(self, name):
            return getattr(self._t, name)

    class Counting(workers.HttpProtocol):
        def connection_made(self, transport):
            super().connection_made(Recorder(transport))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", http=Counting)
    server = uvicorn.Server(config)
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k in range(5):
            c.sendall(f"GET /p{k} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            time.sleep(0.05)                        # the whole response is there by now
            data = c.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and json.loads(body) == {"path": f"/p{k}"}
            assert writes[-1] == data and len(writes) == k + 1   # one write: head and body
        c.close()
    finally:
        server.should_exit = True
        th.join(10)
