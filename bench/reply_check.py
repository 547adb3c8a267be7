"""Reply-identity check of ``POST /v1/recommend``: status, headers and body of every reply (and the
``rec_served`` rows), before/after, equal apart from the ``rec_id``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.reply_check --out /tmp/after.json [--root TREE]
    .venv/bin/python -m bench.reply_check --compare /tmp/before.json /tmp/after.json

``bench/slot_check.py`` checks what ``run_slot`` computes; this checks the request path around it
(body reading and decoding, tenant, origin and CORS, validation, live context, result cache,
variants, the reply's bytes, the served rows). The in-process set-up of ``bench/profile_serve.py``
(online-retail + ``--visitors`` bench visitors of ``bench/serve.py``, the app called directly,
no HTTP) answers, in this order: ``bench/serve.py``'s request bodies; hand-made cases (bad JSON,
keys, origins, new and unknown visitors, empty cart, unknown product, several slots, rules and
excludes, search, checkout and purchase pages, a user with a profile, aliases, chunked and
oversized bodies, validation errors); a visitor's new event then their next request; a strategy
with variants; and the request bodies again (answered by the result cache). The request clock
(``time.time`` as ``server.serving`` sees it) is frozen, so the hour and time windows are the
same in both runs; each ``rec_id`` is masked, the ``content-length`` header checked against the
body and then masked with it.

``--root TREE`` imports ``server`` from another checkout (e.g. ``git archive`` of the session's
start unpacked in /tmp) so that the code before a change writes the reference file with the same
inputs.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

FROZEN_S = 1_796_000_000.0  # the request clock of both runs (2026-11-29)
ORIGIN = b"https://shop.example"
UA = b"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"
_REC_ID = re.compile(rb'"r_[0-9a-f]+"')


async def call(app, path: str, body: bytes, headers: list | None = None, chunks: int = 0) -> dict:
    """One request through the app's ASGI interface; ``chunks``: the body in that many messages
    without a ``content-length`` (a chunked upload)."""
    if headers is None:
        headers = [(b"origin", ORIGIN), (b"content-type", b"text/plain")]
    headers = [(b"host", b"bench"), (b"user-agent", UA), *headers]
    if chunks:
        step = max(1, -(-len(body) // chunks))
        msgs = [{"type": "http.request", "body": body[i:i + step], "more_body": i + step < len(body)}
                for i in range(0, len(body), step)] or [{"type": "http.request", "body": b"", "more_body": False}]
    else:
        headers.append((b"content-length", str(len(body)).encode()))
        msgs = [{"type": "http.request", "body": body, "more_body": False}]
    msgs.reverse()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    sent: list = []

    async def receive():
        return msgs.pop() if msgs else {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    reply = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = []
    for k, v in start.get("headers", []):
        if k.lower() == b"content-length":
            v = b"=len(body)" if int(v) == len(reply) else v + b" != len(body) " + str(len(reply)).encode()
        hdrs.append([k.decode("latin-1"), v.decode("latin-1")])
    return {"status": start["status"], "headers": hdrs, "body": _REC_ID.sub(b'"r_*"', reply).decode()}


def hand_made(site_key: str, people: list[dict], categories: list[str], products: list[str]) -> list[tuple]:
    """(label, body, headers or None, chunks) of the cases beyond the serve mix."""
    p0, p1 = people[0], people[1]
    nb = {"site_key": site_key, "visitor": p0["visitor"], "session": p0["session"], "locale": "en"}

    def rec(label, headers=None, chunks=0, **over):
        return label, json.dumps({**nb, **over}, separators=(",", ":")).encode(), headers, chunks

    main = [{"id": "home", "placement": "main", "count": 8}]
    plain = [(b"origin", ORIGIN), (b"content-type", b"text/plain")]
    return [
        ("bad json", b"{not json", None, 0),
        ("not an object", b"[1,2,3]", None, 0),
        ("empty body", b"", None, 0),
        ("no slots", json.dumps({**nb, "slots": []}).encode(), None, 0),
        rec("unknown site key", site_key="pk_nope", page={"type": "main"}, slots=main),
        rec("no site key", site_key=None, page={"type": "main"}, slots=main),
        rec("site key in header", [*plain, (b"x-funnelrec-key", site_key.encode())], site_key=None,
            page={"type": "main"}, slots=main),
        rec("wrong origin", [(b"origin", b"https://evil.example"), (b"content-type", b"text/plain")],
            page={"type": "main"}, slots=main),
        rec("no origin", [(b"content-type", b"application/json")], page={"type": "main"}, slots=main),
        rec("origin with a slash", [(b"origin", ORIGIN + b"/"), (b"content-type", b"text/plain")],
            page={"type": "main"}, slots=main),
        rec("new visitor", visitor="never-seen", session="s-new", page={"type": "main"}, slots=main),
        rec("no visitor", visitor=None, session=None, page={"type": "main"}, slots=main),
        rec("session only", visitor=None, session="s-only", page={"type": "detail", "product": products[3]},
            slots=[{"id": "sim", "placement": "detail_similar", "count": 6}]),
        rec("empty cart", page={"type": "cart", "cart": []}, slots=[{"id": "c", "placement": "cart", "count": 8}]),
        rec("cart with unknown", page={"type": "cart", "cart": [products[0], "no-such-product", products[1]]},
            slots=[{"id": "c", "placement": "cart", "count": 8}]),
        rec("unknown product", page={"type": "detail", "product": "no-such-product"},
            slots=[{"id": "sim", "placement": "detail_similar", "count": 8},
                   {"id": "acc", "placement": "detail_complements", "count": 8}]),
        rec("several slots", page={"type": "detail", "product": p0["viewed"][0], "cart": p0["cart"],
                                   "category": categories[2]},
            slots=[{"id": "a", "placement": "detail_similar", "count": 5},
                   {"id": "b", "placement": "detail_complements", "count": 7},
                   {"id": "c", "placement": "main", "count": 4},
                   {"id": "d", "placement": "category", "count": 3},
                   {"id": "e", "placement": "cart", "count": 50}]),
        rec("rules and exclude", page={"type": "detail", "product": p1["viewed"][-1]},
            slots=[{"id": "a", "placement": "detail_similar", "count": 8, "exclude": products[:20],
                    "rules": {"max_per_category": 1, "price_min": 1.0, "price_max": 8.0}},
                   {"id": "b", "placement": "main", "count": 8,
                    "rules": {"boost": [{"category": categories[1], "factor": 3.0}], "exclude_seen": False,
                              "pin": [{"product": products[5], "position": 1}]}}]),
        rec("invalid rules", page={"type": "main"}, slots=[{"id": "a", "placement": "main", "rules": {"nope": 1}}]),
        rec("count too big", page={"type": "main"}, slots=[{"id": "a", "placement": "main", "count": 51}]),
        rec("duplicate slot ids", page={"type": "main"}, slots=[{"id": "a"}, {"id": "a"}]),
        rec("search", page={"type": "search", "query": "red mug"},
            slots=[{"id": "s", "placement": "search", "count": 8}]),
        rec("search no results", page={"type": "search", "query": "zzqxv"},
            slots=[{"id": "s", "placement": "search", "count": 8}]),
        rec("checkout", page={"type": "checkout", "cart": p0["cart"]},
            slots=[{"id": "co", "placement": "checkout", "count": 8}]),
        rec("purchase", page={"type": "purchase", "order": p1["cart"]},
            slots=[{"id": "pu", "placement": "purchase", "count": 8}]),
        rec("user with a profile", user="u-profiled", page={"type": "main"}, slots=main),
        rec("user without a profile", user="u-unknown", page={"type": "main"}, slots=main),
        rec("aliases and unknown placement", page={"type": "main"},
            slots=[{"id": "a", "placement": "home", "count": 3}, {"id": "b", "placement": "detail", "count": 3},
                   {"id": "c", "placement": "no-such-placement", "count": 3}]),
        rec("locale default", locale=None, page={"type": "category", "category": categories[0]},
            slots=[{"id": "cat", "placement": "category", "count": 8}]),
        rec("chunked body", chunks=3, page={"type": "main"}, slots=main),
        ("oversized body", b'{"slots":[' + b" " * 300_000 + b"]}", None, 0),
        ("oversized chunked body", b'{"slots":[' + b" " * 300_000 + b"]}", None, 4),
    ]


def run(visitors: int, requests: int, csv: str | None) -> dict:
    from bench.retail import find_csv, load, read_invoices
    from bench.serve import request_bodies, seed_history
    from server.app import create_app
    from server.config import Settings
    from server.placements import config as strategies
    import server.serving as serving

    serving.time = types.SimpleNamespace(**{**vars(time), "time": lambda: FROZEN_S})  # the request clock
    tmp = Path(tempfile.mkdtemp(prefix="funnelrec-replycheck-"))
    settings = Settings.from_env(env={}, data_dir=tmp / "data", rate_limit_rps=0.0, ranker_enabled=False,
                                 writer_mode="thread", builder_mode="thread", log_level="warning")
    app = create_app(settings)
    t, secret = app.state.registry.create("retail", origins=["https://shop.example"], currency="GBP")
    shard = app.state.shards.get(t)
    products, invoices = read_invoices(find_csv(csv))
    load(shard, products, invoices)
    people = seed_history(shard, invoices, visitors)
    categories = sorted({p["category"] for p in products})
    bodies = request_bodies(t.site_key, people, categories, requests)
    cases = hand_made(t.site_key, people, categories, [p["id"] for p in products])
    clock = max(ts for _, _, ts, _ in invoices)
    out: dict = {"replies": []}

    def note(label, reply):
        out["replies"].append({"case": label, **reply})

    async def go():
        async with app.router.lifespan_context(app):
            user = json.dumps([{"id": "u-profiled", "gender": "f", "birth_year": 1990, "interests": ["kitchen"]}]).encode()
            r = await call(app, "/v1/catalog/users", user,
                           [(b"authorization", b"Bearer " + secret.encode()), (b"content-type", b"application/json")])
            assert r["status"] == 200, r
            app.state.engine.models.schedule(shard, force=True).result()
            note("first", await call(app, "/v1/recommend", bodies[0]))
            for task in list(app.state.engine.preloads):  # the live state's warm start (as profile_serve)
                await task
            for k, b in enumerate(bodies):
                note(f"serve {k}", await call(app, "/v1/recommend", b))
            for label, b, headers, chunks in cases:
                note(label, await call(app, "/v1/recommend", b, headers, chunks))
            # a new event of a visitor, then their next requests (the live state's tail)
            p = people[2]
            ev = {"site_key": t.site_key, "events": [
                {"id": "rc-1", "type": "page_view", "visitor": p["visitor"], "session": p["session"],
                 "ts": clock + 5_000, "page": "detail", "product": p["cart"][-1]},
                {"id": "rc-2", "type": "add_to_cart", "visitor": p["visitor"], "session": p["session"],
                 "ts": clock + 6_000, "page": "detail", "product": p["cart"][-1]}]}
            note("event", await call(app, "/v1/events", json.dumps(ev).encode()))
            for b in bodies:
                if json.loads(b)["visitor"] == p["visitor"]:
                    note("after event", await call(app, "/v1/recommend", b))
            # a strategy with two variants of main
            doc = {"placements": {"main": {"variants": [
                {"name": "A", "share": 50},
                {"name": "B", "share": 50, "sources": [{"recommender": "popular_now", "weight": 1.0}]}]}}}
            assert not strategies.validate(doc), strategies.validate(doc)
            await shard.write(strategies.store_job(doc))
            app.state.engine.configs.invalidate(t.slug)
            for k, b in enumerate(bodies[:60]):
                note(f"variants {k}", await call(app, "/v1/recommend", b))
            for k, b in enumerate(bodies):  # again: the result cache's answers
                note(f"again {k}", await call(app, "/v1/recommend", b))
            app.state.engine.served.flush()
            await shard.write(lambda conn: None)  # after the served rows' job
            conn = shard.connect_read()
            try:
                rows = conn.execute("SELECT * FROM rec_served ORDER BY length(rec_id), rec_id").fetchall()
            finally:
                conn.close()
            # rec_ids in issue order: the same time and process prefix, then the counter (hex)
            out["served"] = [[c if not (isinstance(c, str) and c.startswith("r_")) else "r_*" for c in row]
                             for row in rows]
    try:
        asyncio.run(go())
    finally:  # (its data dir: ~110 MB a run)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def compare(a: dict, b: dict) -> int:
    bad = 0
    for part in ("replies", "served"):
        x, y = a.get(part, []), b.get(part, [])
        diff = [k for k in range(max(len(x), len(y))) if k >= len(x) or k >= len(y) or x[k] != y[k]]
        print(f"{part}: {len(x)} / {len(y)}, {len(diff)} differ")
        for k in diff[:8]:
            print(f"  #{k}\n    before {json.dumps(x[k] if k < len(x) else None)[:600]}"
                  f"\n    after  {json.dumps(y[k] if k < len(y) else None)[:600]}")
        bad += len(diff)
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--root", default=None, help="import server from this tree (default: this checkout)")
    ap.add_argument("--visitors", type=int, default=300)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args(argv)
    if a.compare:
        before, after = (json.loads(p.read_text()) for p in a.compare)
        bad = compare(before, after)
        print("IDENTICAL" if not bad else f"{bad} differ")
        return 1 if bad else 0
    from bench.common import RETAIL_CSV, server_from
    root = server_from(a.root)
    csv = a.csv or (str(RETAIL_CSV) if RETAIL_CSV else None)
    out = run(a.visitors, a.requests, csv)
    out["root"] = str(root)
    a.out.write_text(json.dumps(out))
    codes: dict = {}
    for r in out["replies"]:
        codes[r["status"]] = codes.get(r["status"], 0) + 1
    print(f"{len(out['replies'])} replies (status: {codes}), {len(out['served'])} served rows written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
