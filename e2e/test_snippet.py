"""The snippet as `funnelrec snippet` prints it, against the real server: the widget comes from the
versioned URL with its SRI hash, real recommendations render, and a click on one is delivered
(by sendBeacon as the page unloads) with its recommendation id."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from e2e.helpers import DIST, wait_for, widget_ready, visitor_of
from server.widget_assets import snippet_html

MANIFEST = json.loads((DIST / "manifest.json").read_text())


def shop_page(snippet: str, body: str) -> str:
    return f"<!doctype html><html lang='ko'><head><meta charset='utf-8'><title>Shop</title>{snippet}</head><body>{body}</body></html>"


def test_versioned_url_headers(server):
    url = f"{server.url}/w/{MANIFEST['version']}/funnelrec.js"
    with urllib.request.urlopen(url) as r:
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert len(r.read()) == MANIFEST["bytes"]
    with urllib.request.urlopen(f"{server.url}/w/funnelrec.js") as r:
        assert r.headers["Cache-Control"] == "public, max-age=300"
    try:
        urllib.request.urlopen(f"{server.url}/w/0.0.0-deadbeef/funnelrec.js")
        raise AssertionError("an unknown version must be a 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
        assert json.loads(e.read()) == {"ok": False, "status": 404, "error": "not_found",
                                        "message": f"no widget version '0.0.0-deadbeef'; the current one is '{MANIFEST['version']}'"}


def test_snippet_loads_with_sri_renders_and_tracks_a_click(page, pages, server, tenant):
    snippet = snippet_html(tenant["site_key"], server.url, "ko")
    assert f'integrity="{MANIFEST["sri"]}"' in snippet
    body = '<h1>머그컵</h1><div id="recs" data-funnelrec-slot="main" data-count="4"></div>'
    url = pages.add("/s/home", shop_page(snippet, body))
    page.route("https://shop.example/**", lambda route: route.fulfill(status=200, content_type="text/html", body="<p>product</p>"))
    page.route("https://shop.example/i/**", lambda route: route.fulfill(status=200, content_type="image/svg+xml",
                                                                        body='<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'))
    page.goto(url)
    widget_ready(page)
    assert page.evaluate("funnelrec.v") == MANIFEST["version"]
    page.wait_for_function("() => document.getElementById('recs').shadowRoot.querySelectorAll('li').length > 0", timeout=10000)
    assert page.locator("#recs h2").text_content() == "회원님을 위한 추천 상품"
    titles = page.locator("#recs .n").all_text_contents()
    assert titles and all(t.startswith("Mug ") for t in titles)
    visitor = visitor_of(page)
    page.locator("#recs a").first.click()
    page.wait_for_url("https://shop.example/**")
    rows = wait_for(lambda: server.events("e2e", visitor=visitor, type="rec_click"), what="the rec_click")
    assert rows[0]["rec_id"] and rows[0]["rec_id"].startswith("r") and rows[0]["slot"] == "recs" and rows[0]["position"] == 0


def test_tampered_script_is_refused_by_sri(page, pages, server, tenant):
    snippet = snippet_html(tenant["site_key"], server.url, "en").replace(MANIFEST["sri"], "sha384-" + "A" * 64)
    url = pages.add("/s/tampered", shop_page(snippet, "<p>shop</p>"))
    page.goto(url)
    page.wait_for_timeout(500)
    assert page.evaluate("typeof funnelrec.v") == "undefined", "the browser refused a script whose hash does not match"
    assert page.evaluate("funnelrec.q === undefined || Array.isArray(funnelrec.q)")


def test_snippet_html_escapes_and_options():
    html = snippet_html('pk_"><script>x</script>', 'https://rec.example/"onload="x/', "ko", respect_dnt=False,
                        consent_required=True, nonce="abc")
    assert "<script>x</script>" not in html and "&quot;&gt;&lt;script&gt;" in html
    assert 'onload="x' not in html
    assert f'src="https://rec.example/&quot;onload=&quot;x/w/{MANIFEST["version"]}/funnelrec.js"' in html
    assert 'data-respect-dnt="false"' in html and 'data-consent="required"' in html
    assert html.count('nonce="abc"') == 3
    plain = snippet_html("pk_1", "https://rec.example", "en")
    assert "data-respect-dnt" not in plain and "data-consent" not in plain and "nonce" not in plain
    assert 'data-endpoint="https://rec.example"' in plain and 'crossorigin="anonymous"' in plain
