"""The three evaluation tasks: test cases built from the test part of the split.

A ``Case`` holds the request ``Context`` the server would build for it (the same fields
``server/serving.py`` fills: current product, cart, the visitor's recent interactions read "live",
purchases, person, visit time), the seeds the baselines get, and the relevant products.

next_item      each test session (views and carts, consecutive repeats merged, products unknown
               to the train data dropped), after each event: the next product. HR@k, MRR@k.
               Page "detail", the current product = the last one; the visitor's earlier
               sessions are in ``recent`` too (out of session), as the live context reads them.
next_new_item  the same, only where the next product was not viewed earlier in the session: the
               engine's related-product placements never re-show what the visitor just saw (a
               "recently viewed" carousel does), so this isolates discovering new products.
next_basket    each test order of a customer with a purchase in the train part: the order's
               products. Recall@k, NDCG@k. Page "main", no product; history = everything of
               this visitor before the order (train and earlier test orders: the live context).
bought_together  each test order with 2+ known products: one product (seeded random choice)
               given as the current product and cart, the rest of the order relevant.
               Recall@k, NDCG@k. Anonymous visitor (no history): the product alone.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..recommenders.base import Context, Recent
from ..signals import weights as sig
from .formats import CART, PURCHASE, VIEW, Row
from .split import Split

TASKS = ("next_item", "next_new_item", "next_basket", "bought_together")
RECENT = 60  # as serving.RECENT_EVENTS
BOUGHT = 200  # as serving.live_context's purchases
_KIND = {VIEW: sig.VIEW, CART: sig.CART, PURCHASE: sig.PURCHASE}


@dataclass
class Case:
    ctx: Context
    truth: set[int]
    seeds: list[tuple[int, float]]
    exclude: set[int] = field(default_factory=set)


def _weight(ds, item: int, kind: str, engaged, scroll, cfg: sig.SignalConfig) -> float:
    w = cfg.type_weight(_KIND[kind])
    if kind == VIEW and engaged is not None and item >= 0:
        usual = ds.usual_engaged_ms[item] if item < len(ds.usual_engaged_ms) else 30_000.0
        w *= float(sig.engagement_factor(np.array([engaged]), np.array([scroll or 0.0]), np.zeros(1),
                                         np.array([usual]), np.array([True]), cfg)[0])
    return w


def _context(ds, visitor: str | None, session: str | None, now: int, history: list[Row], session_rows: list[Row],
             cfg: sig.SignalConfig, page: str) -> Context:
    """Context as ``serving.live_context`` builds it: the visitor's latest 60 interactions
    (newest first, engagement-weighted, in-session flagged) plus the products they bought (the
    200 most recent, as ``bought`` and as purchase interactions)."""
    recent: list[Recent] = []
    bought: dict[str, int] = {}
    for r in session_rows[-RECENT:]:
        i = ds.item(r[4])
        recent.append(Recent(r[4], i, _KIND[r[3]], r[0], _weight(ds, i, r[3], r[8], r[9], cfg), True))
    others = [r for r in history if r[3] != PURCHASE]
    for r in others[-max(RECENT - len(recent), 0):]:
        i = ds.item(r[4])
        recent.append(Recent(r[4], i, _KIND[r[3]], r[0], _weight(ds, i, r[3], r[8], r[9], cfg), False))
    for r in history:
        if r[3] == PURCHASE and r[0] >= bought.get(r[4], 0):
            bought[r[4]] = r[0]
    if len(bought) > BOUGHT:
        bought = dict(sorted(bought.items(), key=lambda kv: -kv[1])[:BOUGHT])
    for p, ts in bought.items():
        recent.append(Recent(p, ds.item(p), sig.PURCHASE, ts, cfg.purchase, False))
    recent.sort(key=lambda x: -x.ts)
    hour, weekday = ds.local.at(now)
    # a visitor who is a user with a profile (movielens): logged in, as the widget would send it
    user = visitor if visitor and ("u:" + visitor) in ds.person_index else None
    person = ds.person(user, visitor) if visitor else -1
    profile = None
    if user and person >= 0 and (ds.profile_gender[person] or ds.profile_age_band[person] or ds.profile_interests[person]):
        profile = {"gender": ds.profile_gender[person], "age_band": ds.profile_age_band[person],
                   "interests": ds.profile_interests[person], "segment": ds.profile_segment[person]}
    return Context(tenant="evaluation", visitor=visitor, session=session, user=user, page_type=page, recent=recent,
                   bought=bought, person=person, profile=profile, now_ms=now,
                   clock_ms=max(ds.clock_ms, max((x.ts for x in recent), default=0)), hour=hour, weekday=weekday)


def _sample(cases: list, n: int, seed: int = 0) -> list:
    if n and len(cases) > n:
        rng = random.Random(seed)
        return rng.sample(cases, n)
    return cases


def next_item(ds, split: Split, max_cases: int, cfg: sig.SignalConfig = sig.DEFAULT, new_only: bool = False) -> list[Case]:
    by_session: dict[str, list[Row]] = defaultdict(list)
    for r in split.test:
        if r[2] in split.test_sessions and r[3] in (VIEW, CART):
            by_session[r[2]].append(r)
    by_visitor: dict[str, list[Row]] = defaultdict(list)
    for r in split.train:
        by_visitor[r[1]].append(r)
    raw = []
    for s, rows in by_session.items():
        seq: list[Row] = []
        for r in rows:
            if ds.item(r[4]) < 0:
                continue
            if seq and seq[-1][4] == r[4]:
                continue
            seq.append(r)
        for t in range(1, len(seq)):
            if new_only and any(r[4] == seq[t][4] for r in seq[:t]):
                continue
            raw.append((s, seq, t))
    out = []
    for s, seq, t in _sample(raw, max_cases):
        prefix = list(seq[:t])
        last = prefix[-1]
        prefix[-1] = last[:8] + (None, None)  # the current page's engaged time is not known yet
        visitor = last[1]
        hist = [r for r in by_visitor.get(visitor, ()) if r[0] < seq[0][0]]
        ctx = _context(ds, visitor, s, last[0], hist, prefix, cfg, "detail")
        ctx.product = last[4]
        ctx.item = ds.item(last[4])
        seeds = ctx.seed_items()
        out.append(Case(ctx, {ds.item(seq[t][4])}, seeds, {ctx.item}))
    return out


def _orders(split: Split) -> dict[str, list[Row]]:
    orders: dict[str, list[Row]] = defaultdict(list)
    for r in split.test:
        if r[3] == PURCHASE:
            orders[r[5] or r[2]].append(r)
    return orders


def next_basket(ds, split: Split, max_cases: int, cfg: sig.SignalConfig = sig.DEFAULT) -> list[Case]:
    by_visitor: dict[str, list[Row]] = defaultdict(list)
    for r in split.train:
        by_visitor[r[1]].append(r)
    test_by_visitor: dict[str, list[Row]] = defaultdict(list)
    for r in split.test:
        test_by_visitor[r[1]].append(r)
    buyers = {r[1] for r in split.train if r[3] == PURCHASE}
    raw = []
    for oid, rows in _orders(split).items():
        visitor = rows[0][1]
        if visitor not in buyers:
            continue
        truth = {ds.item(r[4]) for r in rows} - {-1}
        if truth:
            raw.append((oid, rows, truth))
    out = []
    for oid, rows, truth in _sample(raw, max_cases):
        visitor, ts = rows[0][1], rows[0][0]
        hist = by_visitor[visitor] + [r for r in test_by_visitor.get(visitor, ()) if r[0] < ts]
        ctx = _context(ds, visitor, "eval-" + oid[:50], ts, hist, [], cfg, "main")
        counts: dict[int, float] = defaultdict(float)
        for r in hist:
            i = ds.item(r[4])
            if i >= 0:
                counts[i] += cfg.type_weight(_KIND[r[3]])
        out.append(Case(ctx, truth, list(counts.items())))
    return out


def bought_together(ds, split: Split, max_cases: int, cfg: sig.SignalConfig = sig.DEFAULT) -> list[Case]:
    raw = []
    for oid, rows in _orders(split).items():
        items = sorted({ds.item(r[4]) for r in rows} - {-1})
        if len(items) >= 2:
            raw.append((oid, rows, items))
    out = []
    for oid, rows, items in _sample(raw, max_cases):
        given = random.Random(oid).choice(items)
        ts = rows[0][0]
        ctx = _context(ds, None, None, ts, [], [], cfg, "cart")
        ctx.product = ds.item_ids[given]
        ctx.item = given
        ctx.cart = [ctx.product]
        ctx.cart_items = np.array([given], np.int32)
        out.append(Case(ctx, set(items) - {given}, [(given, 1.0)], {given}))
    return out


def next_new_item(ds, split: Split, max_cases: int, cfg: sig.SignalConfig = sig.DEFAULT) -> list[Case]:
    return next_item(ds, split, max_cases, cfg, new_only=True)


BUILDERS = {"next_item": next_item, "next_new_item": next_new_item, "next_basket": next_basket,
            "bought_together": bought_together}
PLACEMENT_OF = {"next_item": "detail_similar", "next_new_item": "detail_similar", "next_basket": "main", "bought_together": "cart"}
