"""The tenant's time zone (server/localtime.py): visit-time context (hour of day, weekday) in the
shop's own time, daylight saving included, in the model's interactions, in each request, and as
a tenant setting."""
from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import time
import zoneinfo

import numpy as np
import pytest

from server import builder as B
from server.localtime import LocalTime, LocalTimeError
from server.tenants import TenantError
from tests.engine.fixtures import ShopData, product, view


def _reference(name: str, ms: int) -> tuple[int, int]:
    d = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).astimezone(zoneinfo.ZoneInfo(name))
    return d.hour, d.weekday()


@pytest.mark.parametrize("name, day", [
    ("America/New_York", "2024-03-10"), ("America/New_York", "2024-11-03"),   # DST starts / ends
    ("Australia/Lord_Howe", "2024-04-07"),                                    # a 30-minute DST shift
    ("Asia/Seoul", "2024-06-01"), ("Asia/Kathmandu", "2024-06-01"), ("UTC", "2024-06-01"),
])
def test_every_minute_of_a_day_matches_zoneinfo(name, day):
    start = int(dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc).timestamp() * 1000) - 86_400_000
    ts = np.arange(start, start + 3 * 86_400_000, 60_000, dtype=np.int64)   # the day and its neighbours, every minute
    lt = LocalTime(name)
    hour, weekday = lt.parts(ts)
    want = [_reference(name, t) for t in ts.tolist()]
    assert list(zip(hour.tolist(), weekday.tolist())) == want
    assert [lt.at(t) for t in ts[::7].tolist()] == want[::7]
    again = pickle.loads(pickle.dumps(lt))                 # pickled with a model
    assert again.name == name and again.at(int(ts[500])) == want[500]


def test_fixed_offsets_and_unknown_names():
    assert LocalTime(offset_min=540).at(0) == (9, 3)       # 1970-01-01 09:00 at UTC+9, a Thursday
    assert LocalTime().at(0) == (0, 3) and LocalTime("UTC").name == "UTC"
    for bad in ("Mars/Olympus", "../../etc/passwd", "x" * 100):
        with pytest.raises(LocalTimeError):
            LocalTime(bad)


def test_the_model_counts_visits_in_the_shops_time_zone(tmp_path):
    d = ShopData(tmp_path).products([product("a"), product("b")])
    utc_23 = int(dt.datetime(2024, 6, 7, 23, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)   # a Friday
    d.events([view("a", ts=utc_23), view("b", visitor="v2", session="s2", ts=utc_23 + 1000)])
    conn = d.shard.connect_read()
    try:
        from server.recommenders.model import build_model
        seoul = build_model(conn, only=["time_of_day"], timezone="Asia/Seoul")
        utc = build_model(conn, only=["time_of_day"])
        mars = build_model(conn, only=["time_of_day"], timezone="Mars/Olympus")   # (never stored: validated) UTC
    finally:
        conn.close()
        d.close()
    assert set(seoul.ds.fb_hour.tolist()) == {8} and set(seoul.ds.fb_weekday.tolist()) == {5}   # Saturday 08:30
    assert set(utc.ds.fb_hour.tolist()) == {23} and set(utc.ds.fb_weekday.tolist()) == {4}
    assert mars.ds.local.name == "UTC"
    assert seoul.ds.local.at(utc_23) == (8, 5)


def test_a_request_reads_the_hour_in_the_shops_time_zone(client, app, make_tenant, monkeypatch):
    """The request's context (what time_of_day and the ranker read) is in the tenant's time zone."""
    from server import serving

    keys = make_tenant("seoul", timezone="Asia/Seoul")
    auth = keys.auth
    assert client.post("/v1/catalog/products", json=[product("a"), product("b")], headers=auth).status_code == 200
    assert client.post("/v1/engine/rebuild?wait=1", headers=auth).status_code == 200
    seen = []
    real = serving.run_slot

    def spy(model, ctx, *a, **kw):
        seen.append((ctx.hour, ctx.weekday))
        return real(model, ctx, *a, **kw)
    monkeypatch.setattr(serving, "run_slot", spy)
    body = {"site_key": keys.site_key, "visitor": "v", "session": "s", "page": {"type": "main"},
            "slots": [{"id": "home", "placement": "main", "count": 2}]}
    r = client.post("/v1/recommend", content=json.dumps(body), headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert seen == [_reference("Asia/Seoul", int(time.time() * 1000))]


def test_the_time_zone_is_a_validated_tenant_setting(app, tmp_path):
    reg = app.state.registry
    t, _ = reg.create("tz", timezone="Europe/Berlin")
    assert t.timezone == "Europe/Berlin" and t.public()["timezone"] == "Europe/Berlin"
    assert reg.update("tz", timezone="Asia/Seoul").timezone == "Asia/Seoul"
    assert reg.update("tz", locale="ko").timezone == "Asia/Seoul"          # other changes keep it
    with pytest.raises(TenantError, match="unknown time zone"):
        reg.update("tz", timezone="Mars/Olympus")
    with pytest.raises(TenantError):
        reg.create("tz2", timezone="Not/AZone")
    assert reg.get("tz2") is None and reg.create("plain")[0].timezone == "UTC"


def test_cli_sets_the_time_zone_and_asks_the_builder_for_a_build(tmp_path):
    from click.testing import CliRunner

    from server.cli import main
    from server.config import Settings

    data = str(tmp_path / "data")
    run = CliRunner().invoke
    r = run(main, ["tenant", "create", "kr", "--timezone", "Asia/Seoul", "--json", "--data-dir", data])
    assert r.exit_code == 0 and json.loads(r.output)["timezone"] == "Asia/Seoul", r.output
    r = run(main, ["tenant", "set", "kr", "--timezone", "Europe/London", "--json", "--data-dir", data])
    assert r.exit_code == 0 and json.loads(r.output)["timezone"] == "Europe/London", r.output
    inbox = B.inbox_dir(Settings.from_env(env={}, data_dir=data))
    notes = os.listdir(inbox)
    assert len(notes) == 1 and notes[0].startswith("kr--") and (inbox / notes[0]).read_text() == "force"
    r = run(main, ["tenant", "set", "kr", "--timezone", "Mars/Olympus", "--json", "--data-dir", data])
    assert r.exit_code != 0 and "unknown time zone" in r.output
