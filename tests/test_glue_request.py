"""The request glue's shortcuts (server/serving.py, server/placements/config.py, server/app.py):
each gives what the step it replaces gave."""
from __future__ import annotations

import random

import msgspec
import pytest

from server import rules as R
from server import serving
from server.app import AppState
from server.placements import config as strategies
from tests.engine.fixtures import ShopData, product, view

DOC = {"placements": {
    "main": {"variants": [{"name": "A", "share": 30, "rules": {"max_per_brand": 2, "exclude": ["p1"]}},
                          {"name": "B", "share": 50, "strategy": "cf_only", "rules": {"price_min": 1}},
                          {"name": "C", "share": 20}]},
    "cart": {"rules": {"exclude": ["p2"], "dedupe": False}},
    "detail_similar": {"variants": [{"name": "only", "share": 5}]},
}}


def test_a_placements_plan_is_resolve_choose_variant_and_merge():
    """``Strategies.choose``: the name ``resolve`` gives, the variant ``choose_variant`` picks
    for the visitor, its rules ``rules.merge`` of the variant's; the same whatever the order
    of the placements asked, and bounded."""
    for doc in (None, DOC):
        cfg = strategies.effective(doc)
        st = strategies.Strategies(7, cfg)
        rng = random.Random(3)
        names = [*cfg, "detail", "unknown_one", "", "main"]
        for k in range(600):
            placement, who = rng.choice(names), rng.choice(["", "v1", f"visitor{k}", "é☃"])
            name, variants = strategies.resolve(cfg, placement)
            got = st.choose(placement, who)
            assert got.name == name
            assert got.strategy is strategies.choose_variant(variants, who, name)
            assert got.rules == R.merge(got.strategy.get("rules"))
            assert (got.label, got.variant) == (got.strategy.get("strategy", name), got.strategy.get("name", "A"))
            assert st.choose(placement, who) is got   # made once per version
    st = strategies.Strategies(1, strategies.effective(DOC))
    for k in range(strategies.Strategies.PLACEMENTS_KEPT * 2 + 3):
        st.choose(f"made_up_{k}", "v")
        assert len(st._placements) <= strategies.Strategies.PLACEMENTS_KEPT


def test_a_slots_rules_are_the_merge_of_the_variants_and_the_slots():
    """With neither rules nor exclusions in the slot, the request copies the variant's merged
    rules: the same dict as merging again (an ``exclude`` of the variant included)."""
    st = strategies.Strategies(1, strategies.effective(DOC))
    for placement in ("main", "cart", "category"):
        for who in ("a", "b", "c", "d", "e"):
            pick = st.choose(placement, who)
            strat, rules = pick.strategy, pick.rules
            assert dict(rules) == R.merge(strat.get("rules"), None, None) == R.merge(strat.get("rules"), {}, None)


def test_the_config_cache_keeps_the_plans_of_a_version(tmp_path):
    """``ConfigCache.strategies``: one ``Strategies`` per version (its plans kept while the
    version stands), ``get`` its version and config."""
    import sqlite3

    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("CREATE TABLE strategy_configs (version INTEGER PRIMARY KEY, config TEXT, created_at INTEGER, note TEXT)")
    cache = strategies.ConfigCache(ttl=0.0)
    first = cache.strategies("t", conn)
    assert first.version == 0 and cache.get("t", conn) == (0, first.config)
    assert cache.strategies("t", conn) is first   # re-read, the same version: the same plans
    strategies.store_config(DOC, conn)
    second = cache.strategies("t", conn)
    assert second is not first and second.version == 1 and second.config == strategies.effective(DOC)


def _ds(tmp_path):
    data = ShopData(tmp_path)
    data.products([product("p0", 'Mug "Ünï" \\ ☃\n', "Home", price=12.5, currency="EUR"),
                   product("p1", "Lamp", "Home", price=3.0), product("p2", "Tea", "Food", price=0.1)])
    ds = data.events([view("p1"), view("p9")]).model().ds
    data.close()
    return ds


def test_a_slots_reply_pieces_are_those_of_encoding_them(tmp_path):
    """``_ReplyParts.slot``: the items as encoding their dicts, the product ids and the sources
    as encoding their lists (the rows of ``rec_served``); an empty slot too."""
    ds = _ds(tmp_path)
    enc = msgspec.json.encode
    rng = random.Random(1)
    reasons = ["", "because you viewed \"Lamp\"", "new ☃", "x\ty", "popular in the shop", "\u2028"]
    for currency in ("GBP", "KRW"):
        parts = serving._reply_parts(ds, currency)
        assert serving._reply_parts(ds, currency) is parts
        for n in (0, 1, 2, 4, 9):
            chosen = [(rng.randrange(ds.n_items), rng.choice(reasons), rng.choice(["item_cf", "best_sellers"])) for _ in range(n)]
            items, products, sources = parts.slot(chosen)
            dicts = [{"id": ds.item_ids[i], "title": ds.title[i], "url": ds.url[i], "image": ds.image[i],
                      "price": None if ds.price[i] != ds.price[i] else float(ds.price[i]),
                      "currency": ds.currency[i] or currency, "reason": reason} for i, reason, _ in chosen]
            assert isinstance(items, bytes) and items == enc(dicts)
            assert products == enc([ds.item_ids[i] for i, _, _ in chosen]).decode()
            assert sources == enc([s for _, _, s in chosen]).decode()


def test_the_reasons_kept_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(serving, "REASONS_KEPT", 5)
    ds = _ds(tmp_path)
    tails = ds.derived("_serving_reason_json", lambda ds: serving._Tails())
    parts = serving._reply_parts(ds, "GBP")
    for k in range(23):
        items, _, _ = parts.slot([(0, f"reason {k}", "s"), (1, "same", "s")])
        assert msgspec.json.decode(bytes(items))[0]["reason"] == f"reason {k}"
        assert len(tails) <= 5


def test_the_sources_lists_kept_are_bounded_and_by_value(tmp_path, monkeypatch):
    """``_Sources``: a slot's sources' JSON found by the names' values (other string objects of
    the same names), bounded as the reasons."""
    monkeypatch.setattr(serving, "REASONS_KEPT", 5)
    ds = _ds(tmp_path)
    kept = ds.derived("_serving_sources_json", lambda ds: serving._Sources())
    parts = serving._reply_parts(ds, "GBP")
    for k in range(23):
        names = [f"source_{k}", "".join(["item", "_cf"]), "best\"sellers\u2028"]
        _, _, sources = parts.slot([(k % ds.n_items, "r", n) for n in names])
        assert sources == msgspec.json.encode(names).decode() and len(kept) <= 5
        assert parts.slot([(0, "r", n) for n in names])[2] == sources


def test_a_requests_context_is_made_in_its_fields_order():
    """``serving._context``: ``Context`` itself, called positionally, while its fields are those
    of ``_CONTEXT_FIELDS`` in that order (else every request would take the slower path by
    name: update ``_CONTEXT_FIELDS`` with the dataclass); the path by name gives the same."""
    import dataclasses

    from server.recommenders.base import Context

    assert tuple(f.name for f in dataclasses.fields(Context)) == serving._CONTEXT_FIELDS, \
        "Context's fields changed: update serving._CONTEXT_FIELDS (the request's positional call)"
    assert serving._context is Context
    values = tuple(f"v{k}" for k in range(len(serving._CONTEXT_FIELDS)))
    made = serving._context_by_name(*values)
    assert made == Context(*values)
    assert [getattr(made, name) for name in serving._CONTEXT_FIELDS] == list(values)


def test_rec_ids_are_unique_and_timed():
    ids = [serving.new_rec_id(1_700_000_000_123) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(i.startswith(f"r_{1_700_000_000_123:x}{serving._REC_PREFIX}") for i in ids)


@pytest.mark.parametrize("key", ["engine", "registry", "x_1"])
def test_the_app_state_reads_as_starlettes(key):
    st = AppState()
    with pytest.raises(AttributeError):
        getattr(st, key)
    setattr(st, key, 1)
    assert getattr(st, key) == st[key] == st._state[key] == 1 and list(st) == [key] and len(st) == 1
    st[key] = 2
    assert getattr(st, key) == 2
    del st[key]
    assert not hasattr(st, key) and key not in st._state
    setattr(st, key, 3)
    delattr(st, key)
    assert not hasattr(st, key) and len(st) == 0


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "Asia/Kathmandu", "Europe/London", "America/St_Johns",
                                  "Australia/Lord_Howe"])
def test_the_visit_time_of_a_minute_is_the_local_times(zone):
    """``_ModelServing.at`` keeps (hour, weekday) for a UTC minute: the same as ``LocalTime.at``
    at every instant, across hours, days and daylight-saving changes (half-hour and
    quarter-hour offsets, Lord Howe's half-hour shift), in any order of the instants asked."""
    import datetime as dt

    from server.localtime import LocalTime

    local = LocalTime(zone)
    m = serving._ModelServing.__new__(serving._ModelServing)
    m.local, m.minute, m.hour_weekday = local, None, None
    rng = random.Random(zone)
    starts = [int(dt.datetime(y, mo, d, tzinfo=dt.timezone.utc).timestamp() * 1000)
              for y, mo, d in ((2026, 3, 8), (2026, 3, 29), (2026, 4, 5), (2026, 10, 4), (2026, 10, 25),
                               (2026, 11, 1), (2026, 12, 31))]
    instants = []
    for start in starts:   # every minute's ends and a random instant of it, over two days around the date
        for minute in range(-24 * 60, 24 * 60):
            base = start + minute * 60_000
            instants += [base, base + 59_999, base + rng.randrange(60_000)]
    for ms in instants + rng.sample(instants, len(instants)):
        assert m.at(ms) == local.at(ms), ms


def test_a_shards_model_view_follows_the_model_and_does_not_keep_it(tmp_path):
    """``_ShardServing.serving``: one ``_ModelServing`` per model and currency (the slot encoder
    of ``_reply_parts``), made anew for another; it holds the model weakly (a newer model
    replaces it while the shard's requests may have stopped)."""
    import gc
    import weakref

    from tests.engine.fixtures import ShopData

    data = ShopData(tmp_path)
    data.products([product("p0", "Mug", "Home", price=2.0), product("p1", "Lamp", "Home", price=3.0)])
    model = data.events([view("p1")]).model()
    held = serving._ShardServing(None)
    m = held.serving(model, "GBP")
    assert held.serving(model, "GBP") is m and m.encode.__self__ is serving._reply_parts(model.ds, "GBP")
    assert held.serving(model, "KRW") is not m and held.serving(model, "KRW").currency == "KRW"
    gone = weakref.ref(model)
    del model, m   # the shard's view is still of that model
    gc.collect()
    assert gone() is None and held.model.model() is None
    other = data.events([view("p0")]).model()
    assert held.serving(other, "KRW").model() is other
