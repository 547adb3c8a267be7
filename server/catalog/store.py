"""Catalog writes (writer jobs) and reads. Validation happens before; these only store.

Jobs are ``functools.partial`` of module functions, so they pickle to the writer process."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import sqlite3
import time

from .schema import GENDERS, Product, ReviewIn, UserProfile, age_band, parse_time_ms

UPSERT_PRODUCT = """
INSERT INTO products (id, title, description, category, price, currency, image, url, in_stock, brand, tags, attrs, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
ON CONFLICT(id) DO UPDATE SET title=excluded.title, description=excluded.description, category=excluded.category,
  price=excluded.price, currency=excluded.currency, image=excluded.image, url=excluded.url, in_stock=excluded.in_stock,
  brand=excluded.brand, tags=excluded.tags, attrs=excluded.attrs,
  created_at=CASE WHEN ? THEN excluded.created_at ELSE products.created_at END, updated_at=excluded.updated_at
"""


def product_row(p: Product, now_ms: int) -> tuple:
    category = " > ".join(c.strip() for c in p.category if c.strip()) if isinstance(p.category, list) else p.category.strip()
    created_given = p.created_at not in (None, "")
    created = parse_time_ms(p.created_at, now_ms)
    return (p.id, p.title, p.description, category, p.price, p.currency.upper() if p.currency else None, p.image, p.url,
            int(p.in_stock), p.brand, json.dumps(p.tags, ensure_ascii=False), json.dumps(p.attrs, ensure_ascii=False),
            created, now_ms, int(created_given))


def upsert_products_job(products: list[Product]):
    now_ms = int(time.time() * 1000)
    rows = [product_row(p, now_ms) for p in products]
    return functools.partial(execute_rows, UPSERT_PRODUCT, rows)


def execute_rows(sql: str, rows: list[tuple], conn: sqlite3.Connection) -> int:
    """The upsert jobs (module level so they pickle to the writer process): returns len(rows)."""
    conn.executemany(sql, rows)
    return len(rows)


def delete_products_job(ids: list[str]):
    return functools.partial(delete_products, ids)


def delete_products(ids: list[str], conn: sqlite3.Connection) -> int:
    n = 0
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        n += conn.execute("DELETE FROM products WHERE id IN (" + ",".join("?" * len(chunk)) + ")", chunk).rowcount
    return n


def user_row(u: UserProfile, now_ms: int) -> tuple:
    gender = GENDERS.get((u.gender or "").strip().lower()) if u.gender else None
    year = dt.datetime.now(dt.timezone.utc).year
    band = u.age_band or age_band(u.birth_year, u.age, year)
    return (u.id, gender, u.birth_year, band, json.dumps(u.interests, ensure_ascii=False), u.segment,
            json.dumps(u.attrs, ensure_ascii=False), now_ms)


def upsert_users_job(users: list[UserProfile]):
    now_ms = int(time.time() * 1000)
    rows = [user_row(u, now_ms) for u in users]
    return functools.partial(execute_rows, UPSERT_USER, rows)


UPSERT_USER = (
    "INSERT INTO users (id, gender, birth_year, age_band, interests, segment, attrs, updated_at) VALUES (?,?,?,?,?,?,?,?)"
    " ON CONFLICT(id) DO UPDATE SET gender=excluded.gender, birth_year=excluded.birth_year, age_band=excluded.age_band,"
    " interests=excluded.interests, segment=excluded.segment, attrs=excluded.attrs, updated_at=excluded.updated_at"
)


def review_row(r: ReviewIn, now_ms: int) -> tuple:
    rid = r.id or "r_" + hashlib.sha1(f"{r.product}\x00{r.user or r.visitor or ''}\x00{r.text}".encode()).hexdigest()[:20]
    return (rid, r.product, r.user, r.visitor, r.rating, r.text, parse_time_ms(r.ts, now_ms))


def upsert_reviews_job(reviews: list[ReviewIn]):
    now_ms = int(time.time() * 1000)
    rows = [review_row(r, now_ms) for r in reviews]
    return functools.partial(execute_rows, UPSERT_REVIEW, rows)


UPSERT_REVIEW = (
    "INSERT INTO reviews (id, product, user_id, visitor, rating, text, ts) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT(id) DO UPDATE SET product=excluded.product, user_id=excluded.user_id, visitor=excluded.visitor,"
    " rating=excluded.rating, text=excluded.text, ts=excluded.ts"
)


UPSERT_JOBS = {"products": upsert_products_job, "users": upsert_users_job, "reviews": upsert_reviews_job}

PRODUCT_COLUMNS = ("id", "title", "description", "category", "price", "currency", "image", "url", "in_stock", "brand",
                   "tags", "attrs", "created_at", "updated_at")


def product_from_row(row) -> dict:
    d = dict(zip(PRODUCT_COLUMNS, row))
    d["in_stock"] = bool(d["in_stock"])
    d["tags"] = json.loads(d["tags"])
    d["attrs"] = json.loads(d["attrs"])
    return d
