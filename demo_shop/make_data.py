"""Derive the demo shop's data from the UCI "Online Retail" invoice lines.

    .venv/bin/python demo_shop/make_data.py [DATA_DIR] [--since YYYY-MM-DD] [--out demo_shop/data]

DATA_DIR is the folder holding ``online-retail/online_retail_*.csv.gz`` (default ``../shared/data``
relative to the repository root). Writes, deterministically:

- ``products.ndjson.gz``: the whole catalog (every stock code sold at least once), with
  id (StockCode), title (the Description, nicely cased), price (the most common unit price, GBP),
  category (a path derived from keywords in the title, see ``CATEGORY_RULES``), in_stock (sold in
  the last ``IN_STOCK_DAYS`` days of the data) and created_at (first time the product was sold, ms).
- ``events.ndjson.gz``: one ``purchase`` event per invoice since ``--since`` (cancellations,
  returns, postage, fees and manual adjustments left out), sorted by time: visitor = the customer
  id without its ".0" (or ``g<invoice>`` for a guest checkout), user = the customer id, session and
  order = the invoice number, ts = the invoice time in ms (the data's UK local times read as UTC),
  lines with product, quantity and unit price.
"""
from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import gzip
import io
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SOURCE_GLOB = "online-retail/online_retail_*.csv.gz"
OUT = Path(__file__).resolve().parent / "data"
DEFAULT_SINCE = "2011-01-01"
IN_STOCK_DAYS = 90

# Stock codes that are not products: postage, carriage, fees, discounts, manual adjustments, samples.
NOT_PRODUCTS = {"POST", "DOT", "M", "m", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "B"}

# First matching rule wins; a rule is (words or phrases in the title, category path). Words match
# whole words, an optional plural "S"/"ES" included ("MUG" matches "MUGS" but not "MUGGLE").
CATEGORY_RULES: list[tuple[tuple[str, ...], str]] = [
    (("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY", "BAUBLE"), "Gifts > Christmas"),
    (("EASTER", "EGG HUNT"), "Gifts > Easter"),
    (("NAPKIN RING",), "Home > Kitchen > Tableware"),
    (("KEY RING", "KEYRING", "KEY-RING"), "Accessories > Keyrings"),
    (("NECKLACE", "NECKLAC", "NECKL", "BRACELET", "EARRINGS", "BROOCH", "HAIRSLIDE", "HAIR CLIP", "HAIRCLIP", "HAIR TIE",
      "HAIR GRIP", "HAIRBAND", "HAIR BAND", "DIAMANTE", "RING", "JEWELLERY", "PHONE CHARM", "BEAD"), "Accessories > Jewellery"),
    (("T-LIGHT", "TEALIGHT", "TEA LIGHT", "CANDLE", "CANDLESTICK", "CANDLESTAND", "VOTIVE", "INCENSE", "OIL BURNER"), "Lighting > Candles & Holders"),
    (("LANTERN", "LAMP", "LAMPSHADE", "LIGHT", "LIGHTS", "LED", "NIGHTLIGHT", "CHANDELIER"), "Lighting > Lamps & Lanterns"),
    (("HOT WATER BOTTLE",), "Home > Textiles > Hot Water Bottles"),
    (("LUNCH BAG", "LUNCHBAG"), "Bags > Lunch Bags"),
    (("LUNCH BOX", "LUNCHBOX", "SNACK BOX", "BREAD BIN", "BISCUIT TIN", "CAKE TIN", "JAR", "STORAGE TIN", "FOOD COVER",
      "FOOD CONTAINER"), "Home > Kitchen > Food Storage"),
    (("MUG",), "Home > Kitchen > Mugs"),
    (("TEACUP", "TEA CUP", "CUP", "SAUCER", "TEAPOT", "TEA SET", "COFFEE", "TEA COSY", "CAFETIERE", "TEA STRAINER"), "Home > Kitchen > Tea & Coffee"),
    (("CAKE CASE", "CAKE CASES", "BAKING", "CAKESTAND", "CAKE STAND", "COOKIE CUTTER", "CUTTERS", "MOULD", "APRON",
      "OVEN GLOVE", "SCALES", "RECIPE", "ROLLING PIN", "ICING", "CUPCAKE", "PETIT FOUR"), "Home > Kitchen > Baking"),
    (("PLATE", "BOWL", "NAPKIN", "CUTLERY", "JUG", "TRAY", "PLACEMAT", "COASTER", "DOILY", "DOILIES", "DOILEY",
      "BEAKER", "TUMBLER", "GLASS", "STRAW", "CHOPSTICK", "TABLECLOTH", "EGG CUP", "DISH", "EGG COSY", "EGG WARMER"), "Home > Kitchen > Tableware"),
    (("KITCHEN", "TEA TOWEL", "PANTRY", "WASHING UP", "SPOON", "SPATULA", "COLANDER", "FRYING PAN", "EGG PAN"), "Home > Kitchen > Utensils"),
    (("BAG", "SHOPPER", "TOTE", "PURSE", "WALLET", "BACKPACK", "RUCKSACK", "HANDBAG", "WASHBAG"), "Bags & Purses"),
    (("WRAP", "GIFT TAG", "TAGS", "RIBBON", "TISSUE", "GIFT BOX", "CELLOPHANE"), "Gifts > Wrapping"),
    (("PARTY", "BUNTING", "BALLOON", "GARLAND", "CONFETTI", "PINATA", "BIRTHDAY", "PAPER CHAIN", "PENNANT", "WINDSOCK"), "Party > Decorations"),
    (("CARD", "GREETING", "ENVELOPE"), "Stationery > Cards"),
    (("NOTEBOOK", "NOTE BOOK", "PEN", "PENCIL", "ERASER", "RUBBER", "STICKER", "MEMO", "JOURNAL", "CALENDAR", "DIARY",
      "NOTEPAD", "NOTE PAD", "RULER", "SHARPENER", "STATIONERY", "CHALK", "CHALKBOARD", "BOOKMARK", "BOOK MARK",
      "ADDRESS BOOK", "SCRAP BOOK", "SKETCHBOOK", "BOOKCOVER", "TAPE", "PAPERWEIGHT"), "Stationery"),
    (("LUGGAGE TAG", "PASSPORT", "PASSPORT COVER", "TRAVEL"), "Accessories > Travel"),
    (("CLOCK",), "Home > Decor > Clocks"),
    (("FRAME", "PHOTO ALBUM", "ALBUM"), "Home > Decor > Photo Frames"),
    (("SIGN", "PLAQUE"), "Home > Decor > Signs"),
    (("DOORMAT", "DOOR MAT"), "Home > Decor > Doormats"),
    (("MIRROR",), "Home > Decor > Mirrors"),
    (("CUSHION", "C/COVER", "THROW", "BLANKET", "QUILT", "PILLOW", "PADS", "FILLER PAD"), "Home > Textiles"),
    (("HOOK", "HANGER", "KNOB", "COAT RACK", "PEG", "DOORSTOP", "DOOR STOP"), "Home > Decor > Hooks & Knobs"),
    (("BATHROOM", "SOAP", "TOWEL", "TOILET", "SPONGE", "BATH"), "Home > Bathroom"),
    (("GARDEN", "PLANT", "PLANTER", "WATERING", "FLOWER POT", "POT", "BIRD FEEDER", "BIRDHOUSE", "BIRD HOUSE",
      "HERB", "SEED", "TROWEL", "WINDMILL", "WIND CHIME", "CHIME", "PICNIC", "FIRE BUCKET"), "Garden & Outdoors"),
    (("STORAGE", "BOX", "DRAWER", "BASKET", "CABINET", "CRATE", "CHEST", "TRUNK", "HAMPER", "BIN", "TIN", "MAGAZINE RACK",
      "ORGANISER"), "Home > Storage"),
    (("SEWING", "FELTCRAFT", "CRAFT", "KNITTING", "BUTTON", "CROCHET", "EMBROIDERY", "STENCIL", "SCISSORS",
      "PAINT", "COLOURING", "MAKE YOUR OWN", "MEASURING TAPE"), "Crafts & Sewing"),
    (("TOY", "DOLL", "DOLLY", "JIGSAW", "GAME", "PUZZLE", "PUPPET", "PLAYHOUSE", "SPINNING TOP", "DOMINOES", "SKIPPING",
      "TEDDY", "SOFT", "MARBLES", "KIT", "CHILDRENS", "CHILDS", "KIDS", "BABY", "DRAWING SLATE", "MAGIC"), "Toys & Kids"),
    (("UMBRELLA", "PARASOL", "SCARF", "GLOVES", "HAT", "SUNGLASSES", "HAND WARMER"), "Accessories"),
    (("MAGNET", "ORNAMENT", "FIGURE", "FIGURINE", "TRINKET", "KEEPSAKE", "SNOW GLOBE"), "Gifts > Keepsakes"),
    (("ARTIFICIAL FLOWER", "ART FLOWER"), "Home > Decor > Artificial Flowers"),
    (("DECORATION", "HANGING", "WALL ART", "WREATH", "HEART", "VASE", "BIRD", "BUTTERFLY", "LETTERS", "MOBILE"), "Home > Decor"),
    (("CHAIR", "TABLE", "STOOL", "SHELF", "SHELVES"), "Home > Furniture"),
]
DEFAULT_CATEGORY = "Gifts > Other"

_RULES = [(re.compile(r"\b(?:" + "|".join(re.escape(w) + r"(?:E?S)?" for w in words) + r")\b"), path)
          for words, path in CATEGORY_RULES]

SMALL_WORDS = {"of", "and", "in", "with", "the", "on", "for", "a", "an", "to", "or", "at", "by", "from"}
KEEP_UPPER = {"LED", "UK", "USA", "DIY", "XL", "XXL", "UFO", "ABC", "N.Y.", "NYC"}


def category_for(title: str) -> str:
    upper = title.upper()
    for rx, path in _RULES:
        if rx.search(upper):
            return path
    return DEFAULT_CATEGORY


def nice_title(description: str) -> str:
    """'WHITE HANGING HEART T-LIGHT HOLDER' -> 'White Hanging Heart T-Light Holder'."""
    words = re.sub(r"\s+", " ", description.strip()).split(" ")
    out = []
    for i, w in enumerate(words):
        if w.upper() in KEEP_UPPER:
            out.append(w.upper())
        elif i > 0 and w.lower() in SMALL_WORDS:
            out.append(w.lower())
        else:
            out.append(re.sub(r"[A-Za-z][A-Za-z']*", lambda m: m.group(0).capitalize(), w))
    return " ".join(out)


NOT_PRODUCT_TITLES = re.compile(r"\b(CARRIAGE|POSTAGE|MANUAL|AMAZON|BANK CHARGES|DISCOUNT|ADJUST)\b", re.IGNORECASE)
MAX_LINES = 500  # the event schema's limit of lines per purchase


def is_product(code: str) -> bool:
    return code not in NOT_PRODUCTS and (any(ch.isdigit() for ch in code) or code.startswith("DCGS") or code == "PADS")


def find_source(data_dir: Path) -> Path:
    matches = sorted(data_dir.glob(SOURCE_GLOB))
    if not matches:
        sys.exit(
            f"error: no {SOURCE_GLOB} under {data_dir}.\n"
            "The demo data is derived from the UCI 'Online Retail' data set (Daqing Chen, 2015; CC BY 4.0):\n"
            "give the folder that holds online-retail/online_retail_<from>_<to>.csv.gz as the first argument.\n"
            "The committed demo_shop/data/*.ndjson.gz files are already generated; you only need this to regenerate them."
        )
    return matches[-1]


def parse_time(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


def build(source: Path, since_ms: int):
    products: dict[str, dict] = {}
    titles: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    prices: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    invoices: dict[str, dict] = {}
    last_ts = 0
    with gzip.open(source, "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            # stock codes differ in case only by accident in this data (85123A and 85123a are one product)
            inv, code = row["InvoiceNo"].strip(), row["StockCode"].strip().upper()
            if inv.startswith("C") or not is_product(code):
                continue
            try:
                qty = float(row["Quantity"])
                price = float(row["UnitPrice"])
            except ValueError:
                continue
            if qty <= 0 or price <= 0:
                continue
            ts = parse_time(row["InvoiceDate"])
            last_ts = max(last_ts, ts)
            desc = (row["Description"] or "").strip()
            if desc:
                titles[code][desc] += 1
            prices[code][round(price, 2)] += 1
            p = products.setdefault(code, {"first": ts, "last": ts})
            p["first"] = min(p["first"], ts)
            p["last"] = max(p["last"], ts)
            if ts < since_ms:
                continue
            cust = (row["CustomerID"] or "").strip()
            cust = cust[:-2] if cust.endswith(".0") else cust
            o = invoices.get(inv)
            if o is None:
                o = invoices[inv] = {"ts": ts, "customer": cust, "lines": {}}
            line = o["lines"].get(code)
            if line is None:
                o["lines"][code] = [qty, round(price, 2)]
            else:
                line[0] += qty

    catalog = []
    cutoff = last_ts - IN_STOCK_DAYS * 86_400_000
    for code in sorted(products):
        if not titles[code] or any(NOT_PRODUCT_TITLES.search(t) for t in titles[code]):
            continue
        # the most common description that looks like a title (the data has a few notes in lower case)
        best = max(titles[code].items(), key=lambda kv: (kv[0].upper() == kv[0], kv[1], kv[0]))[0]
        title = nice_title(best)
        price = max(prices[code].items(), key=lambda kv: (kv[1], -kv[0]))[0]
        catalog.append({"id": code, "title": title, "price": price, "currency": "GBP", "category": category_for(best),
                        "in_stock": products[code]["last"] >= cutoff, "created_at": products[code]["first"]})
    known = {p["id"] for p in catalog}
    events = []
    for inv, o in sorted(invoices.items(), key=lambda kv: (kv[1]["ts"], kv[0])):
        lines = [{"product": code, "quantity": int(q) if q == int(q) else q, "price": pr}
                 for code, (q, pr) in o["lines"].items() if code in known][:MAX_LINES]
        if not lines:
            continue
        visitor = o["customer"] or f"g{inv}"
        ev = {"id": f"inv-{inv}", "type": "purchase", "visitor": visitor, "session": inv, "ts": o["ts"]}
        if o["customer"]:
            ev["user"] = o["customer"]
        ev.update({"order": inv, "currency": "GBP", "lines": lines})
        events.append(ev)
    return catalog, events


def write_ndjson_gz(path: Path, records: list[dict]) -> int:
    raw = io.BytesIO()
    # mtime=0 and no file name: the same input gives byte-identical output
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        for r in records:
            gz.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    path.write_bytes(raw.getvalue())
    return len(raw.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Derive demo_shop/data from the UCI Online Retail data set.")
    ap.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA,
                    help="folder holding online-retail/ (default: ../shared/data next to the repository)")
    ap.add_argument("--since", default=DEFAULT_SINCE, help=f"first invoice day kept as events (default {DEFAULT_SINCE})")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default demo_shop/data)")
    a = ap.parse_args(argv)
    source = find_source(a.data_dir)
    since_ms = int(dt.datetime.fromisoformat(a.since).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    catalog, events = build(source, since_ms)
    a.out.mkdir(parents=True, exist_ok=True)
    n1 = write_ndjson_gz(a.out / "products.ndjson.gz", catalog)
    n2 = write_ndjson_gz(a.out / "events.ndjson.gz", events)
    cats = collections.Counter(p["category"] for p in catalog)
    print(f"source: {source}")
    print(f"products.ndjson.gz: {len(catalog)} products, {n1 / 1024:.0f} KiB")
    print(f"events.ndjson.gz:   {len(events)} purchases ({sum(len(e['lines']) for e in events)} lines) "
          f"since {a.since}, {n2 / 1024:.0f} KiB")
    print("categories: " + ", ".join(f"{c} {n}" for c, n in cats.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
