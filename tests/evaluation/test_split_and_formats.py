"""Loaders on tiny fixtures; the time split leaks nothing."""
import gzip
import json

import pytest

from server.evaluation.formats import CART, PURCHASE, VIEW, load, parse_time
from server.evaluation.split import check_no_leakage, time_split

RETAIL = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
C536379,D,Discount,-1,2010-12-01 09:41:00,27.5,14527.0,United Kingdom
536380,22961,JAM MAKING SET PRINTED,24,2010-12-01 09:41:00,1.45,,United Kingdom
536381,71053,WHITE METAL LANTERN,0,2010-12-01 09:45:00,3.39,15311.0,United Kingdom
"""


def test_online_retail(tmp_path):
    p = tmp_path / "retail.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write(RETAIL)
    log = load("online-retail", p)
    assert len(log.rows) == 3 and log.skipped == 2            # the cancellation and the zero quantity
    r = log.rows[0]
    assert r[1] == "c17850" and r[2] == "s536365" and r[3] == PURCHASE and r[5] == "536365"
    assert log.rows[2][1] == "g536380"                         # a guest checkout
    assert log.products["71053"]["title"] == "White Metal Lantern"
    assert log.products["71053"]["category"] == "Gifts > Lantern"
    assert log.products["71053"]["price"] == 3.39


def test_diginetica(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n"
                 "1;NA;31331;1031018;2016-05-09\n2;77;5;0;2016-05-10\nbad;line\n")
    log = load("diginetica", p)
    assert [r[4] for r in log.rows] == ["81766", "31331", "5"]
    assert log.rows[0][0] == parse_time("2016-05-09") + 526309
    assert log.rows[0][1] == "s1" and log.rows[2][1] == "u77"
    assert log.skipped == 1 and log.kinds == {VIEW}


def test_sessions(tmp_path):
    p = tmp_path / "s.tsv"
    p.write_text("SessionId\tItemId\tTime\n1\t214\t1396839069.277\n1\t215\t1396839070\n2\t9\t1396839100\n")
    log = load("sessions", p)
    assert [(r[2], r[4]) for r in log.rows] == [("s1", "214"), ("s1", "215"), ("s2", "9")]
    assert log.rows[0][0] == 1396839069277


def test_events_csv_and_ndjson(tmp_path):
    c = tmp_path / "e.csv"
    c.write_text("session,visitor,type,product,time,order,engaged_ms\n"
                 "a,v1,view,p1,2024-01-01T10:00:00Z,,12000\n"
                 "a,v1,add_to_cart,p1,2024-01-01T10:01:00Z,,\n"
                 "a,v1,purchase,p1,2024-01-01T10:02:00Z,o1,\n"
                 "b,,view,p2,1704110400,,\n"
                 "b,,teleport,p2,1704103200,,\n")
    log = load("events", c)
    assert [r[3] for r in log.rows] == [VIEW, CART, PURCHASE, VIEW] and log.skipped == 1
    assert log.rows[0][8] == 12000.0
    assert log.rows[2][5] == "o1"
    assert log.rows[3][1] == "b"                               # visitor defaults to the session
    n = tmp_path / "e.ndjson"
    n.write_text("\n".join(json.dumps(x) for x in [
        {"session": "a", "visitor": "v1", "type": "view", "product": "p1", "time": 1704103200000},
        {"session": "a", "type": "purchase", "product": "p1", "time": "2024-01-01 10:00:00", "quantity": 2}]))
    log = load("events", n)
    assert len(log.rows) == 2 and log.rows[1][6] == 2.0 and log.rows[1][5] == "a"


def _log_rows(tmp_path):
    p = tmp_path / "e.csv"
    lines = ["session,visitor,type,product,time"]
    t = 1_700_000_000
    for s in range(20):
        for j in range(3):
            lines.append(f"s{s},v{s % 5},view,p{(s + j) % 7},{t + s * 3600 + j * 60}")
    p.write_text("\n".join(lines) + "\n")
    return load("events", p)


def test_split_has_no_leakage(tmp_path):
    log = _log_rows(tmp_path)
    sp = time_split(log, test_fraction=0.3)
    assert max(r[0] for r in sp.train) < sp.cut_ms <= min(r[0] for r in sp.test)
    assert len(sp.train) + len(sp.test) == len(log.rows)
    train_sessions = {r[2] for r in sp.train}
    assert sp.test_sessions and not (sp.test_sessions & train_sessions)
    # a session straddling the cut is not a test session
    straddling = {r[2] for r in sp.test} & train_sessions
    assert not (straddling & sp.test_sessions)
    check_no_leakage(sp)
    sp.train.append(sp.test[0])
    with pytest.raises(AssertionError):
        check_no_leakage(sp)


def test_split_by_days(tmp_path):
    log = _log_rows(tmp_path)
    sp = time_split(log, test_days=0.25)     # the last 6 hours
    assert sp.cut_ms == log.rows[-1][0] - 6 * 3_600_000 + 1


def test_catalog_as_of_the_cut_has_no_future_products(tmp_path):
    from server.evaluation.replay import catalog_as_of
    log = _log_rows(tmp_path)
    sp = time_split(log, test_fraction=0.3)
    cat = catalog_as_of(log, sp.train)
    seen = {r[4] for r in sp.train}
    assert set(cat) == seen
    for pid, d in cat.items():
        assert d["created_at"] == min(r[0] for r in sp.train if r[4] == pid) < sp.cut_ms


def test_movielens_atomic_files(tmp_path):
    (tmp_path / "ml.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       "1\t10\t5\t881250949\n1\t11\t3\t881250960\n2\t10\t4\t891717742\n")
    (tmp_path / "ml.item").write_text("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                                      "10\tToy Story\t1995\tAnimation Children's Comedy\n")
    (tmp_path / "ml.user").write_text("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                                      "1\t24\tM\ttechnician\t85711\n")
    log = load("movielens", tmp_path)
    assert log.rows[0][0] >= 946_684_800_000 and (log.rows[0][0] - 881250949000) % (7 * 86_400_000) == 0
    kinds = [(r[1], r[3], r[4]) for r in log.rows]
    assert kinds == [("u1", VIEW, "10"), ("u1", PURCHASE, "10"), ("u1", VIEW, "11"), ("u2", VIEW, "10"),
                     ("u2", PURCHASE, "10")]
    assert log.rows[1][5] == log.rows[0][2].replace("s", "o", 1)      # one order per user and day
    assert log.products["10"]["title"] == "Toy Story" and log.products["10"]["category"] == "Movies > Animation"
    assert log.users == {"u1": {"id": "u1", "age": 24, "gender": "m", "interests": ["technician"]}}


def test_replay_marks_users_and_imports_profiles(tmp_path):
    from server.evaluation.formats import Log
    from server.evaluation.replay import build, replay
    rows = [(1_700_000_000_000 + k * 1000, "u1" if k % 2 else "v2", f"s{k % 2}", VIEW, f"p{k % 3}", None, 1.0, None,
             None, None) for k in range(6)]
    log = Log("t", rows, {}, users={"u1": {"id": "u1", "gender": "f", "age": 30}})
    shard, rep = replay(log, rows, tmp_path)
    model = build(shard)
    shard.close_sync()
    ds = model.ds
    p = ds.person("u1", "u1")
    assert p >= 0 and ds.person_is_user[p] and ds.profile_gender[p] == "f" and ds.profile_age_band[p]
    assert ds.person(None, "v2") >= 0 and not ds.person_is_user[ds.person(None, "v2")]
