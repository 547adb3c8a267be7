"""Validated events -> rows in the tenant's shard, as one writer job (one group commit).

A repeated event id is stored once: the job looks up which ids of the batch the shard already
has, inserts only the new ones, and derives ``order_lines`` and ``visitors`` from those alone,
so a retried request changes nothing.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

import msgspec

from .schema import Event, Purchase

_COMMON = ("id", "type", "visitor", "session", "ts", "user")
_to_builtins = msgspec.to_builtins
_encode = msgspec.json.encode

INSERT_EVENT = (
    "INSERT INTO events (event_id, type, ts, received, visitor, session, user_id, product, page, rec_id, data, source)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(event_id) DO NOTHING"
)
INSERT_LINE = (
    "INSERT INTO order_lines (order_id, product, event_id, visitor, session, user_id, quantity, price, currency, ts)"
    " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(order_id, product) DO NOTHING"
)
UPSERT_VISITOR = (
    "INSERT INTO visitors (id, user_id, first_seen, last_seen, events) VALUES (?,?,?,?,?)"
    " ON CONFLICT(id) DO UPDATE SET user_id=coalesce(excluded.user_id, user_id),"
    " first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen),"
    " events=events+excluded.events"
)


@dataclass
class StoreResult:
    accepted: int = 0
    duplicates: int = 0


def event_row(ev: Event, received: int, source: str) -> tuple:
    d = _to_builtins(ev)
    for k in _COMMON:
        d.pop(k, None)
    product = d.get("product")
    page = d.get("page")
    rec_id = d.pop("rec_id", None)
    return (ev.id, ev.__struct_config__.tag, ev.ts, received, ev.visitor, ev.session, ev.user,
            product, page, rec_id, _encode(d).decode() if d else "{}", source)


def store_events_job(events: list[Event], received: int, source: str):
    """Build the writer job that stores ``events``; it returns a StoreResult."""

    def job(conn: sqlite3.Connection) -> StoreResult:
        result = StoreResult()
        seen: set[str] = set()
        unique: list[Event] = []
        for ev in events:
            if ev.id in seen:
                result.duplicates += 1
                continue
            seen.add(ev.id)
            unique.append(ev)
        existing: set[str] = set()
        ids = [ev.id for ev in unique]
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = "SELECT event_id FROM events WHERE event_id IN (" + ",".join("?" * len(chunk)) + ")"
            existing.update(r[0] for r in conn.execute(q, chunk))
        fresh = [ev for ev in unique if ev.id not in existing]
        result.duplicates += len(unique) - len(fresh)
        if not fresh:
            return result
        conn.executemany(INSERT_EVENT, [event_row(ev, received, source) for ev in fresh])
        result.accepted = len(fresh)
        lines = []
        visitors: dict[str, list] = {}
        for ev in fresh:
            v = visitors.get(ev.visitor)
            if v is None:
                visitors[ev.visitor] = [ev.visitor, ev.user, ev.ts, ev.ts, 1]
            else:
                v[1] = ev.user or v[1]
                v[2] = min(v[2], ev.ts)
                v[3] = max(v[3], ev.ts)
                v[4] += 1
            if isinstance(ev, Purchase):
                per_product: dict[str, list] = {}
                for line in ev.lines:
                    agg = per_product.get(line.product)
                    if agg is None:
                        per_product[line.product] = [line.quantity, line.price]
                    else:
                        agg[0] += line.quantity
                        agg[1] = line.price if line.price is not None else agg[1]
                for product, (qty, price) in per_product.items():
                    lines.append((ev.order, product, ev.id, ev.visitor, ev.session, ev.user, qty, price, ev.currency, ev.ts))
        if lines:
            conn.executemany(INSERT_LINE, lines)
        conn.executemany(UPSERT_VISITOR, [tuple(v) for v in visitors.values()])
        return result

    return job


def count_drops_job(reason: str, n: int, when_ms: int):
    day = dt.datetime.fromtimestamp(when_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d")

    def job(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO drops (day, reason, count) VALUES (?,?,?) ON CONFLICT(day, reason) DO UPDATE SET count=count+excluded.count",
            (day, reason, n),
        )

    return job
