"""File import for the CLI: CSV / TSV / JSON / NDJSON (optionally .gz) -> validated records -> shard.

``sqlite_utils.utils.rows_from_file`` reads and sniffs the file formats (a well-kept reader that
handles CSV dialects, BOMs and NDJSON), so this module only coerces and validates. Records are
written in batches through the shard's writer; a bad record is reported with its line number and
reason and the others are kept. Imported events keep their original timestamps.
"""
from __future__ import annotations

import gzip
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import msgspec
from sqlite_utils.utils import Format, rows_from_file

from ..ingest.schema import event_from_obj
from ..ingest.store import store_events_job
from .schema import coerce_csv, convert, csv_cells, parse_time_ms
from .store import UPSERT_JOBS

KINDS = ("products", "users", "reviews", "events")

_EVENT_INT = {"ts", "engaged_ms", "visible_ms", "scroll_ms", "results", "position", "duration_ms", "pages"}
_EVENT_FLOAT = {"quantity", "price", "total", "scroll_pct", "rating"}
_EVENT_JSON = {"lines", "content_ms", "props"}


def coerce_event_csv(row: dict) -> dict:
    out: dict = {}
    for k, v in csv_cells(row):
        try:
            if k in _EVENT_JSON and isinstance(v, str):
                v = json.loads(v)
            elif k == "ts":
                v = parse_time_ms(v, 0)
            elif k in _EVENT_INT:
                v = int(float(v))
            elif k in _EVENT_FLOAT:
                v = float(v)
        except ValueError:
            pass  # validation reports it
        out[k] = v
    return out


def normalize_event(obj: dict) -> dict:
    """JSON/NDJSON events may give ``ts`` as ISO text; everything else must match the schema."""
    if isinstance(obj, dict) and isinstance(obj.get("ts"), str):
        try:
            obj = {**obj, "ts": parse_time_ms(obj["ts"], 0)}
        except ValueError:
            pass
    return obj


class _Counting(io.RawIOBase):
    """Counts bytes read from the underlying (compressed) file for the progress bar."""

    def __init__(self, raw, on_read: Callable[[int], None]):
        self.raw = raw
        self.on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.raw.readinto(b)
        if n:
            self.on_read(n)
        return n or 0


@dataclass
class ImportReport:
    kind: str
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"kind": self.kind, "read": self.read, "stored": self.stored, "duplicates": self.duplicates,
                "rejected": self.rejected, "errors": self.errors[:100], "seconds": round(self.seconds, 2)}


def _detect_format(path: Path, fmt: str | None) -> Format | None:
    name = path.name.lower().removesuffix(".gz")
    fmt = (fmt or "").lower()
    if fmt in ("csv",) or (not fmt and name.endswith(".csv")):
        return Format.CSV
    if fmt in ("tsv",) or (not fmt and name.endswith(".tsv")):
        return Format.TSV
    if fmt in ("ndjson", "jsonl") or (not fmt and (name.endswith(".ndjson") or name.endswith(".jsonl"))):
        return Format.NL
    if fmt == "json" or (not fmt and name.endswith(".json")):
        return Format.JSON
    return None  # let sqlite-utils sniff


def iter_records(path: Path, fmt: str | None, on_read: Callable[[int], None]) -> tuple[Iterator[dict], bool]:
    """Yields raw records; the bool says whether they came from CSV/TSV (all strings)."""
    raw = open(path, "rb")
    counted = io.BufferedReader(_Counting(raw, on_read), buffer_size=1 << 16)
    stream = gzip.GzipFile(fileobj=counted) if path.name.lower().endswith(".gz") else counted
    format_ = _detect_format(path, fmt)
    if format_ == Format.NL:
        def lines():
            for line in io.TextIOWrapper(stream, encoding="utf-8-sig"):
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        yield {"__bad__": f"not JSON: {exc}"}
        return lines(), False
    rows, detected = rows_from_file(stream, format=format_, encoding="utf-8-sig")
    return rows, detected in (Format.CSV, Format.TSV)


def import_file(shard, kind: str, path: Path, fmt: str | None = None, batch_size: int = 5000,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import ``path`` into ``shard``; ``progress(n_bytes)`` is called as the file is read."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    report = ImportReport(kind)
    start = time.perf_counter()
    records, is_csv = iter_records(path, fmt, progress or (lambda n: None))
    batch: list = []
    line_no = 0

    def flush():
        if not batch:
            return
        if kind == "events":
            res = shard.write_sync(store_events_job(batch, int(time.time() * 1000), "import"))
            report.stored += res.accepted
            report.duplicates += res.duplicates
        else:
            report.stored += shard.write_sync(UPSERT_JOBS[kind](batch))
        batch.clear()

    for rec in records:
        line_no += 1
        report.read += 1
        try:
            if "__bad__" in rec:
                raise ValueError(rec["__bad__"])
            if kind == "events":
                obj = coerce_event_csv(rec) if is_csv else normalize_event(rec)
                batch.append(event_from_obj(obj))
            else:
                batch.append(convert(kind, coerce_csv(rec) if is_csv else rec))
        except (msgspec.ValidationError, ValueError, TypeError) as exc:
            report.rejected += 1
            if len(report.errors) < 1000:
                report.errors.append({"record": line_no, "reason": str(exc)})
            continue
        if len(batch) >= batch_size:
            flush()
    flush()
    report.seconds = time.perf_counter() - start
    return report
