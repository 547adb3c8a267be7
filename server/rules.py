"""Business rules applied at request time, after the recommenders and before the response.

A rule set is a dict (from the strategy config, then overridden by the slot's ``rules`` and
``exclude`` in the request). Keys, all optional:

  exclude_out_of_stock  bool, default true: never show a product marked out of stock
  exclude_current       bool, default true: not the product of the detail page itself
  exclude_cart          bool, default true: not what is already in the cart
  exclude_bought_days   number, default 30: not what this visitor bought in the last N days
                        (the ``buy_again`` recommender is exempt); 0 turns it off
  exclude_seen          bool, default true: not what this visitor viewed in this session
                        (the ``recently_viewed`` recommender is exempt)
  exclude               list of product ids never to show
  categories            list of category paths: only products in (or below) one of them
  exclude_categories    list of category paths to leave out
  price_min, price_max  price band (products without a price pass)
  pin                   [{"product": id, "position": 0-based}]: put this product at this place
  boost                 [{"product"|"category"|"brand": value, "factor": 0.1..10}]: multiply scores
  max_per_category      int: at most N products of one category (diversity)
  max_per_brand         int: at most N products of one brand
  dedupe                bool, default true: a product shown in an earlier slot of the same
                        request is not shown again

Products unknown to the catalog (seen only in events) are never shown: there is nothing to
render. ``validate_rules`` checks a rule set and returns the list of problems.
"""
from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_RULES: dict[str, Any] = {
    "exclude_out_of_stock": True,
    "exclude_current": True,
    "exclude_cart": True,
    "exclude_bought_days": 30,
    "exclude_seen": True,
    "dedupe": True,
}

_BOOL = {"exclude_out_of_stock", "exclude_current", "exclude_cart", "exclude_seen", "dedupe"}
_NUM = {"exclude_bought_days", "price_min", "price_max"}
_INT = {"max_per_category", "max_per_brand"}
_LIST = {"exclude", "categories", "exclude_categories"}
KNOWN = _BOOL | _NUM | _INT | _LIST | {"pin", "boost"}


def validate_rules(rules: Any, where: str = "rules") -> list[str]:
    if not isinstance(rules, dict):
        return [f"{where} must be an object"]
    errs = []
    for k, v in rules.items():
        p = f"{where}.{k}"
        if k not in KNOWN:
            errs.append(f"{p}: unknown rule; known: {', '.join(sorted(KNOWN))}")
        elif k in _BOOL and not isinstance(v, bool):
            errs.append(f"{p} must be true or false")
        elif k in _NUM and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            errs.append(f"{p} must be a number >= 0")
        elif k in _INT and (isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > 1000):
            errs.append(f"{p} must be an integer from 1 to 1000")
        elif k in _LIST and (not isinstance(v, list) or len(v) > 1000 or not all(isinstance(x, str) for x in v)):
            errs.append(f"{p} must be a list of at most 1000 strings")
        elif k == "pin":
            if not isinstance(v, list) or len(v) > 50:
                errs.append(f"{p} must be a list of at most 50 {{product, position}}")
            else:
                for n, pin in enumerate(v):
                    if not (isinstance(pin, dict) and isinstance(pin.get("product"), str)
                            and isinstance(pin.get("position"), int) and not isinstance(pin.get("position"), bool)
                            and 0 <= pin["position"] < 100 and set(pin) <= {"product", "position"}):
                        errs.append(f"{p}[{n}] must be {{\"product\": id, \"position\": 0..99}}")
        elif k == "boost":
            if not isinstance(v, list) or len(v) > 100:
                errs.append(f"{p} must be a list of at most 100 boosts")
            else:
                for n, b in enumerate(v):
                    keys = set(b) - {"factor"} if isinstance(b, dict) else set()
                    f = b.get("factor") if isinstance(b, dict) else None
                    if (len(keys) != 1 or not keys <= {"product", "category", "brand"}
                            or not isinstance(b[next(iter(keys))], str)
                            or isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.1 <= f <= 10):
                        errs.append(f"{p}[{n}] must be {{\"product\"|\"category\"|\"brand\": value, \"factor\": 0.1..10}}")
    if not errs and "price_min" in rules and "price_max" in rules and rules["price_min"] > rules["price_max"]:
        errs.append(f"{where}: price_min is above price_max")
    return errs


def merge(*rule_sets: dict | None) -> dict:
    out = dict(DEFAULT_RULES)
    for r in rule_sets:
        if r:
            for k, v in r.items():
                if k == "exclude" and out.get("exclude"):
                    out[k] = list(out[k]) + list(v)
                else:
                    out[k] = v
    return out


def allowed_mask(ds, ctx, rules: dict, exempt_bought: bool = False) -> np.ndarray:
    """Per dataset item: may it be shown at all (stock, exclusions, category, price band)."""
    m = _rules_mask(ds, rules).copy()
    if rules.get("exclude_current", True) and ctx.item >= 0:
        m[ctx.item] = False
    if rules.get("exclude_cart", True) and len(ctx.cart_items):
        m[ctx.cart_items] = False
    days = rules.get("exclude_bought_days", 30)
    if days and not exempt_bought and ctx.bought:
        limit = max(ctx.clock_ms, ctx.now_ms) - days * 86_400_000 if ctx.clock_ms or ctx.now_ms else 0
        for pid, ts in ctx.bought.items():
            if ts >= limit:
                i = ds.item(pid)
                if i >= 0:
                    m[i] = False
    return m


_RULES_MASKS_BYTES = 8 << 20   # per dataset: the rule sets' masks kept (a bool per item each)


def _rules_mask(ds, rules: dict, for_kernel: bool = False) -> np.ndarray:
    """The part of ``allowed_mask`` that depends on the rules alone (catalog, stock, excluded
    products, categories, price band): computed once per dataset and rule values, read-only.
    ``for_kernel``: the same memo entry's writeable base (numba refuses a read-only array),
    which a kernel reads and nothing ever writes."""
    key = (rules.get("exclude_out_of_stock", True), tuple(rules.get("exclude") or ()), tuple(rules.get("categories") or ()),
           tuple(rules.get("exclude_categories") or ()), rules.get("price_min"), rules.get("price_max"))
    memo = ds.__dict__.get("_rules_masks")
    if memo is None:   # (not ds.derived: its lock on every request)
        memo = ds.__dict__.setdefault("_rules_masks", {})
    m = memo.get(key)
    if m is not None:
        return m.base if for_kernel else m
    m = ds.in_catalog.copy()
    if key[0]:
        m &= ds.in_stock
    for pid in key[1]:
        i = ds.item(pid)
        if i >= 0:
            m[i] = False
    if key[2]:
        keep = np.zeros(ds.n_items, bool)
        for c in key[2]:
            keep[ds.category_items(c)] = True
        m &= keep
    for c in key[3]:
        m[ds.category_items(c)] = False
    lo, hi = key[4], key[5]
    if lo is not None or hi is not None:
        p = ds.price
        known = ~np.isnan(p)
        if lo is not None:
            m &= ~known | (p >= lo)
        if hi is not None:
            m &= ~known | (p <= hi)
    base, m = m, m.view()
    m.flags.writeable = False
    if len(memo) >= min(1024, max(4, _RULES_MASKS_BYTES // max(ds.n_items, 1))):
        memo.clear()
    memo[key] = m
    return base if for_kernel else m


def boost_factors(ds, rules: dict, items: np.ndarray) -> np.ndarray | None:
    boosts = rules.get("boost")
    if not boosts or len(items) == 0:
        return None
    f = np.ones(len(items), np.float32)
    for b in boosts:
        factor = float(b["factor"])
        if "product" in b:
            i = ds.item(b["product"])
            f[items == i] *= factor
        elif "category" in b:
            f[np.isin(items, ds.category_items(b["category"]))] *= factor
        elif "brand" in b:
            try:
                code = ds.brands.index(b["brand"])
            except ValueError:
                continue
            f[ds.brand_code[items] == code] *= factor
    return f


def select(ds, ranked, count: int, rules: dict, mask: np.ndarray, page_seen: set[int], already=()) -> list:
    """Pick up to ``count`` entries (tuples whose first field is the item index) from ``ranked``
    (best first, any iterable): allowed by ``mask``, not already on the page, within the
    diversity caps (counting the entries ``already`` chosen for this slot)."""
    max_cat = rules.get("max_per_category")
    max_brand = rules.get("max_per_brand")
    per_cat: dict[int, int] = {}
    per_brand: dict[int, int] = {}
    if max_cat or max_brand:
        cat_code, brand_code = _code_lists(ds)
        for e in already:
            c, b = cat_code[e[0]], brand_code[e[0]]
            per_cat[c] = per_cat.get(c, 0) + 1
            per_brand[b] = per_brand.get(b, 0) + 1
    out: list = []
    skip: set[int] = {e[0] for e in already}   # taken, and with dedupe what the page shows
    if rules.get("dedupe", True):
        skip.update(page_seen)
    for entry in ranked:
        i = entry[0]
        if i in skip or not mask[i]:
            continue
        if max_cat:
            c = cat_code[i]
            if c >= 0 and per_cat.get(c, 0) >= max_cat:
                continue
        if max_brand:
            b = brand_code[i]
            if b >= 0 and per_brand.get(b, 0) >= max_brand:
                continue
        out.append(entry)
        skip.add(i)
        if max_cat:
            per_cat[c] = per_cat.get(c, 0) + 1
        if max_brand:
            per_brand[b] = per_brand.get(b, 0) + 1
        if len(out) >= count:
            break
    return out


def _code_lists(ds) -> tuple[list[int], list[int]]:
    """The items' category and brand codes as lists: ``select`` reads one per candidate (a list
    index, not a numpy scalar and its int())."""
    return ds.derived("rules_code_lists", lambda ds: (ds.category_code.tolist(), ds.brand_code.tolist()))


def apply_pins(ds, chosen: list, rules: dict, count: int, mask: np.ndarray, make_entry) -> list:
    """Put pinned products at their positions (the pinned product must exist and be in stock
    when stock is required; explicit excludes win over pins)."""
    pins = rules.get("pin")
    if not pins:
        return chosen
    excluded = set(rules.get("exclude") or ())
    for pin in sorted(pins, key=lambda p: p["position"]):
        i = ds.item(pin["product"])
        if i < 0 or not ds.in_catalog[i] or pin["product"] in excluded:
            continue
        if rules.get("exclude_out_of_stock", True) and not ds.in_stock[i]:
            continue
        chosen = [e for e in chosen if e[0] != i]
        pos = min(pin["position"], len(chosen))
        chosen.insert(pos, make_entry(i))
    return chosen[:count]
