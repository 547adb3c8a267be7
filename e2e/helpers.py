"""Helpers of the browser tests: the real server process, the page server, page templates."""
from __future__ import annotations

import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "widget" / "dist"
CHROMIUM = os.environ.get("FUNNELREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
RESERVE_CSS = "[data-funnelrec-slot]{display:block;min-height:var(--funnelrec-height,360px)}"
STUB_JS = "window.funnelrec=window.funnelrec||function(){(funnelrec.q=funnelrec.q||[]).push(arguments)};"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll until check() is truthy; return its value."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- the funnelrec server

class Server:
    """`python -m server serve` in a subprocess, stoppable and restartable on the same port."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> Any:
        out = subprocess.run([sys.executable, "-m", "server", *args, "--json", "--data-dir", str(self.data_dir)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        if out.returncode:
            raise RuntimeError(f"funnelrec {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(out.stdout)

    def create_tenant(self, slug: str, origin: str, products: list[dict] | None = None) -> dict:
        t = self.cli("tenant", "create", slug, "--origin", origin, "--test-mode")
        if products:
            path = self.data_dir / f"{slug}-products.json"
            path.write_text(json.dumps(products))
            self.cli("import", "products", str(path), "--tenant", slug)
        return t

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {**os.environ, "FUNNELREC_RATE_LIMIT_RPS": "0", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"funnelrec server did not become ready on {self.url}; log:\n{self.log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def events(self, slug: str, visitor: str | None = None, type: str | None = None) -> list[dict]:
        """Rows of the tenant shard's `events` table (data JSON merged in), oldest first."""
        path = self.data_dir / "tenants" / f"{slug}.db"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.row_factory = sqlite3.Row
            sql, args = "SELECT * FROM events WHERE 1=1", []
            if visitor:
                sql += " AND visitor = ?"
                args.append(visitor)
            if type:
                sql += " AND type = ?"
                args.append(type)
            rows = conn.execute(sql + " ORDER BY seq", args).fetchall()
        finally:
            conn.close()
        out = []
        for r in rows:
            d = dict(r)
            d.update(json.loads(d.pop("data") or "{}"))
            out.append(d)
        return out


# ---------------------------------------------------------------- the page server

class Pages:
    """Test pages, the built widget and a canned recommendation reply, on one origin."""

    def __init__(self):
        self.pages: dict[str, tuple[str, dict[str, str]]] = {}
        self.canned: Callable[[dict], dict] | None = None
        self.canned_delay = 0.0
        self.requests: list[tuple[str, str, Any]] = []
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                pages.requests.append(("GET", path, None))
                if path == "/widget.js":
                    return self._send(200, (DIST / "funnelrec.min.js").read_bytes(), "text/javascript")
                if path in pages.pages:
                    html, headers = pages.pages[path]
                    return self._send(200, html.encode(), "text/html; charset=utf-8", headers)
                if path.startswith("/img/"):
                    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="160" height="160"><rect width="160" height="160" fill="#ddd"/></svg>'
                    return self._send(200, svg, "image/svg+xml")
                self._send(404, b"not found", "text/plain")

            def do_POST(self):
                path = self.path.split("?")[0]
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                pages.requests.append(("POST", path, body))
                cors = {"Access-Control-Allow-Origin": self.headers.get("origin") or "*"}
                if path == "/canned/v1/recommend" and pages.canned:
                    if pages.canned_delay:
                        time.sleep(pages.canned_delay)
                    return self._send(200, json.dumps(pages.canned(body)).encode(), "application/json", cors)
                if path == "/canned/v1/events":
                    n_events = len((body or {}).get("events") or [])
                    reply = {"ok": True, "accepted": n_events, "duplicates": 0, "dropped": 0, "rejected": []}
                    return self._send(200, json.dumps(reply).encode(), "application/json", cors)
                self._send(404, b'{"ok":false,"status":404,"error":"not_found","message":"no such path"}', "application/json", cors)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.canned_endpoint = self.origin + "/canned"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, path: str, html: str, headers: dict[str, str] | None = None) -> str:
        self.pages[path] = (html, headers or {})
        return self.origin + path

    def posts(self, path: str) -> list:
        return [b for (m, p, b) in self.requests if m == "POST" and p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def page_html(site_key: str, endpoint: str, body: str = "", head: str = "", nonce: str | None = None,
              attrs: str = "", src: str = "/widget.js") -> str:
    """A shop page with the paste-in snippet (reserve CSS, command-queue stub, async script)."""
    n = f' nonce="{nonce}"' if nonce else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style{n}>{RESERVE_CSS} body{{margin:0;font:16px/1.5 serif}}</style>
<script{n}>{STUB_JS}</script>
{head}
<script async src="{src}" data-site-key="{site_key}" data-endpoint="{endpoint}" data-locale="en-US" {attrs}{n}></script>
</head><body>
{body}
</body></html>"""


def canned_items(n: int = 6, title: Callable[[int], str] | None = None, origin: str = "") -> list[dict]:
    return [{"id": f"p{i}", "title": title(i) if title else f"Product {i}", "url": f"{origin}/product/p{i}",
             "image": f"{origin}/img/p{i}.svg", "price": 12000 + i * 1000, "currency": "KRW", "reason": "similar"}
            for i in range(n)]


def canned_reply(items: list[dict]) -> Callable[[dict], dict]:
    def reply(req: dict) -> dict:
        return {"ok": True, "currency": "KRW", "locale": "en",
                "slots": {s["id"]: {"rec_id": "r_canned_" + s["id"], "placement": s["placement"], "strategy": "canned",
                                    "variant": "A", "items": items[: s.get("count", 8)]} for s in req["slots"]}}
    return reply


def set_hidden(page, hidden: bool) -> None:
    """Make the tab hidden or visible, with the events a browser fires.

    Headless Chromium keeps every page visible (switching or minimising does not change
    document.visibilityState), so the property is overridden and the events are dispatched."""
    page.evaluate("""(h) => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => h ? 'hidden' : 'visible'});
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => h});
        if (h) window.dispatchEvent(new Event('blur'));
        document.dispatchEvent(new Event('visibilitychange'));
        if (!h) window.dispatchEvent(new Event('focus'));
    }""", hidden)


def widget_ready(page) -> None:
    page.wait_for_function("() => window.funnelrec && window.funnelrec.v", timeout=10000)


def visitor_of(page) -> str:
    return json.loads(page.evaluate("localStorage.getItem('_frv')"))
