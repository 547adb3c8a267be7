"""The widget's measurements and delivery, in real Chromium, against the real server.

Time inside the page is Playwright's fake clock (page.clock): the tests move it on with
run_for(), so a "60 s hidden tab" takes milliseconds of real time.
"""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timezone

import pytest

from e2e.helpers import page_html, set_hidden, visitor_of, wait_for, widget_ready

DETAIL_HEAD = '<meta name="funnelrec:page" content="detail"><meta name="funnelrec:product" content="sku1">'


def flush_and_wait(page) -> None:
    """funnelrec('flush'), then move the fake clock on in 1 ms steps until the widget's stored
    queue is empty: every event made so far has been acknowledged by the server (a batch still
    in flight from earlier is waited for too)."""
    page.evaluate("funnelrec('flush')")
    for _ in range(300):
        page.clock.run_for(1)
        if page.evaluate("localStorage.getItem('_frq')") is None:
            return
        page.wait_for_timeout(10)
    raise AssertionError("the widget did not deliver its events")


def start_paused(page, url: str) -> int:
    """Open url with the fake clock installed, then pause the page's time. Returns the fake now."""
    page.clock.install()
    page.goto(url)
    widget_ready(page)
    t = page.evaluate("Date.now()") + 1000
    page.clock.pause_at(datetime.fromtimestamp(t / 1000, tz=timezone.utc))
    return t


def engagement(server, slug, visitor):
    return server.events(slug, visitor=visitor, type="engagement")


def test_engaged_time_excludes_hidden_tab(page, pages, server, tenant):
    url = pages.add("/t/engaged", page_html(tenant["site_key"], server.url, head=DETAIL_HEAD,
                                             body='<h1>Mug</h1><div style="height:3000px"></div>'))
    paused = start_paused(page, url)
    for i in range(2):                 # 10 s of activity: a mouse move every 5 s
        page.mouse.move(100 + 10 * i, 100)
        page.clock.run_for(5000)
    set_hidden(page, True)             # the visitor switches tabs for a minute
    page.clock.run_for(60000)
    set_hidden(page, False)
    page.mouse.move(300, 300)
    page.clock.run_for(3000)
    flush_and_wait(page)

    rows = wait_for(lambda: (lambda r: r if sum(e.get("visible_ms", 0) for e in r) >= 13000 else None)(
        engagement(server, "e2e", visitor_of(page))), what="engagement events")
    engaged = sum(e.get("engaged_ms", 0) for e in rows)
    visible = sum(e.get("visible_ms", 0) for e in rows)
    # from the page view to the pause, then 10 s + 3 s: the hidden minute is not in it
    loaded = server.events("e2e", visitor=visitor_of(page), type="page_view")[0]["ts"]
    assert engaged == visible == paused - loaded + 13000, rows
    assert all(e["page"] == "detail" and e["product"] == "sku1" for e in rows)


def test_engaged_time_stops_when_the_visitor_is_idle(page, pages, server, tenant):
    url = pages.add("/t/idle", page_html(tenant["site_key"], server.url, head=DETAIL_HEAD, body="<h1>Mug</h1>"))
    paused = start_paused(page, url)
    page.mouse.move(10, 10)
    page.clock.run_for(120000)         # two minutes without any activity
    flush_and_wait(page)
    rows = wait_for(lambda: (lambda r: r if sum(e.get("visible_ms", 0) for e in r) >= 121000 else None)(
        engagement(server, "e2e", visitor_of(page))), what="engagement events")
    engaged = sum(e.get("engaged_ms", 0) for e in rows)
    loaded = server.events("e2e", visitor=visitor_of(page), type="page_view")[0]["ts"]
    assert engaged == paused - loaded + 15000, rows    # only the 15 s idle window after the last activity


def scroll_to(page, y: int) -> None:
    """Scroll and return once the page has dispatched the scroll event (the widget has seen it)."""
    page.evaluate("""(y) => new Promise((done) => {
        addEventListener('scroll', () => done(), {once: true});
        scrollTo(0, y);
    })""", y)


def test_scroll_depth_time_and_content_in_view(page, pages, server, tenant):
    body = ('<div style="height:2300px"></div>'
            '<section data-funnelrec-content="reviews" style="height:500px">Reviews</section>'
            '<div style="height:1000px"></div>')
    url = pages.add("/t/scroll", page_html(tenant["site_key"], server.url, head=DETAIL_HEAD, body=body))
    start_paused(page, url)
    height = page.evaluate("document.documentElement.scrollHeight")
    for i in range(1, 11):             # ten scroll steps 100 ms apart: 900 ms of scrolling
        scroll_to(page, i * 200)
        page.clock.run_for(100)
    page.wait_for_timeout(100)         # let the IntersectionObserver report the reviews section
    page.clock.run_for(5000)           # reading the reviews
    scroll_to(page, 0)                 # one isolated scroll back up: no scroll time, depth stays
    page.clock.run_for(2000)
    flush_and_wait(page)

    rows = wait_for(lambda: (lambda r: r if sum(e.get("scroll_ms", 0) for e in r) >= 900 else None)(
        engagement(server, "e2e", visitor_of(page))), what="engagement events")
    assert max(e.get("scroll_pct", 0) for e in rows) == round((2000 + 768) / height * 100)
    assert sum(e.get("scroll_ms", 0) for e in rows) == 900
    reviews = sum((e.get("content_ms") or {}).get("reviews", 0) for e in rows)
    assert 5000 <= reviews <= 5300, rows
    assert sum((e.get("content_ms") or {}).get("description", 0) for e in rows) == 0


def test_page_views_commands_and_single_page_navigation(page, pages, server, tenant):
    ld = {"@context": "https://schema.org", "@type": "Product", "sku": "sku7", "name": "Mug 7", "category": "Home > Mugs",
          "offers": {"@type": "Offer", "price": 13500, "priceCurrency": "KRW"}}
    body = ("<h1>Mug 7</h1><script>funnelrec('identify', 'cust42');"
            "funnelrec('track', 'add_to_cart', {product: 'sku7', quantity: 2, price: 13500, currency: 'KRW'});</script>")
    url = pages.add("/t/spa", page_html(tenant["site_key"], server.url, body=body,
                                        head=f'<script type="application/ld+json">{json.dumps(ld)}</script>'))
    page.goto(url)
    widget_ready(page)
    page.evaluate("history.pushState({}, '', '/t/spa/cart')")      # an SPA route change
    page.wait_for_timeout(200)
    page.evaluate("""funnelrec('track', 'purchase', {order: 'o-1', currency: 'KRW', total: 27000,
                     lines: [{product: 'sku7', quantity: 2, price: 13500, name: 'dropped: not in the schema'}]})""")
    page.evaluate("funnelrec('flush')")
    visitor = visitor_of(page)
    rows = wait_for(lambda: (lambda r: r if {"purchase", "add_to_cart"} <= {e["type"] for e in r} else None)(
        server.events("e2e", visitor=visitor)), what="purchase stored")
    types = [e["type"] for e in rows]
    assert types.count("visit_start") == 1
    views = [e for e in rows if e["type"] == "page_view"]
    assert [v["url"].split("127.0.0.1")[1].split("/", 1)[1] for v in views] == ["t/spa", "t/spa/cart"]
    assert views[0]["page"] == "detail" and views[0]["product"] == "sku7" and views[0]["category"] == "Home > Mugs"
    assert views[1]["referrer"].endswith("/t/spa")
    cart = next(e for e in rows if e["type"] == "add_to_cart")
    assert cart["product"] == "sku7" and cart["quantity"] == 2 and cart["user_id"] == "cust42"
    assert len({e["session"] for e in rows}) == 1


def test_search_page_and_a_visit_ending_after_30_idle_minutes(page, pages, server, tenant):
    head = ('<meta name="funnelrec:page" content="search"><meta name="funnelrec:query" content="머그컵">'
            '<meta name="funnelrec:results" content="0">')
    url = pages.add("/t/search", page_html(tenant["site_key"], server.url, head=head, body="<h1>No results</h1>"))
    start_paused(page, url)
    page.mouse.move(5, 5)
    page.clock.run_for(2000)
    page.clock.run_for(31 * 60 * 1000)
  # 31 minutes without activity
    page.mouse.move(50, 50)             # the next activity starts a new visit
    page.clock.run_for(600)
    flush_and_wait(page)
    visitor = visitor_of(page)
    rows = wait_for(lambda: (lambda r: r if "visit_end" in {e["type"] for e in r} else None)(
        server.events("e2e", visitor=visitor)), what="visit_end")
    search = [e for e in rows if e["type"] == "search"]
    assert len(search) == 1 and search[0]["query"] == "머그컵" and search[0].get("results", 0) == 0
    starts = [e for e in rows if e["type"] == "visit_start"]
    end = next(e for e in rows if e["type"] == "visit_end")
    assert len(starts) == 2
    assert end["session"] == starts[0]["session"] != starts[1]["session"]
    assert end["pages"] == 1
    assert 1000 <= end["duration_ms"] <= 60000      # first to last activity (or heartbeat), not the idle half hour
    assert 15000 <= end["engaged_ms"] <= 18000


def test_global_privacy_control_stops_tracking(page, pages, server, tenant):
    page.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})")
    url = pages.add("/t/gpc", page_html(tenant["site_key"], server.url, head=DETAIL_HEAD, body="<h1>Mug</h1>"))
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/events" in r.url else None)
    page.goto(url)
    widget_ready(page)
    page.evaluate("funnelrec('track', 'add_to_cart', {product: 'sku1'}); funnelrec('flush')")
    page.wait_for_timeout(1500)
    assert sent == []
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('_fr'))") == []


def test_consent_required_waits_for_consent(page, pages, server, tenant):
    url = pages.add("/t/consent", page_html(tenant["site_key"], server.url, head=DETAIL_HEAD, body="<h1>Mug</h1>",
                                            attrs='data-consent="required"'))
    page.goto(url)
    widget_ready(page)
    page.evaluate("funnelrec('track', 'add_to_cart', {product: 'sku1'})")
    page.wait_for_timeout(1200)
    assert page.evaluate("localStorage.getItem('_frv')") is None, "nothing stored before consent"
    page.evaluate("funnelrec('consent', true); funnelrec('flush')")
    visitor = visitor_of(page)
    rows = wait_for(lambda: (lambda r: r if "add_to_cart" in {e["type"] for e in r} else None)(
        server.events("e2e", visitor=visitor)), what="events after consent")
    assert {"visit_start", "page_view", "add_to_cart"} <= {e["type"] for e in rows}


def test_events_survive_a_server_outage_and_arrive_once(page, pages, new_server):
    """Stop the server, make events, restart it on the same port and data dir: each event is
    stored exactly once, and the widget did not hammer the server while it was down."""
    srv = new_server()
    t = srv.create_tenant("outage", pages.origin)
    srv.start()
    url = pages.add("/t/outage", page_html(t["site_key"], srv.url, head=DETAIL_HEAD, body="<h1>Mug</h1>"))
    attempts = []
    page.on("request", lambda r: attempts.append(r.url) if "/v1/events" in r.url else None)
    start_paused(page, url)
    flush_and_wait(page)
    visitor = visitor_of(page)
    wait_for(lambda: srv.events("outage", visitor=visitor, type="page_view"), what="page view before the outage")

    srv.stop()
    attempts.clear()
    page.evaluate("""for (let i = 0; i < 5; i++)
        funnelrec('track', 'add_to_cart', {product: 'sku' + i, quantity: 1, price: 1000, currency: 'KRW'})""")
    page.evaluate("funnelrec('flush')")
    for _ in range(40):                # five minutes of fake time with the server down
        page.clock.run_for(7500)
        page.wait_for_timeout(15)      # let a failed fetch settle
    queued = json.loads(page.evaluate("localStorage.getItem('_frq')") or "[]")
    assert {e["type"] for e in queued} >= {"add_to_cart"}, "the events wait in the stored queue"
    assert len(attempts) <= 10, f"retry storm: {len(attempts)} attempts in 5 minutes"

    srv.start()
    for _ in range(60):                # the backoff (at most 5 minutes) runs out, the retry goes
        page.clock.run_for(10000)
        page.wait_for_timeout(15)
        if len(srv.events("outage", visitor=visitor, type="add_to_cart")) == 5:
            break
    # a new page load resends anything it still finds stored: ids keep that harmless
    page.reload()
    widget_ready(page)
    flush_and_wait(page)               # ...and returns once the stored queue is empty
    rows = wait_for(lambda: (lambda r: r if len(r) == 5 else None)(srv.events("outage", visitor=visitor, type="add_to_cart")),
                    what="the five add_to_cart events")
    assert sorted(e["product"] for e in rows) == [f"sku{i}" for i in range(5)]
    ids = [e["event_id"] for e in srv.events("outage", visitor=visitor)]
    assert len(ids) == len(set(ids))


def recommend_available(server) -> bool:
    req = urllib.request.Request(server.url + "/v1/recommend", data=b"{}", method="POST",
                                 headers={"Content-Type": "text/plain"})
    try:
        urllib.request.urlopen(req, timeout=5)
    except urllib.error.HTTPError as e:
        return e.code != 404 or b"not_found" not in e.read()
    except OSError:
        return False
    return True


def test_impressions_need_one_continuous_second(page, pages, server, tenant):
    if not recommend_available(server):
        pytest.skip("POST /v1/recommend is not installed on this server yet")
    body = ('<div style="height:1200px">top</div>'
            '<div id="recs" data-funnelrec-slot="main" data-count="4"></div>'
            '<div style="height:2000px">bottom</div>')
    url = pages.add("/t/impressions", page_html(tenant["site_key"], server.url, body=body))
    start_paused(page, url)
    items = page.wait_for_function("() => document.getElementById('recs').shadowRoot.querySelectorAll('li').length", timeout=10000).json_value()
    assert items > 0
    visitor = visitor_of(page)

    def impressions():
        return server.events("e2e", visitor=visitor, type="rec_impression")

    def show(visible: bool):
        scroll_to(page, 1100 if visible else 3000)
        page.wait_for_timeout(100)     # the IntersectionObserver reports on the next frames

    show(True)
    page.clock.run_for(900)
    show(False)                        # out of view before the second is full
    page.clock.run_for(500)
    show(True)
    page.clock.run_for(900)
    flush_and_wait(page)
    assert impressions() == [], "900 ms + 900 ms is not one continuous second"
    page.clock.run_for(200)
    flush_and_wait(page)
    rows = wait_for(impressions, what="impressions")
    assert len(rows) == items
    assert len({e["product"] for e in rows}) == items
    assert all(e["rec_id"] and e["slot"] == "recs" for e in rows)
    show(False)
    show(True)
    page.clock.run_for(3000)
    flush_and_wait(page)
    assert len(impressions()) == items, "once per slot and item"
