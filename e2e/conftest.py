"""Tier 3: the widget in real Chromium (Playwright) against a real funnelrec server.

Fixtures:
  pages      a small threaded HTTP server of this test run: the test pages (with the CSP headers a
             test asks for), the built widget (/widget.js), and a canned /canned/v1/recommend
             reply for the tests whose point is rendering only (each says so in its docstring).
  server     a real `python -m server serve` subprocess on a free port, with its own data dir,
             rate limiting off, and a readiness poll on /healthz that prints the server log on
             failure; one per test session, with one test-mode tenant (`tenant`) whose allowed
             origin is the page server, and a small catalog.
  new_server a factory for a server owned by one test (the outage test stops and restarts it).
  page       a fresh browser context and page (empty storage: a new visitor) that records
             console errors and page errors, and fails the test on a page error.

Headless Chromium sends "HeadlessChrome" and navigator.webdriver, so the tenant is made with
--test-mode (the server otherwise drops bot traffic).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from e2e.helpers import CHROMIUM, CHROMIUM_ARGS, Pages, Server


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(120))


# ---------------------------------------------------------------- fixtures

PRODUCTS = [{"id": f"sku{i}", "title": f"Mug {i}", "category": "Home > Mugs", "price": 10000 + 500 * i, "currency": "KRW",
             "url": f"https://shop.example/p/sku{i}", "image": f"https://shop.example/i/sku{i}.jpg",
             "description": f"A ceramic mug number {i}"} for i in range(30)]


@pytest.fixture(scope="session")
def pages():
    p = Pages()
    yield p
    p.close()


@pytest.fixture(scope="session")
def server(pages, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("funnelrec-e2e"))
    s.tenant = s.create_tenant("e2e", pages.origin, PRODUCTS)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def tenant(server) -> dict:
    return server.tenant


@pytest.fixture
def new_server(tmp_path):
    made: list[Server] = []

    def make() -> Server:
        s = Server(tmp_path / f"srv{len(made)}")
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/setup --browser should have installed it")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    pg = context.new_page()
    pg.errors = []          # uncaught exceptions in the page
    pg.console_errors = []  # console.error / error-level messages
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    yield pg
    assert not pg.errors, f"uncaught errors in the page: {pg.errors}"
