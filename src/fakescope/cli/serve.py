"""`fakescope serve` and `fakescope keys`: run the HTTP service, manage its API keys."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fakescope.cli.console import console, err_console, fail
from fakescope.errors import FakescopeError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy.orm import Session

commands = typer.Typer()


def serve_settings(**given: Any) -> Any:
    """ServeSettings from the options a user gave (None: not given, so FAKESCOPE_* or the default applies)."""
    from pydantic import ValidationError

    from fakescope.serve.settings import ServeSettings

    try:
        return ServeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        fail(f"bad setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def migrate_service_db(url: str) -> None:
    """Open the service's database and bring its schema up to date, or fail with one line (password hidden)."""
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from fakescope.serve.db import upgrade_database

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        fail(f"not a database URL: {url}")
    try:
        upgrade_database(url)
    except (SQLAlchemyError, CommandError, ValueError, OSError) as err:
        fail(f"cannot open database {shown}: {(str(err).strip().splitlines() or [type(err).__name__])[0]}")


@commands.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port (default 8000)")] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="database URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir)"),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="uploads, thumbnails, SQLite file (default fakescope-data)")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="worker processes for jobs (default 1)")] = None,
    detect_workers: Annotated[
        int | None, typer.Option("--detect-workers", min=1, max=64, help="worker processes for POST /v1/detect (default 1)")
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="no API key needed: for use on your own machine only")] = False,
    allowed_root: Annotated[
        list[Path] | None,
        typer.Option("--allowed-root", help="server folder jobs may name by path, repeatable (default: none, path jobs refused)"),
    ] = None,
    url_host: Annotated[
        list[str] | None,
        typer.Option("--url-host", help="host jobs may name by URL, repeatable (default: none, URL jobs refused)"),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="registered face model (see `fakescope models`)")] = None,
    frames: Annotated[
        int | None, typer.Option("--frames", "-n", min=1, max=512, help="frames sampled per video (default 32)")
    ] = None,
) -> None:
    """Run the HTTP service: REST API (/v1, docs at /docs), web page (/), /metrics, /healthz and /readyz.

    Unset options fall back to FAKESCOPE_* environment variables (e.g. FAKESCOPE_DB_URL), then to the defaults."""
    import uvicorn

    from fakescope.models import get_pretrained_cfg
    from fakescope.serve import create_app
    from fakescope.serve.app import UVICORN_OPTIONS

    settings = serve_settings(
        host=host,
        port=port,
        db_url=db,
        data_dir=data_dir,
        workers=workers,
        detect_workers=detect_workers,
        no_auth=no_auth or None,
        allowed_roots=allowed_root or None,
        url_hosts=url_host or None,
        model=model,
        frames=frames,
    )
    try:
        get_pretrained_cfg(settings.model)
    except FakescopeError as err:
        fail(str(err))
    migrate_service_db(settings.resolved_db_url())  # here, so a bad database is one line, not a server traceback
    try:
        application = create_app(settings)
    except (FakescopeError, OSError) as err:
        fail(str(err))
    auth = "[yellow]no API key needed[/]" if settings.no_auth else "API keys required (`fakescope keys create NAME`)"
    console.print(
        f"fakescope serving on http://{settings.host}:{settings.port} · data {escape(str(settings.data_dir))} · {auth}",
        soft_wrap=True,
        highlight=False,
    )
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        **UVICORN_OPTIONS,
    )


keys_app = typer.Typer(no_args_is_help=True, help="Manage the service's API keys (stored hashed: a token is shown only once).")
commands.add_typer(keys_app, name="keys")

DbOpt = Annotated[
    str | None, typer.Option("--db", help="database URL, as `fakescope serve --db` (default: SQLite in the data dir)")
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="the service's data folder (default fakescope-data)")]


@contextmanager
def keys_session(db: str | None, data_dir: Path | None) -> Iterator[Session]:
    """A session on the service's database, found and migrated exactly as `fakescope serve` does."""
    from fakescope.serve.db import make_engine, session_factory

    url = serve_settings(db_url=db, data_dir=data_dir).resolved_db_url()
    migrate_service_db(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def utc_minute(value: datetime | None, empty: str = "—") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else empty


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="who or what the key is for, e.g. ci-pipeline")],
    admin: Annotated[bool, typer.Option("--admin", help="the key also sees every user's usage figures (GET /v1/stats)")] = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a key and print its token (on stdout, alone, so scripts can capture it)."""
    from fakescope.serve.auth import create_key

    with keys_session(db, data_dir) as session:
        try:
            key, token = create_key(session, name, admin=admin)
        except FakescopeError as err:
            fail(str(err))
    kind = "admin API key" if key.admin else "API key"
    err_console.print(
        f"created {kind} {key.id} ({escape(key.name)}). Copy the token now: it will not be shown again.",
        soft_wrap=True,
        highlight=False,
    )
    typer.echo(token)


@keys_app.command("list")
def keys_list(db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List keys: id, token prefix, name, admin, created, last used, revoked (times in UTC)."""
    from fakescope.serve.auth import list_keys

    with keys_session(db, data_dir) as session:
        keys = list_keys(session)
    if not keys:
        console.print("no API keys (create one with `fakescope keys create NAME`)", highlight=False, markup=False)
        return
    table = Table(title="API keys (UTC; `keys revoke` takes the id shown or the prefix)", title_justify="left")
    for col in ["id", "prefix", "name", "admin", "created", "last used", "revoked"]:
        # Ids and prefixes are copied from here: they never wrap; names fold, dates wrap at their space.
        table.add_column(col, no_wrap=col in ("id", "prefix"), overflow="fold", min_width=len(col))
    for key in keys:
        revoked = f"[red]{utc_minute(key.revoked_at)}[/]" if key.revoked_at else "—"
        table.add_row(
            key.id[:12],
            key.prefix,
            escape(key.name),
            "yes" if key.admin else "—",
            utc_minute(key.created_at),
            utc_minute(key.last_used_at, "never"),
            revoked,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id_or_prefix: Annotated[str, typer.Argument(help="the key's id (or its first 6+ characters) or its token prefix")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key: requests with its token get 401 from then on."""
    from fakescope.serve.auth import find_key, revoke_key

    with keys_session(db, data_dir) as session:
        try:
            already = find_key(session, key_id_or_prefix).revoked_at
            key = revoke_key(session, key_id_or_prefix)
        except FakescopeError as err:
            fail(str(err), 1)
    state = f"was already revoked on {utc_minute(already)}" if already else "revoked"
    console.print(f"API key {key.id} ({escape(key.name)}) {state}", soft_wrap=True, highlight=False)
