"""Where served lists are stored (``rec_served``, migrations 2 and 3): what the attribution and
privacy queries read of it survives the schema's changes."""
import sqlite3

from server import privacy, serving
from server.migrations import MIGRATIONS
from server.shards import migrate


def _indexes(conn) -> set:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='rec_served'")}


def _row(k: int, visitor: str, ts: int) -> tuple:
    return (f"r_{ts:x}ab{k:x}", ts, visitor, "s", None, "detail", "sim", "detail_similar", "detail_similar", "A", 1,
            '["p1","p2"]', '["item_cf","best_sellers"]')


def test_a_shard_of_version_2_keeps_its_served_rows_and_loses_only_the_ts_index(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    for number, sql in MIGRATIONS:   # a shard as migration 2 left it, with served rows
        if number <= 2:
            conn.executescript(sql)
            conn.execute(f"PRAGMA user_version={number}")
    rows = [_row(k, "v1" if k % 3 else "v2", 1_700_000_000_000 + 7 * k) for k in range(40)][::-1]
    serving.insert_served(rows, conn)
    assert "rec_served_ts" in _indexes(conn)
    assert migrate(conn) == max(n for n, _ in MIGRATIONS) >= 3
    assert "rec_served_ts" not in _indexes(conn)
    assert sorted(conn.execute("SELECT * FROM rec_served").fetchall()) == sorted(rows)
    # attribution reads a list by its rec_id (the primary key); export orders a visitor's rows by ts
    assert conn.execute("SELECT visitor FROM rec_served WHERE rec_id=?", (rows[5][0],)).fetchone() == (rows[5][2],)
    served = privacy.export(conn, visitor="v2")["recommendations_served"]
    assert [d["ts"] for d in served] == sorted(r[1] for r in rows if r[2] == "v2")
    assert served[0]["products"] == ["p1", "p2"] and served[0]["sources"] == ["item_cf", "best_sellers"]
    conn.execute("BEGIN")
    assert privacy.erase(conn, visitor="v2")["rec_served"] == len([r for r in rows if r[2] == "v2"])
    conn.execute("COMMIT")
    assert conn.execute("SELECT count(*) FROM rec_served WHERE visitor='v2'").fetchone() == (0,)


def test_a_new_shard_stores_served_rows_without_the_ts_index(tmp_path):
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    migrate(conn)
    assert _indexes(conn) == set()   # (the table is its rec_id key: WITHOUT ROWID)
    rows = [_row(k, "v", 1_700_000_000_000 + k) for k in range(5)]
    serving.insert_served(rows, conn)
    serving.insert_served(rows[:2], conn)   # a batch sent again (the writer's retry) is stored once
    assert conn.execute("SELECT count(*) FROM rec_served").fetchone() == (5,)
