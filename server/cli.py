"""The ``funnelrec`` command line (click: the usual, well-kept choice; sqlite-utils brings it).

Every command takes ``--data-dir`` (default: $FUNNELREC_DATA_DIR or ./data) and ``--json`` for
scripts. Secrets are printed once, at creation or rotation, and never logged.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path

import click

from .config import Settings, settings_markdown
from .tenants import TenantError, TenantRegistry


def _settings(data_dir: str | None, **overrides) -> Settings:
    return Settings.from_env(data_dir=Path(data_dir) if data_dir else None, **overrides)


def _registry(data_dir: str | None) -> TenantRegistry:
    s = _settings(data_dir)
    return TenantRegistry(s.data_dir, s.tenant_cache_s)


def _out(as_json: bool, data, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(text)


def _fail(as_json: bool, message: str, code: int = 1):
    if as_json:
        click.echo(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


data_dir_option = click.option("--data-dir", envvar="FUNNELREC_DATA_DIR", default=None,
                               help="Data folder (default ./data).")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """funnelrec: real-time, funnel-aware product recommendations for online shops."""


# -- serve -----------------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8400).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--log-level", default=None, help="debug, info, warning, error.")
@data_dir_option
@json_option
def serve(host, port, workers, log_level, data_dir, as_json=False) -> None:
    """Run the HTTP service."""
    import uvicorn

    s = _settings(data_dir, host=host, port=port, workers=workers, log_level=log_level)
    os.environ["FUNNELREC_DATA_DIR"] = str(s.data_dir)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if log_level:
        os.environ["FUNNELREC_LOG_LEVEL"] = log_level
    TenantRegistry(s.data_dir).close()  # create the data dir and control db before workers race for it
    if as_json:
        click.echo(json.dumps({"ok": True, "url": f"http://{s.host}:{s.port}", "data_dir": str(s.data_dir),
                               "workers": s.workers}))
    else:
        click.echo(f"funnelrec serving on http://{s.host}:{s.port} (data: {s.data_dir}, workers: {s.workers})", err=True)
    from . import sidecars, workers as worker_procs

    options = dict(log_level="warning", access_log=False, server_header=False, proxy_headers=s.trust_forwarded_for,
                   **worker_procs.http_options())
    own_sockets = s.workers > 1 and worker_procs.supported()  # one SO_REUSEPORT socket per worker
    if own_sockets:
        try:
            worker_procs.check_port(s.host, s.port)
        except OSError as exc:
            _fail(as_json, f"funnelrec serve could not start: cannot listen on {s.host}:{s.port}: {exc}")
    with contextlib.ExitStack() as stack:
        try:  # the shard writer and model builder processes (server/sidecars.py)
            stack.enter_context(sidecars.running(s))
        except RuntimeError as exc:  # e.g. another server on this data dir (the sidecar said why above)
            _fail(as_json, f"funnelrec serve could not start: {exc}")
        if own_sockets:
            worker_procs.run(s.host, s.port, s.workers, options)
        else:
            uvicorn.run("server.app:app_from_env", factory=True, host=s.host, port=s.port, workers=s.workers, **options)


# -- tenants ---------------------------------------------------------------------------
@main.group()
def tenant() -> None:
    """Create, list, change and delete tenants (merchants)."""


@tenant.command("create")
@click.argument("slug")
@click.option("--origin", "origins", multiple=True, help="Allowed site origin, e.g. https://shop.example (repeatable).")
@click.option("--name", default=None, help="Display name.")
@click.option("--test-mode", is_flag=True, help="Keep bot / headless traffic (for tests and demos).")
@click.option("--ignore-dnt", is_flag=True, help="Do not honour Do-Not-Track / Global Privacy Control.")
@click.option("--currency", default="USD", show_default=True)
@click.option("--locale", default="en", show_default=True)
@click.option("--timezone", default="UTC", show_default=True,
              help="The shop's time zone (IANA name, e.g. Asia/Seoul): hour of day and weekday of visits.")
@data_dir_option
@json_option
def tenant_create(slug, origins, name, test_mode, ignore_dnt, currency, locale, timezone, data_dir, as_json) -> None:
    """Create a tenant and print its site key and (once) its secret key."""
    reg = _registry(data_dir)
    try:
        t, secret = reg.create(slug, origins, name=name, test_mode=test_mode, honor_dnt=not ignore_dnt,
                               currency=currency, locale=locale, timezone=timezone)
    except TenantError as exc:
        _fail(as_json, str(exc))
    _out(as_json, {"ok": True, **t.public(), "secret_key": secret},
         f"created tenant {t.slug}\n  site key:   {t.site_key}   (public, goes into the snippet)\n"
         f"  secret key: {secret}   (server-to-server; shown only now)\n"
         f"  origins:    {', '.join(t.origins) or '(any: set them before going live)'}")


@tenant.command("list")
@data_dir_option
@json_option
def tenant_list(data_dir, as_json) -> None:
    """List tenants."""
    tenants = _registry(data_dir).all()
    lines = [f"{t.slug:24} {t.site_key}  origins={','.join(t.origins) or '*'}{'  test-mode' if t.test_mode else ''}"
             for t in tenants]
    _out(as_json, {"ok": True, "tenants": [t.public() for t in tenants]}, "\n".join(lines) or "(no tenants)")


@tenant.command("rotate")
@click.argument("slug")
@click.option("--site/--no-site", default=True, help="Rotate the site key.")
@click.option("--secret/--no-secret", default=True, help="Rotate the secret key.")
@data_dir_option
@json_option
def tenant_rotate(slug, site, secret, data_dir, as_json) -> None:
    """Replace the site key and/or the secret key (the old ones stop working)."""
    try:
        t, new_secret = _registry(data_dir).rotate(slug, site=site, secret=secret)
    except TenantError as exc:
        _fail(as_json, str(exc))
    data = {"ok": True, **t.public()}
    text = f"rotated keys of {slug}\n  site key:   {t.site_key}"
    if new_secret:
        data["secret_key"] = new_secret
        text += f"\n  secret key: {new_secret}   (shown only now)"
    _out(as_json, data, text)


@tenant.command("origins")
@click.argument("slug")
@click.argument("origins", nargs=-1)
@data_dir_option
@json_option
def tenant_origins(slug, origins, data_dir, as_json) -> None:
    """Set the allowed origins (none given: any origin, for development only)."""
    try:
        t = _registry(data_dir).update(slug, origins=list(origins))
    except TenantError as exc:
        _fail(as_json, str(exc))
    _out(as_json, {"ok": True, **t.public()}, f"{slug} origins: {', '.join(t.origins) or '(any)'}")


@tenant.command("set")
@click.argument("slug")
@click.option("--name", default=None)
@click.option("--test-mode/--no-test-mode", default=None)
@click.option("--honor-dnt/--ignore-dnt", default=None)
@click.option("--currency", default=None)
@click.option("--locale", default=None)
@click.option("--timezone", default=None, help="The shop's time zone (IANA name, e.g. Asia/Seoul); takes effect with a rebuild, asked for at once.")
@data_dir_option
@json_option
def tenant_set(slug, name, test_mode, honor_dnt, currency, locale, timezone, data_dir, as_json) -> None:
    """Change a tenant's name, test mode, Do-Not-Track policy, currency, locale or time zone."""
    try:
        t = _registry(data_dir).update(slug, name=name, test_mode=test_mode, honor_dnt=honor_dnt,
                                       currency=currency.upper() if currency else None, locale=locale,
                                       timezone=timezone)
    except TenantError as exc:
        _fail(as_json, str(exc))
    if timezone:   # the models count visits in the new time zone from their next build: ask the builder for one
        from .builder import note
        with contextlib.suppress(OSError):
            note(_settings(data_dir), slug, "force")
    _out(as_json, {"ok": True, **t.public()}, json.dumps(t.public(), ensure_ascii=False, indent=2))


@tenant.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm: all of the tenant's data is removed.")
@data_dir_option
@json_option
def tenant_delete(slug, yes, data_dir, as_json) -> None:
    """Delete a tenant and all of its data."""
    if not yes:
        _fail(as_json, f"this removes every event, product and model of {slug!r}; add --yes to confirm", 2)
    try:
        _registry(data_dir).delete(slug)
    except TenantError as exc:
        _fail(as_json, str(exc))
    _out(as_json, {"ok": True, "deleted": slug}, f"deleted tenant {slug} and its data")


# -- import ----------------------------------------------------------------------------
@main.command("import")
@click.argument("kind", type=click.Choice(["products", "users", "reviews", "events"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "json", "ndjson"]), default=None,
              help="File format (default: from the extension; .gz is unpacked).")
@click.option("--batch-size", default=5000, show_default=True, help="Records per transaction.")
@data_dir_option
@json_option
def import_cmd(kind, file, slug, fmt, batch_size, data_dir, as_json) -> None:
    """Import products, users, reviews or events (with their original times) from a file."""
    from .catalog.importer import import_file
    from .shards import Shard

    s = _settings(data_dir)
    reg = TenantRegistry(s.data_dir)
    try:
        t = reg.require(slug)
    except TenantError as exc:
        _fail(as_json, str(exc))
    shard = Shard.open(t.slug, reg.shard_path(t.slug), s)
    size = file.stat().st_size
    try:
        if as_json or not sys.stderr.isatty() and os.environ.get("FUNNELREC_PROGRESS") != "1":
            report = import_file(shard, kind, file, fmt, batch_size)
        else:
            with click.progressbar(length=size, label=f"importing {kind}", file=sys.stderr, show_pos=False) as bar:
                report = import_file(shard, kind, file, fmt, batch_size, progress=bar.update)
    except ValueError as exc:
        _fail(as_json, str(exc))
    finally:
        shard.close_sync()
    r = report.as_dict()
    text = (f"{kind}: read {r['read']}, stored {r['stored']}, duplicates {r['duplicates']}, "
            f"rejected {r['rejected']} in {r['seconds']} s")
    for e in report.errors[:10]:
        text += f"\n  record {e['record']}: {e['reason']}"
    if report.rejected > 10:
        text += f"\n  ... and {report.rejected - 10} more rejected (use --json for up to 100)"
    _out(as_json, {"ok": True, **r}, text)


# -- privacy ---------------------------------------------------------------------------
@main.group()
def privacy() -> None:
    """Export or erase everything stored about one visitor or user."""


def _privacy_shard(data_dir, slug, as_json):
    from .shards import Shard

    s = _settings(data_dir)
    reg = TenantRegistry(s.data_dir)
    try:
        t = reg.require(slug)
    except TenantError as exc:
        _fail(as_json, str(exc))
    return Shard.open(t.slug, reg.shard_path(t.slug), s)


@privacy.command("export")
@click.option("--tenant", "slug", required=True)
@click.option("--visitor", default=None)
@click.option("--user", default=None)
@data_dir_option
def privacy_export(slug, visitor, user, data_dir) -> None:
    """Print a visitor's or user's data as JSON."""
    from . import privacy as p

    if not (visitor or user):
        _fail(False, "give --visitor or --user", 2)
    shard = _privacy_shard(data_dir, slug, True)
    try:
        conn = shard.connect_read()
        click.echo(json.dumps({"ok": True, **p.export(conn, visitor=visitor, user=user)}, ensure_ascii=False, indent=2))
        conn.close()
    finally:
        shard.close_sync()


@privacy.command("erase")
@click.option("--tenant", "slug", required=True)
@click.option("--visitor", default=None)
@click.option("--user", default=None)
@data_dir_option
@json_option
def privacy_erase(slug, visitor, user, data_dir, as_json) -> None:
    """Delete a visitor's or user's data."""
    from . import privacy as p

    if not (visitor or user):
        _fail(as_json, "give --visitor or --user", 2)
    shard = _privacy_shard(data_dir, slug, as_json)
    try:
        removed = shard.write_sync(functools.partial(p.erase, visitor=visitor, user=user))
    finally:
        shard.close_sync()
    _out(as_json, {"ok": True, "erased": removed}, "erased: " + ", ".join(f"{k} {v}" for k, v in removed.items()))


# -- misc ------------------------------------------------------------------------------
@main.command("settings")
@data_dir_option
@json_option
def settings_cmd(data_dir, as_json) -> None:
    """Print every setting: its current value and default (Markdown, or JSON)."""
    from dataclasses import fields

    if as_json:
        current = _settings(data_dir)
        click.echo(json.dumps({f.name: {"env": f"FUNNELREC_{f.name.upper()}", "value": str(getattr(current, f.name)),
                                        "default": str(f.default), "help": f.metadata["help"]}
                               for f in fields(Settings)}, indent=2))
    else:
        click.echo(settings_markdown(), nl=False)


@main.command("snippet")
@click.option("--tenant", "slug", required=True)
@click.option("--endpoint", default=None, help="Public URL of this service (default http://HOST:PORT).")
@click.option("--consent-required", is_flag=True, help="Track nothing until the page calls funnelrec('consent', true).")
@click.option("--nonce", default=None, help="CSP nonce to put on the inline tags.")
@data_dir_option
@json_option
def snippet_cmd(slug, endpoint, consent_required, nonce, data_dir, as_json) -> None:
    """Print the script tag to paste into the shop."""
    from .widget_assets import snippet_html

    s = _settings(data_dir)
    try:
        t = TenantRegistry(s.data_dir).require(slug)
    except TenantError as exc:
        _fail(as_json, str(exc))
    html = snippet_html(t.site_key, endpoint or f"http://{s.host}:{s.port}", t.locale, respect_dnt=t.honor_dnt,
                        consent_required=consent_required, nonce=nonce, dist=s.widget_dir)
    _out(as_json, {"ok": True, "tenant": slug, "snippet": html}, html)


@main.command("demo")
@click.option("--port", type=int, default=None, help="Port (default 8400).")
@click.option("--host", default=None)
@click.option("--no-serve", is_flag=True, help="Only set up the demo tenant and its data.")
@data_dir_option
@json_option
def demo_cmd(port, host, no_serve, data_dir, as_json) -> None:
    """Set up the demo tenant with its catalog and traffic, then serve."""
    from .demo import setup_demo

    s = _settings(data_dir, port=port, host=host)
    info = setup_demo(s, echo=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps({"ok": True, **info}, indent=2))
    else:
        click.echo("\n".join(f"  {k}: {v}" for k, v in info.items()), err=True)
    if not no_serve:
        ctx = click.get_current_context()
        ctx.invoke(serve, host=s.host, port=s.port, workers=None, log_level=None, data_dir=str(s.data_dir))


from .evaluation.cli import eval_cmd  # noqa: E402  (its own module: `funnelrec eval`)

main.add_command(eval_cmd, "eval")

if __name__ == "__main__":
    main()
