"""Catalog and profile API (secret key, server to server).

POST   /v1/catalog/{products|users|reviews}   bulk upsert: JSON array, {"products": [...]} or NDJSON
DELETE /v1/catalog/products                   {"ids": [...]}
GET    /v1/catalog/products/{id}              one product
GET    /v1/catalog/stats                      counts of what the shard holds
"""
from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..auth import secret_tenant
from ..errors import ApiError
from ..ingest.handler import BadLine, parse_records, read_body
from .schema import KINDS, convert
from .store import UPSERT_JOBS, delete_products_job, product_from_row, PRODUCT_COLUMNS


def validate_records(kind: str, records: list) -> tuple[list, list[dict]]:
    valid, rejected = [], []
    for i, rec in enumerate(records):
        if isinstance(rec, BadLine):
            rejected.append({"index": i, "reason": rec.reason})
            continue
        try:
            valid.append(convert(kind, rec))
        except msgspec.ValidationError as exc:
            rejected.append({"index": i, "reason": str(exc)})
    return valid, rejected


async def upsert(request: Request) -> JSONResponse:
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise ApiError(404, "not_found", f"unknown catalog kind {kind!r}; use one of {', '.join(KINDS)}")
    tenant = secret_tenant(request)
    settings = request.app.state.settings
    body = await read_body(request, settings.max_import_body_bytes)
    records = parse_records(body, request.headers.get("content-type", ""))
    if len(records) > settings.max_import_records:
        raise ApiError(413, "too_many_records", f"{len(records)} records; the limit is {settings.max_import_records}")
    valid, rejected = validate_records(kind, records)
    stored = 0
    if valid:
        shard = request.app.state.shards.get(tenant)
        stored = await shard.write(UPSERT_JOBS[kind](valid))
        request.app.state.notify_catalog(tenant, shard)
    return JSONResponse({"ok": True, "stored": stored, "rejected": rejected[:1000], "rejected_count": len(rejected)})


async def delete_products(request: Request) -> JSONResponse:
    tenant = secret_tenant(request)
    body = await read_body(request, request.app.state.settings.max_import_body_bytes)
    try:
        data = msgspec.json.decode(body, type=dict[str, list[str]])
        ids = data["ids"]
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
        raise ApiError(400, "invalid_body", 'expected {"ids": ["product id", ...]}')
    shard = request.app.state.shards.get(tenant)
    deleted = await shard.write(delete_products_job(ids))
    request.app.state.notify_catalog(tenant, shard)
    return JSONResponse({"ok": True, "deleted": deleted})


async def get_product(request: Request) -> JSONResponse:
    tenant = secret_tenant(request)
    shard = request.app.state.shards.get(tenant)
    async with shard.read() as conn:
        cur = await conn.execute(f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products WHERE id=?", (request.path_params["id"],))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, "not_found", "no such product")
    return JSONResponse({"ok": True, "product": product_from_row(row)})


async def stats(request: Request) -> JSONResponse:
    tenant = secret_tenant(request)
    shard = request.app.state.shards.get(tenant)
    out = {}
    async with shard.read() as conn:
        for table in ("products", "users", "reviews", "events", "order_lines", "visitors"):
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            out[table] = (await cur.fetchone())[0]
        cur = await conn.execute("SELECT reason, sum(count) FROM drops GROUP BY reason")
        out["dropped"] = {r[0]: r[1] for r in await cur.fetchall()}
        cur = await conn.execute("SELECT max(ts) FROM events")
        out["clock_ms"] = (await cur.fetchone())[0]
    return JSONResponse({"ok": True, "tenant": tenant.slug, "counts": out})
