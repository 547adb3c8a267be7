"""The carousel in real Chromium: XSS safety, strict CSP, zero layout shift, style isolation,
accessibility, and a backend that is down or slow.

These tests are about rendering only, so the recommendation reply is CANNED: it comes from the
test's own page server (/canned/v1/recommend) with exactly the items each test needs (a hostile
title, a known count for layout). What the widget does with the real server's replies and events
is covered by test_tracking.py and test_snippet.py.
"""
from __future__ import annotations

import json

from e2e.helpers import canned_items, canned_reply, free_port, page_html, widget_ready

SITE_KEY = "pk_canned_test"


def slots_rendered(page, n: int = 1) -> None:
    page.wait_for_function("""(n) => [...document.querySelectorAll('[data-funnelrec-slot]')]
        .filter(h => h.shadowRoot && (h.shadowRoot.querySelector('li') || h.getAttribute('data-funnelrec-state'))).length >= n""",
                           arg=n, timeout=10000)


def test_hostile_title_renders_as_text(page, pages):
    """Canned reply: a title and URLs crafted to run script must come out as inert text."""
    hostile = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    items = canned_items(3, origin=pages.origin)
    items[0]["title"] = hostile
    items[1]["url"] = "javascript:window.__xss=3"
    items[2]["image"] = "javascript:window.__xss=4"
    pages.canned = canned_reply(items)
    url = pages.add("/r/xss", page_html(SITE_KEY, pages.canned_endpoint, body='<div id="s" data-funnelrec-slot="main"></div>'))
    page.goto(url)
    slots_rendered(page)
    page.wait_for_timeout(200)
    got = page.evaluate("""() => {
        const sr = document.getElementById('s').shadowRoot;
        return {names: [...sr.querySelectorAll('.n')].map(n => n.textContent),
                imgsInNames: sr.querySelectorAll('.n *').length,
                hrefs: [...sr.querySelectorAll('a')].map(a => a.getAttribute('href')),
                srcs: [...sr.querySelectorAll('img')].map(i => i.getAttribute('src')),
                xss: window.__xss}
    }""")
    assert got["xss"] is None
    assert got["names"] == [hostile, "Product 2"], "the item with a javascript: link is left out"
    assert got["imgsInNames"] == 0
    assert all(h.startswith(pages.origin) for h in got["hrefs"])
    assert got["srcs"][1] is None


STRICT_CSP = ("default-src 'none'; script-src 'nonce-n0nce'; style-src 'nonce-n0nce'; img-src 'self'; "
              "connect-src 'self'; base-uri 'none'; form-action 'none'; require-trusted-types-for 'script'")
CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_strict_csp_raises_no_violation(page, pages):
    """Canned reply (same origin, so that connect-src 'self' covers it): the page's CSP allows no
    inline style, no eval, no unsafe HTML sinks (Trusted Types), and only nonce'd scripts."""
    pages.canned = canned_reply(canned_items(6, origin=pages.origin))
    html = page_html(SITE_KEY, pages.canned_endpoint, nonce="n0nce",
                     body='<h1>Shop</h1><div id="s" data-funnelrec-slot="detail_similar"></div>')
    url = pages.add("/r/csp", html, {"Content-Security-Policy": STRICT_CSP})
    page.add_init_script(CSP_WATCH)
    page.goto(url)
    slots_rendered(page)
    page.evaluate("funnelrec('track', 'add_to_cart', {product: 'p1'}); funnelrec('flush')")
    page.wait_for_timeout(500)
    page.evaluate("document.getElementById('s').shadowRoot.querySelector('button[aria-label=Next]').click()")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__csp") == []
    assert not [m for m in page.console_errors if "Content Security Policy" in m or "Trusted Type" in m]
    # the styles did apply under the CSP (constructable stylesheet)
    assert page.evaluate("getComputedStyle(document.getElementById('s').shadowRoot.querySelector('li')).flexBasis") == "160px"
    assert pages.posts("/canned/v1/events"), "events were sent under connect-src 'self'"


def test_cumulative_layout_shift_is_zero(page, pages):
    """Canned reply, answered after 600 ms (a slow backend): one slot in view gets items, one
    below the fold gets none and collapses. Nothing on the page may move."""
    items = canned_items(8, origin=pages.origin)
    pages.canned = lambda req: {"ok": True, "currency": "KRW", "slots": {
        "top": {"rec_id": "r_top", "items": items}, "bottom": {"rec_id": "r_bottom", "items": []}}}
    pages.canned_delay = 0.6
    body = ('<h1>Category</h1><p>Intro text above the carousel.</p>'
            '<div id="top" data-funnelrec-slot="category"></div>'
            '<p id="below">Text right under the carousel.</p><div style="height:1500px"></div>'
            '<div id="bottom" data-funnelrec-slot="main"></div><p>Footer</p>')
    page.add_init_script("""window.__cls = 0; window.__shifts = [];
        new PerformanceObserver(l => l.getEntries().forEach(e => { if (!e.hadRecentInput) { __cls += e.value; __shifts.push(e.value); } }))
          .observe({type: 'layout-shift', buffered: true});""")
    try:
        url = pages.add("/r/cls", page_html(SITE_KEY, pages.canned_endpoint, body=body))
        page.goto(url)
        below_before = page.evaluate("document.getElementById('below').getBoundingClientRect().top")
        slots_rendered(page, 2)
        # the images in view have loaded (the rest are lazy)
        page.wait_for_function("() => [...document.getElementById('top').shadowRoot.querySelectorAll('img')].slice(0, 4).every(i => i.complete)")
        page.wait_for_timeout(300)
    finally:
        pages.canned_delay = 0
    assert page.evaluate("document.getElementById('below').getBoundingClientRect().top") == below_before
    assert page.evaluate("window.__shifts") == []
    assert page.evaluate("window.__cls") == 0
    assert page.evaluate("document.getElementById('bottom').getBoundingClientRect().height") == 0, "the empty slot collapsed"
    assert page.evaluate("document.getElementById('top').getBoundingClientRect().height") == 360


HOSTILE_HOST_CSS = """<style>
* { font-family: "Comic Sans MS", cursive !important; color: red !important; letter-spacing: 3px !important;
    line-height: 3 !important; box-sizing: content-box !important; }
div { padding: 30px; border: 4px solid blue; margin: 0; }
ul, li { list-style: disc !important; padding: 20px !important; margin: 10px !important; display: block !important; }
img { border: 10px solid red !important; width: 50px !important; }
button { background: red !important; width: 200px !important; }
a { text-decoration: underline !important; }
h2 { font-size: 60px !important; }
:root { font-size: 30px; }
</style>"""
HOST_SAMPLE = ('<section id="host-sample"><h2>Host heading</h2><ul><li>one</li><li>two</li></ul>'
               '<button>Buy</button><a href="#x">link</a><img src="/img/a.svg" width="20" height="20"><p class="n r h p l">text</p></section>')
STYLE_PROBE = """(sel) => {
    const props = ['font-family', 'font-size', 'color', 'letter-spacing', 'line-height', 'padding-left', 'margin-left',
                   'border-top-width', 'list-style-type', 'display', 'width', 'height', 'text-decoration-line', 'background-color', 'box-sizing'];
    const root = sel.startsWith('shadow:') ? document.getElementById('s').shadowRoot : document;
    const q = sel.replace('shadow:', '');
    return [...root.querySelectorAll(q)].map(el => { const cs = getComputedStyle(el); return props.map(p => p + '=' + cs.getPropertyValue(p)); });
}"""
INNER = ["section", "h2", "ul", "li", "a", "img", ".n", ".p", "button"]


def test_host_css_does_not_change_the_carousel(page, pages):
    """Canned reply: the same carousel on a plain page and on a page whose CSS targets every element."""
    pages.canned = canned_reply(canned_items(4, origin=pages.origin))
    body = '<div id="s" data-funnelrec-slot="main"></div>'
    plain = pages.add("/r/plain", page_html(SITE_KEY, pages.canned_endpoint, body=body))
    hostile = pages.add("/r/hostile", page_html(SITE_KEY, pages.canned_endpoint, body=body, head=HOSTILE_HOST_CSS))
    snapshots = []
    for url in (plain, hostile):
        page.goto(url)
        slots_rendered(page)
        page.wait_for_function("() => [...document.getElementById('s').shadowRoot.querySelectorAll('img')].every(i => i.complete)")
        snapshots.append({sel: page.evaluate(STYLE_PROBE, "shadow:" + sel) for sel in INNER}
                         | {"box": page.evaluate("(() => { const r = document.getElementById('s').shadowRoot.querySelector('section').getBoundingClientRect(); return [r.width, r.height]; })()")})
    assert snapshots[0] == snapshots[1]


def test_widget_css_does_not_change_the_host(page, pages):
    """Canned reply: host elements that share tag and class names with the carousel's keep their
    computed styles, and the widget adds no stylesheet to the document."""
    pages.canned = canned_reply(canned_items(4, origin=pages.origin))
    without = pages.add("/r/without", page_html(SITE_KEY, pages.canned_endpoint, body=HOST_SAMPLE, src="data:text/javascript,"))
    with_widget = pages.add("/r/with", page_html(SITE_KEY, pages.canned_endpoint,
                                                 body=HOST_SAMPLE + '<div id="s" data-funnelrec-slot="main"></div>'))
    page.goto(without)
    before = page.evaluate(STYLE_PROBE, "#host-sample, #host-sample *")
    page.goto(with_widget)
    slots_rendered(page)
    after = page.evaluate(STYLE_PROBE, "#host-sample, #host-sample *")
    assert before == after
    # the only stylesheet in the document is the snippet's own reserve rule
    assert page.evaluate("document.styleSheets.length") == 1
    assert page.evaluate("document.adoptedStyleSheets.length") == 0


def test_carousel_keyboard_and_semantics(page, pages):
    """Canned reply with 10 items (more than fit): the region, list, buttons and arrow keys."""
    pages.canned = canned_reply(canned_items(10, origin=pages.origin))
    page.emulate_media(reduced_motion="reduce")
    url = pages.add("/r/a11y", page_html(SITE_KEY, pages.canned_endpoint,
                                         body='<div id="s" data-funnelrec-slot="cart" data-count="10"></div>'))
    page.goto(url)
    slots_rendered(page)
    region = page.locator("#s section[role=region]")
    assert region.get_attribute("aria-label") == "Complete your order"
    assert page.locator("#s ul[role=list] > li").count() == 10
    prev, nxt = page.locator("#s button[aria-label=Previous]"), page.locator("#s button[aria-label=Next]")
    assert prev.is_disabled() and nxt.is_enabled()
    page.locator("#s a").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.getElementById('s').shadowRoot.activeElement.href").endswith("/product/p2")
    nxt.click()
    page.wait_for_function("() => document.getElementById('s').shadowRoot.querySelector('ul').scrollLeft > 0")
    assert page.evaluate("getComputedStyle(document.getElementById('s').shadowRoot.querySelector('ul')).scrollBehavior") == "auto"
    assert prev.is_enabled()
    # the image is lazy and the price is formatted for the tenant's currency
    assert page.locator("#s img").first.get_attribute("loading") == "lazy"
    assert page.locator("#s .p").first.text_content() == "₩12,000"


def test_korean_titles_and_merchant_override(page, pages):
    """Canned reply: the built-in Korean title, and a merchant's data-title."""
    pages.canned = canned_reply(canned_items(2, origin=pages.origin))
    body = ('<div id="a" data-funnelrec-slot="detail_similar"></div>'
            '<div id="b" data-funnelrec-slot="detail_complements" data-title="이 상품과 어울리는 컵받침"></div>')
    url = pages.add("/r/ko", page_html(SITE_KEY, pages.canned_endpoint, body=body, attrs='data-locale="ko-KR"').replace('data-locale="en-US" ', ''))
    page.goto(url)
    slots_rendered(page, 2)
    assert page.locator("#a h2").text_content() == "비슷한 상품"
    assert page.locator("#b h2").text_content() == "이 상품과 어울리는 컵받침"
    assert len([b for b in pages.posts("/canned/v1/recommend") if b and len(b["slots"]) == 2]) >= 1, "one request for both slots"
    req = pages.posts("/canned/v1/recommend")[-1]
    assert req["locale"] == "ko" and {s["placement"] for s in req["slots"]} == {"detail_similar", "detail_complements"}


def test_backend_down_leaves_the_page_alone(page, pages):
    """No backend at all (a closed port): no exception, no console error from the widget, the
    slot gives its space back once below the fold, and no retry storm."""
    dead = f"http://127.0.0.1:{free_port()}"
    body = '<h1>Shop</h1><div style="height:1200px"></div><div id="s" data-funnelrec-slot="main"></div>'
    url = pages.add("/r/down", page_html(SITE_KEY, dead, body=body))
    attempts = []
    page.on("request", lambda r: attempts.append(r.url) if r.url.startswith(dead) else None)
    page.clock.install()
    page.goto(url)
    widget_ready(page)
    page.evaluate("funnelrec('track', 'add_to_cart', {product: 'p1'})")
    for _ in range(12):                 # two minutes of fake time
        page.clock.run_for(10000)
        page.wait_for_timeout(10)
    page.wait_for_function("() => document.getElementById('s').getAttribute('data-funnelrec-state') === 'empty'")
    assert len(attempts) <= 8, attempts
    widget_errors = [m for m in page.console_errors if "net::ERR_" not in m and "Failed to load resource" not in m]
    assert widget_errors == []
    assert page.evaluate("document.querySelector('h1').textContent") == "Shop"


def test_slow_backend_times_out_quietly(page, pages):
    """Canned reply that takes 6 s (past the widget's 5 s timeout): the request is abandoned
    without an error and the slot collapses once below the fold."""
    pages.canned = canned_reply(canned_items(3, origin=pages.origin))
    pages.canned_delay = 6
    try:
        body = '<div style="height:1200px"></div><div id="s" data-funnelrec-slot="main"></div>'
        url = pages.add("/r/slow", page_html(SITE_KEY, pages.canned_endpoint, body=body))
        page.clock.install()
        page.goto(url)
        widget_ready(page)
        page.clock.run_for(5100)
        page.wait_for_function("() => document.getElementById('s').getAttribute('data-funnelrec-state') === 'empty'")
        assert page.console_errors == []
    finally:
        pages.canned_delay = 0
    assert json.dumps(page.evaluate("document.getElementById('s').shadowRoot.querySelectorAll('li').length")) == "0"
