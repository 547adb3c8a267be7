"""A visitor's (or logged-in user's) data: export it all, or erase it all (GDPR / PIPA).

Works on a plain sqlite3 connection so the API (through the writer) and the CLI share it.
"""
from __future__ import annotations

import json
import sqlite3


def _visitor_ids(conn: sqlite3.Connection, visitor: str | None, user: str | None) -> list[str]:
    ids = set()
    if visitor:
        ids.add(visitor)
    if user:
        ids.update(r[0] for r in conn.execute("SELECT id FROM visitors WHERE user_id=?", (user,)))
        ids.update(r[0] for r in conn.execute("SELECT DISTINCT visitor FROM events WHERE user_id=?", (user,)))
    return sorted(ids)


def _where(visitors: list[str], user: str | None, vcol: str = "visitor", ucol: str = "user_id") -> tuple[str, list]:
    parts, args = [], []
    if visitors:
        parts.append(f"{vcol} IN ({','.join('?' * len(visitors))})")
        args += visitors
    if user:
        parts.append(f"{ucol} = ?")
        args.append(user)
    return " OR ".join(parts) or "0", args


def export(conn: sqlite3.Connection, visitor: str | None = None, user: str | None = None) -> dict:
    vids = _visitor_ids(conn, visitor, user)
    w, a = _where(vids, user)
    cols = ["event_id", "type", "ts", "received", "visitor", "session", "user_id", "product", "page", "rec_id", "data", "source"]
    events = []
    for row in conn.execute(f"SELECT {', '.join(cols)} FROM events WHERE {w} ORDER BY ts", a):
        d = dict(zip(cols, row))
        d["data"] = json.loads(d["data"])
        events.append(d)
    lcols = ["order_id", "product", "event_id", "visitor", "session", "user_id", "quantity", "price", "currency", "ts"]
    lines = [dict(zip(lcols, r)) for r in conn.execute(f"SELECT {', '.join(lcols)} FROM order_lines WHERE {w}", a)]
    rcols = ["id", "product", "user_id", "visitor", "rating", "text", "ts"]
    reviews = [dict(zip(rcols, r)) for r in conn.execute(f"SELECT {', '.join(rcols)} FROM reviews WHERE {w}", a)]
    vw, va = _where(vids, user, vcol="id")
    vcols = ["id", "user_id", "first_seen", "last_seen"]
    visitors = [dict(zip(vcols, r)) for r in conn.execute(f"SELECT {', '.join(vcols)} FROM visitors WHERE {vw}", va)]
    scols = ["rec_id", "ts", "visitor", "session", "user_id", "page", "slot", "placement", "strategy", "variant",
             "config_version", "products", "sources"]
    served = []
    for row in conn.execute(f"SELECT {', '.join(scols)} FROM rec_served WHERE {w} ORDER BY ts", a):
        d = dict(zip(scols, row))
        d["products"], d["sources"] = json.loads(d["products"]), json.loads(d["sources"])
        served.append(d)
    profile = None
    if user:
        ucols = ["id", "gender", "birth_year", "age_band", "interests", "segment", "attrs", "updated_at"]
        row = conn.execute(f"SELECT {', '.join(ucols)} FROM users WHERE id=?", (user,)).fetchone()
        profile = dict(zip(ucols, row)) if row else None
    return {"visitors": visitors, "profile": profile, "events": events, "order_lines": lines, "reviews": reviews,
            "recommendations_served": served}


def erase(conn: sqlite3.Connection, visitor: str | None = None, user: str | None = None) -> dict:
    """Delete every row about the visitor / user. Run inside the writer's transaction."""
    vids = _visitor_ids(conn, visitor, user)
    w, a = _where(vids, user)
    memo = getattr(conn, "memo", None)
    if memo is not None:
        memo.clear()  # the writer's memory of visitor rows it wrote
    out = {}
    for table in ("events", "order_lines", "reviews", "rec_served"):
        out[table] = conn.execute(f"DELETE FROM {table} WHERE {w}", a).rowcount
    vw, va = _where(vids, user, vcol="id")
    out["visitors"] = conn.execute(f"DELETE FROM visitors WHERE {vw}", va).rowcount
    out["profile"] = conn.execute("DELETE FROM users WHERE id=?", (user,)).rowcount if user else 0
    # every worker's live state holds visitors' latest events in memory: this count, which
    # ``LiveState.sync`` reads when the shard changed, tells them to forget what they hold
    # (no id is written: the marker says only that an erasure happened)
    conn.execute("INSERT INTO meta (key, value) VALUES ('erasures', '1') ON CONFLICT (key)"
                 " DO UPDATE SET value = CAST(value AS INTEGER) + 1")
    return out
