"""Catalog records: products, user profiles, reviews. Validated with msgspec like events.

CSV imports arrive as strings; ``coerce_csv`` turns them into the types below first
(numbers, booleans, JSON or comma-separated lists) so both paths share one validation.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Optional, Union

import msgspec
from msgspec import Meta, Struct

ProductId = Annotated[str, Meta(min_length=1, max_length=128)]
HttpUrl = Annotated[str, Meta(max_length=2048, pattern=r"^https?://[^\s]+$")]
Attr = Union[str, int, float, bool, None, list[str]]


class Product(Struct, kw_only=True, forbid_unknown_fields=True):
    id: ProductId
    title: Annotated[str, Meta(max_length=1000)] = ""
    description: Annotated[str, Meta(max_length=100_000)] = ""
    category: Union[Annotated[str, Meta(max_length=1000)], list[str]] = ""
    price: Optional[Annotated[float, Meta(ge=0, le=1e12)]] = None
    currency: Optional[Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")]] = None
    image: Optional[HttpUrl] = None
    url: Optional[HttpUrl] = None
    in_stock: bool = True
    brand: Optional[Annotated[str, Meta(max_length=200)]] = None
    tags: list[Annotated[str, Meta(max_length=200)]] = []
    attrs: dict[str, Attr] = {}
    created_at: Optional[Union[int, str]] = None


class UserProfile(Struct, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, Meta(min_length=1, max_length=128)]
    gender: Optional[str] = None
    birth_year: Optional[Annotated[int, Meta(ge=1900, le=2100)]] = None
    age_band: Optional[Annotated[str, Meta(max_length=32)]] = None
    age: Optional[Annotated[int, Meta(ge=0, le=130)]] = None
    interests: list[Annotated[str, Meta(max_length=200)]] = []
    segment: Optional[Annotated[str, Meta(max_length=64)]] = None
    attrs: dict[str, Attr] = {}


class ReviewIn(Struct, kw_only=True, forbid_unknown_fields=True):
    product: ProductId
    id: Optional[Annotated[str, Meta(min_length=1, max_length=128)]] = None
    user: Optional[Annotated[str, Meta(max_length=128)]] = None
    visitor: Optional[Annotated[str, Meta(max_length=64)]] = None
    rating: Optional[Annotated[float, Meta(ge=0, le=5)]] = None
    text: Annotated[str, Meta(max_length=20_000)] = ""
    ts: Optional[Union[int, str]] = None


GENDERS = {"f": "f", "female": "f", "w": "f", "woman": "f", "여": "f", "여성": "f",
           "m": "m", "male": "m", "man": "m", "남": "m", "남성": "m", "x": "x", "other": "x"}

KINDS = {"products": Product, "users": UserProfile, "reviews": ReviewIn}


def parse_time_ms(value, default: int) -> int:
    """ms epoch int, seconds epoch int, or an ISO 8601 / 'YYYY-MM-DD HH:MM' string."""
    if value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        v = int(value)
        return v * 1000 if v < 100_000_000_000 else v
    s = str(value).strip()
    if s.lstrip("-").isdigit():
        return parse_time_ms(int(s), default)
    for fmt in (None, "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M"):
        try:
            t = dt.datetime.fromisoformat(s) if fmt is None else dt.datetime.strptime(s, fmt)
        except ValueError:
            continue
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return int(t.timestamp() * 1000)
    raise ValueError(f"cannot read time {value!r}: use ms since the epoch or ISO 8601")


def age_band(birth_year: int | None, age: int | None, now_year: int) -> str | None:
    if age is None and birth_year is not None:
        age = now_year - birth_year
    if age is None:
        return None
    for lo, hi in ((0, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64)):
        if lo <= age <= hi:
            return f"{lo}-{hi}"
    return "65+"


_LIST_FIELDS = {"tags", "interests"}
_NUM_FIELDS = {"price": float, "rating": float, "birth_year": int, "age": int}
_BOOL_FIELDS = {"in_stock"}


def csv_cells(row: dict):
    """(column, value) of a CSV row, both stripped, empty cells left out."""
    for k, v in row.items():
        if k is None or v is None:
            continue
        v = v.strip() if isinstance(v, str) else v
        if v != "":
            yield k.strip(), v


def coerce_csv(row: dict) -> dict:
    """A CSV row (all strings) -> the JSON types of the records above. Empty cells are absent;
    ``attr.<name>`` columns become ``attrs``; list columns take JSON or ``a|b`` / ``a,b``."""
    out: dict = {}
    attrs: dict = {}
    for k, v in csv_cells(row):
        if k.startswith("attr.") or k.startswith("attrs."):
            attrs[k.split(".", 1)[1]] = v
        elif k in _LIST_FIELDS:
            out[k] = _list_cell(v)
        elif k in _NUM_FIELDS:
            try:
                out[k] = _NUM_FIELDS[k](float(v)) if _NUM_FIELDS[k] is int else float(v)
            except ValueError:
                out[k] = v  # left for validation to reject with its reason
        elif k in _BOOL_FIELDS:
            out[k] = v.lower() in ("1", "true", "yes", "y", "t", "in_stock", "instock")
        elif k == "attrs":
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        elif k in ("created_at", "ts") and v.lstrip("-").isdigit():
            out[k] = int(v)
        else:
            out[k] = v
    if attrs:
        out.setdefault("attrs", {}).update(attrs)
    return out


def _list_cell(v: str) -> list[str]:
    if v.startswith("["):
        try:
            data = json.loads(v)
            if isinstance(data, list):
                return [str(x) for x in data]
        except ValueError:
            pass
    sep = "|" if "|" in v else ","
    return [p.strip() for p in v.split(sep) if p.strip()]


def convert(kind: str, obj) -> Struct:
    return msgspec.convert(obj, KINDS[kind])
