"""Every setting of funnelrec, its default and its help text, in one table.

Settings are read from the environment (``FUNNELREC_<NAME>``), then from a ``.env`` file
in the working directory, then fall back to the default below. A value that cannot be cast
fails loudly at start-up. ``docs/settings.md`` is generated from this table and a test keeps
the two in step (``python -m server.config > docs/settings.md``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _setting(default: Any, help: str, cast: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "cast": cast})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(Path("./data"), "Folder holding control.db and one SQLite shard per tenant.", Path)
    host: str = _setting("127.0.0.1", "Address `funnelrec serve` binds to. Loopback by default: put a reverse proxy in front.")
    port: int = _setting(8400, "Port `funnelrec serve` listens on.", int)
    workers: int = _setting(1, "Number of uvicorn worker processes.", int)
    log_level: str = _setting("info", "Log level: debug, info, warning or error. Logs are JSON lines on stderr.")
    debug: bool = _setting(False, "Show tracebacks in error responses. Never in production.", _bool)
    max_body_bytes: int = _setting(256 * 1024, "Largest request body accepted on the public events endpoint (413 above).", int)
    max_events_per_batch: int = _setting(500, "Most events in one public batch (400 above).", int)
    max_import_body_bytes: int = _setting(32 * 1024 * 1024, "Largest body accepted on the secret bulk APIs (catalog, event import).", int)
    max_import_records: int = _setting(50_000, "Most records in one secret bulk request.", int)
    rate_limit_rps: float = _setting(50.0, "Public requests per second allowed per tenant and client IP (token bucket); 0 turns the limit off.", float)
    rate_limit_burst: int = _setting(100, "Bucket size of the per-IP rate limit: requests allowed in a burst.", int)
    max_clock_skew_s: int = _setting(86_400, "Events stamped further than this in the future are rejected.", int)
    sqlite_synchronous: str = _setting("FULL", "SQLite `synchronous` for shards: FULL survives power loss; NORMAL only process crashes.")
    sqlite_cache_mb: int = _setting(64, "Page cache of each shard's writer connection, in MiB.", int)
    sqlite_wal_autocheckpoint: int = _setting(10_000, "WAL pages (4 KiB) at which a shard's writer checkpoints inside a commit; with the checkpoint thread (`sqlite_checkpoint_interval_ms`) this is the WAL's bound and the writer only copies what the thread has not, without it every checkpoint runs there (larger means fewer, bigger checkpoints).", int)
    sqlite_checkpoint_interval_ms: float = _setting(250.0, "While a shard's writer commits, a thread beside it runs a passive WAL checkpoint at most this often, so checkpoints run on another core instead of inside the writer's commits; 0: no thread, the writer checkpoints alone (`sqlite_wal_autocheckpoint`).", float)
    sqlite_busy_timeout_ms: int = _setting(10_000, "How long a shard connection waits on a lock held by another process.", int)
    writer_mode: str = _setting("auto", "Where each shard's one writer runs: `process` (one writer process beside the workers, started by `funnelrec serve`: every worker's writes go to it), `thread` (a thread in each process that writes), `auto` (process under `funnelrec serve`, thread otherwise).")
    builder_mode: str = _setting("auto", "Where models are built and rankers trained: `process` (one builder process beside the workers, started by `funnelrec serve`; workers load the models it writes), `thread` (a thread in the serving process), `auto` (process under `funnelrec serve`, thread otherwise).")
    write_batch_max: int = _setting(2_000, "Most queued write jobs group-committed in one transaction.", int)
    write_group_wait_ms: float = _setting(1.0, "Under concurrent load, how long a shard's writer waits for more jobs to join a commit (0: never wait).", float)
    read_pool_size: int = _setting(4, "Read-only connections kept open per shard.", int)
    shard_idle_close_s: int = _setting(600, "Close a shard's writer and readers after this many idle seconds.", int)
    trust_forwarded_for: bool = _setting(False, "Take the client IP from X-Forwarded-For (only behind a trusted proxy).", _bool)
    tenant_cache_s: float = _setting(2.0, "How long a worker trusts its cached copy of the tenant list before checking the control database for changes.", float)
    engine_first_build_wait_s: float = _setting(3.0, "How long the first recommendation request of a tenant in a process waits for its first model build before answering from the catalog alone.", float)
    engine_rebuild_after_events: int = _setting(1000, "Rebuild a tenant's model after this many new events stored through this process.", int)
    engine_rebuild_interval_s: float = _setting(300.0, "Rebuild a tenant's model at least this often when its shard has new events (from any process).", float)
    engine_tick_s: float = _setting(5.0, "How often each process checks which tenants' models are due for a rebuild.", float)
    engine_max_events: int = _setting(5_000_000, "Most events (the newest) read into one model build; 0 reads all.", int)
    engine_result_cache_size: int = _setting(20_000, "Computed slot lists kept per process (exact cache keyed by model, config, page and the visitor's live state); 0 turns it off.", int)
    live_visitors: int = _setting(50_000, "Visitors whose latest events each worker keeps in memory per tenant (server/live.py), fed by the shard's new events; others are read from the shard on their next request.", int)
    live_preload_events: int = _setting(200_000, "When a worker opens a tenant, the visitors of its last this-many events are read into the live state in the background (a warm start after a restart); 0 turns it off.", int)
    engine_answer_cache_size: int = _setting(1024, "Source answers kept per tenant model and process, by what each recommender reads (shop-wide lists, a product's neighbours, a category, a query); an answer is kept when its key is asked a second time; ~10 KB each.", int)
    engine_pool_cache_size: int = _setting(512, "Blended candidate pools kept per tenant model and process for strategies whose sources are all cacheable (kept when the key is asked a second time; the rules still run per request).", int)
    ranker_enabled: bool = _setting(True, "Train the learned ranker per tenant in the background; it serves only where it beats the blend on the tenant's latest validation slice.", _bool)
    metrics_enabled: bool = _setting(True, "Expose Prometheus metrics on /metrics.", _bool)
    widget_dir: Path = _setting(Path(__file__).resolve().parent.parent / "widget" / "dist", "Folder with the built widget served under /w/.", Path)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> "Settings":
        values: dict[str, Any] = {}
        source = dict(_read_dotenv(Path(".env")))
        source.update(os.environ if env is None else env)
        for f in fields(cls):
            key = "FUNNELREC_" + f.name.upper()
            if key in source:
                cast = f.metadata["cast"] or str
                try:
                    values[f.name] = cast(source[key])
                except ValueError as exc:
                    raise SystemExit(f"setting {key}={source[key]!r} is invalid: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def sidecar(self, name: str) -> bool:
        """True when the ``writer`` / ``builder`` runs as its own process (server/sidecars.py)."""
        mode = getattr(self, f"{name}_mode")
        if mode == "process":
            return True
        if mode == "thread":
            return False
        return name in os.environ.get("FUNNELREC_SIDECARS", "").split(",")

    def run_dir(self) -> Path:
        """Sockets, locks and the models the builder process writes."""
        return Path(self.data_dir) / "run"

    def shard_dir(self) -> Path:
        return Path(self.data_dir) / "tenants"

    def control_path(self) -> Path:
        return Path(self.data_dir) / "control.db"


def _read_dotenv(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.append((k.strip(), v.strip().strip('"').strip("'")))
    return out


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting, read from the environment variable shown (or a `.env` file in the working",
        "directory), with its default. Generated from `server/config.py` by",
        "`python -m server.config > docs/settings.md`; a test fails when the two differ.",
        "",
        "| variable | default | what it does |",
        "|---|---|---|",
    ]
    for f in fields(Settings):
        default = f.default
        if f.name == "widget_dir":
            default = "<install>/widget/dist"
        lines.append(f"| `FUNNELREC_{f.name.upper()}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
