"""Shared helpers for the benchmarks: run a real server process on a free port and wait for it.

``ServerProcess`` starts a command (``funnelrec serve`` or any uvicorn app), waits until an
HTTP GET on the health path answers 200, and on failure raises with the server's log. The log
goes to a file (not a pipe) so a chatty server can never block on a full pipe buffer.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


RETAIL_CSV = next(ROOT.parent.glob("shared/data/online-retail/*.csv.gz"), None)   # ../shared/data


def server_from(root: str | None) -> Path:
    """``--root`` of the identity and cost tools: ``server`` imported from that tree (e.g. the
    code before a change, a ``git archive`` unpacked in /tmp), ``bench`` from this checkout."""
    tree = Path(root).resolve() if root else ROOT
    sys.path.insert(0, str(tree))
    sys.path.insert(1, str(ROOT))
    import server
    print(f"server from {Path(server.__file__).parent}", file=sys.stderr)
    return tree


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def funnelrec_cmd(*args: str) -> list[str]:
    """``python -m server ...`` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "server", *args]


def create_tenant(data_dir: Path, slug: str, *extra: str, env: dict | None = None) -> dict:
    """``funnelrec tenant create SLUG --test-mode --json``; returns its JSON (site_key, secret_key...)."""
    out = subprocess.run(funnelrec_cmd("tenant", "create", slug, "--test-mode", "--json", "--data-dir", str(data_dir), *extra),
                         cwd=ROOT, env=env or os.environ.copy(), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"tenant create failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    return json.loads(out.stdout)


class ServerProcess:
    """A server in its own process group, its log in a temp file."""

    def __init__(self, cmd: list[str], port: int, env: dict | None = None, health_path: str = "/healthz",
                 name: str = "server", cwd: Path = ROOT):
        self.cmd = cmd
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.health_path = health_path
        self.name = name
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"funnelrec-{name}-", suffix=".log", delete=False)
        self.log_path = Path(self.log_file.name)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before answering:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20_000:]
        except OSError:
            return "(no log)"

    def kill9(self) -> None:
        """SIGKILL the whole process group (uvicorn's supervisor and its workers)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        except ProcessLookupError:
            pass

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its children (workers), from /proc."""
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        return _tree_cpu(self.proc.pid)

    def child_cpu_seconds(self, marker: str) -> float:
        """CPU of the children whose command line contains ``marker`` (e.g. the writer process)."""
        if not self.proc or self.proc.poll() is not None:
            return 0.0
        total = 0.0
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return 0.0
        for c in children:
            try:
                if marker.encode() in Path(f"/proc/{c}/cmdline").read_bytes():
                    total += _tree_cpu(int(c))
            except OSError:
                pass
        return total

    def cpu_split(self) -> dict[str, float]:
        """CPU seconds so far of each process of the server: ``serve`` (the ``funnelrec serve``
        process: with 1 worker it is the uvicorn worker too) and, of it, ``serve_sys`` in the
        kernel (system calls: the sockets' writes most), ``writer``, ``builder``, ``worker``
        (the workers of ``--workers N``, summed) and ``other``."""
        out: dict[str, float] = {}
        if not self.proc or self.proc.poll() is not None:
            return out
        out["serve"] = _proc_cpu(self.proc.pid)
        out["serve_sys"] = _proc_cpu(self.proc.pid, user=False)
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        for c in children:
            try:
                cmd = Path(f"/proc/{c}/cmdline").read_bytes()
            except OSError:
                continue
            name = ("writer" if b"writer_service" in cmd else "builder" if b"server.builder" in cmd
                    else "worker" if b"multiprocessing" in cmd else "other")
            out[name] = out.get(name, 0.0) + _proc_cpu(int(c))
        return out

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.log_file.close()


def _proc_cpu(pid: int, user: bool = True) -> float:
    """User (unless ``user`` is False) + system CPU seconds of one process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) * user + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree_cpu(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total
