"""The event types the public endpoint and the importer accept, validated with msgspec.

msgspec decodes and validates JSON in one pass in C (about 1 µs per event here), which is what
lets one process take tens of thousands of events per second; every event of a batch is
validated on its own so that one bad event is rejected with its index and reason and the rest
are kept.

Common fields of every event:
  id       client-made event id (1-64 chars of ``A-Za-z0-9_.:-``); a repeat is stored once
  type     one of the tags below
  visitor  first-party visitor id;  session: visit id;  user: optional logged-in user id
  ts       when it happened, integer ms since the epoch (client clock)
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Optional, Union

import msgspec
from msgspec import Meta, Struct

# Ids are checked for their characters after decoding, in one regex over all of an event's ids
# (``_check_ids``): a msgspec ``pattern`` per field cost 1.5 of the 2.3 µs of decoding an event.
ID_CHARS = r"[A-Za-z0-9_.:\-]"
Id = Annotated[str, Meta(min_length=1, max_length=64)]
ProductId = Annotated[str, Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, Meta(max_length=512)]
LongText = Annotated[str, Meta(max_length=2048)]
Ms = Annotated[int, Meta(ge=0, le=30 * 24 * 3600 * 1000)]  # a duration, at most 30 days
Ts = Annotated[int, Meta(ge=946_684_800_000, le=4_102_444_800_000)]  # 2000-01-01 .. 2100-01-01
Pct = Annotated[float, Meta(ge=0, le=100)]
Qty = Annotated[float, Meta(gt=0, le=1_000_000)]
Price = Annotated[float, Meta(ge=0, le=1e12)]
Currency = Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")]

PageType = Literal["main", "category", "search", "detail", "cart", "checkout", "purchase", "other"]


class Base(Struct, kw_only=True, tag_field="type", omit_defaults=True):
    id: Id
    visitor: Id
    session: Id
    ts: Ts
    user: Optional[Id] = None
    props: Optional[dict[str, Union[str, int, float, bool, None]]] = None


class PageView(Base, tag="page_view"):
    page: PageType
    url: Optional[LongText] = None
    referrer: Optional[LongText] = None
    title: Optional[ShortText] = None
    product: Optional[ProductId] = None
    category: Optional[ShortText] = None
    query: Optional[ShortText] = None
    device: Optional[Literal["desktop", "mobile", "tablet"]] = None


class ContentMs(Struct, omit_defaults=True, forbid_unknown_fields=True):
    description: Ms = 0
    reviews: Ms = 0
    images: Ms = 0


class Engagement(Base, tag="engagement"):
    """Engaged time on a page (and its product on a detail page), sent as deltas."""
    page: PageType = "other"
    product: Optional[ProductId] = None
    engaged_ms: Ms = 0
    visible_ms: Ms = 0
    scroll_pct: Pct = 0
    scroll_ms: Ms = 0
    content_ms: Optional[ContentMs] = None


class VisitStart(Base, tag="visit_start"):
    referrer: Optional[LongText] = None
    landing: Optional[LongText] = None
    device: Optional[Literal["desktop", "mobile", "tablet"]] = None


class VisitEnd(Base, tag="visit_end"):
    duration_ms: Ms = 0
    engaged_ms: Ms = 0
    pages: Annotated[int, Meta(ge=0, le=100_000)] = 0


class Search(Base, tag="search"):
    query: Annotated[str, Meta(min_length=1, max_length=512)]
    results: Optional[Annotated[int, Meta(ge=0, le=10_000_000)]] = None


class AddToCart(Base, tag="add_to_cart"):
    product: ProductId
    quantity: Qty = 1
    price: Optional[Price] = None
    currency: Optional[Currency] = None


class RemoveFromCart(Base, tag="remove_from_cart"):
    product: ProductId
    quantity: Qty = 1


class Line(Struct, forbid_unknown_fields=True):
    product: ProductId
    quantity: Qty = 1
    price: Optional[Price] = None


class Checkout(Base, tag="checkout"):
    lines: Annotated[list[Line], Meta(max_length=500)] = []
    currency: Optional[Currency] = None


class Purchase(Base, tag="purchase"):
    order: Annotated[str, Meta(min_length=1, max_length=128)]
    lines: Annotated[list[Line], Meta(min_length=1, max_length=500)]
    currency: Optional[Currency] = None
    total: Optional[Price] = None


class RecImpression(Base, tag="rec_impression"):
    rec_id: Id
    product: ProductId
    slot: Optional[Annotated[str, Meta(max_length=64)]] = None
    position: Optional[Annotated[int, Meta(ge=0, le=1000)]] = None


class RecClick(Base, tag="rec_click"):
    rec_id: Id
    product: ProductId
    slot: Optional[Annotated[str, Meta(max_length=64)]] = None
    position: Optional[Annotated[int, Meta(ge=0, le=1000)]] = None


class Review(Base, tag="review"):
    product: ProductId
    rating: Optional[Annotated[float, Meta(ge=0, le=5)]] = None
    text: Optional[Annotated[str, Meta(max_length=10_000)]] = None


Event = Union[PageView, Engagement, VisitStart, VisitEnd, Search, AddToCart, RemoveFromCart, Checkout,
              Purchase, RecImpression, RecClick, Review]
EVENT_TYPES = tuple(sorted(cls.__struct_config__.tag for cls in Event.__args__))  # type: ignore[attr-defined]


class Context(Struct, omit_defaults=True):
    webdriver: bool = False
    dnt: bool = False
    lang: Optional[ShortText] = None
    tz: Optional[ShortText] = None


class Batch(Struct):
    """The public body: ``{"site_key": "pk_...", "events": [...], "ctx": {...}}``."""
    events: list[msgspec.Raw]
    site_key: Optional[str] = None
    sent_at: Optional[int] = None
    ctx: Optional[Context] = None


class TypedBatch(Struct):
    """The same body with every event decoded in the one pass (the fast path of ``decode_batch``)."""
    events: list[Event]
    site_key: Optional[str] = None
    sent_at: Optional[int] = None
    ctx: Optional[Context] = None


_event_decoder = msgspec.json.Decoder(Event)
_batch_decoder = msgspec.json.Decoder(Batch)
_typed_batch_decoder = msgspec.json.Decoder(TypedBatch)
_convert_event = msgspec.convert
_ID_FIELDS = ("id", "visitor", "session", "user", "rec_id")
_IDS_OK = re.compile(f"{ID_CHARS}+(?:\x00{ID_CHARS}+)*").fullmatch
_ID_OK = re.compile(f"{ID_CHARS}+").fullmatch


def _check_ids(ev: Event) -> Event:
    user = ev.user
    rec_id = getattr(ev, "rec_id", None)
    joined = f"{ev.id}\x00{ev.visitor}\x00{ev.session}"
    if user is not None:
        joined += "\x00" + user
    if rec_id is not None:
        joined += "\x00" + rec_id
    if _IDS_OK(joined) is None:
        for name in _ID_FIELDS:
            value = getattr(ev, name, None)
            if value is not None and _ID_OK(value) is None:
                raise msgspec.ValidationError(f"Expected `str` of the characters A-Za-z0-9_.:- - at `$.{name}`")
    return ev


def decode_batch(body: bytes) -> Batch | TypedBatch:
    """The public body. Usually every event is valid and they are all decoded in one msgspec call
    (``TypedBatch``: 40% less than one call per event); when any is not, the events come back
    as ``msgspec.Raw`` (``Batch``) for ``decode_event`` one by one, so each bad one is rejected
    with its index and reason. Either way ids are checked with ``check_ids``/``decode_event``."""
    try:
        return _typed_batch_decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError):  # ValueError: e.g. a lone surrogate
        return _batch_decoder.decode(body)


def check_ids(ev: Event) -> Event:
    """The id character rule for an event decoded by the typed fast path."""
    return _check_ids(ev)


def decode_event(raw: bytes | msgspec.Raw) -> Event:
    return _check_ids(_event_decoder.decode(raw))


def event_from_obj(obj: dict) -> Event:
    """Validate an already-parsed object (the CSV/NDJSON importer)."""
    return _check_ids(_convert_event(obj, Event))


def explain(exc: Exception) -> str:
    """The validation message, with the list of types when the type is missing or unknown."""
    msg = str(exc)
    if "missing required field `type`" in msg or ("Invalid value" in msg and "`$.type`" in msg):
        return msg + "; expected one of: " + ", ".join(EVENT_TYPES)
    return msg
