"""The processes ``funnelrec serve`` runs beside its uvicorn workers.

- ``writer`` (``server/writer_service.py``): the one writer of every shard, for all workers;
- ``builder`` (``server/builder.py``): model builds and ranker training, off the serving GIL.

Each is ``python -m <module> --data-dir DIR --ready-fd N``: it reports readiness by writing a
line to fd N, then serves until its parent dies (``PR_SET_PDEATHSIG``: a ``kill -9`` of the
server takes its sidecars with it, so a restart never meets a stale one) or gets SIGTERM.
The workers learn which sidecars run from ``FUNNELREC_SIDECARS`` (``Settings.sidecar``).
A sidecar whose mode is ``thread`` (``FUNNELREC_WRITER_MODE`` / ``FUNNELREC_BUILDER_MODE``)
is not started; its work then runs in a thread of each serving process.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Iterator

log = logging.getLogger("funnelrec.sidecars")

SIDECARS = {"writer": "server.writer_service", "builder": "server.builder"}
READY_TIMEOUT_S = 60.0


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux ``PR_SET_PDEATHSIG``):
    a ``kill -9`` of the server leaves no sidecar or worker behind. Run in the child."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Sidecar:
    def __init__(self, name: str, module: str, data_dir, env: dict):
        self.name, self.module = name, module
        r, w = os.pipe()
        cmd = [sys.executable, "-m", module, "--data-dir", str(data_dir), "--ready-fd", str(w)]
        self.proc = subprocess.Popen(cmd, env=env, pass_fds=(w,), preexec_fn=die_with_parent)
        os.close(w)
        self._ready_r = r

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        buf = b""
        try:
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the {self.name} process did not start within {timeout:.0f} s")
                ready, _, _ = select.select([self._ready_r], [], [], left)
                if ready:
                    chunk = os.read(self._ready_r, 256)
                    if not chunk:
                        raise RuntimeError(f"the {self.name} process exited at start-up (code {self.proc.wait()}); see its log above")
                    buf += chunk
        finally:
            os.close(self._ready_r)

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wanted(settings) -> list[str]:
    """The sidecars to start for ``settings`` (mode not ``thread``, module present)."""
    out = []
    for name, module in SIDECARS.items():
        if getattr(settings, f"{name}_mode") == "thread" or importlib.util.find_spec(module) is None:
            continue
        out.append(name)
    return out


@contextlib.contextmanager
def running(settings) -> Iterator[list[str]]:
    """Start the sidecars, export ``FUNNELREC_SIDECARS`` for the workers, stop them at exit."""
    names = wanted(settings)
    env = {**os.environ, "FUNNELREC_DATA_DIR": str(settings.data_dir)}
    started: list[Sidecar] = []
    try:
        for name in names:
            sc = Sidecar(name, SIDECARS[name], settings.data_dir, env)
            started.append(sc)
            sc.wait_ready()
        os.environ["FUNNELREC_SIDECARS"] = ",".join(names)
        stopping, released = threading.Event(), threading.Event()
        watch = threading.Thread(target=_watchdog, args=(started, env, stopping, released), name="sidecar-watchdog",
                                 daemon=True)
        watch.start()
        yield names
    finally:
        os.environ.pop("FUNNELREC_SIDECARS", None)
        with contextlib.suppress(NameError):
            stopping.set()
        for sc in reversed(started):  # the writer last: workers and builder are done writing
            sc.stop()
        with contextlib.suppress(NameError):
            released.set()  # only now may the watchdog thread end: its children die with it (PDEATHSIG)
            watch.join(5)


def _watchdog(started: list[Sidecar], env: dict, stopping: threading.Event, released: threading.Event) -> None:
    """Restart a sidecar that died (a crash, the OOM killer): the service heals itself. A
    restarted sidecar is this thread's child and dies when the thread ends (PDEATHSIG is per
    thread), so the thread lives until the sidecars were stopped (``released``)."""
    try:
        _watch(started, env, stopping)
    finally:
        released.wait()


def _watch(started: list[Sidecar], env: dict, stopping: threading.Event) -> None:
    while not stopping.wait(1.0):
        for k, sc in enumerate(started):
            code = sc.proc.poll()
            if code is None or stopping.is_set():
                continue
            log.error("sidecar died; restarting it", extra={"sidecar": sc.name, "code": code})
            try:
                new = Sidecar(sc.name, sc.module, env["FUNNELREC_DATA_DIR"], env)
                started[k] = new
                new.wait_ready()
            except Exception as exc:
                log.error("sidecar restart failed", extra={"sidecar": sc.name, "error": repr(exc)})


def serve_ready(ready_fd: int | None) -> None:
    """In a sidecar: tell the parent we serve."""
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
