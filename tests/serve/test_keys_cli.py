"""`fakescope keys create|list|revoke` through typer's CliRunner, on both databases."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.serve.auth import authenticate
from fakescope.serve.db import make_engine, session_factory

runner = CliRunner(env={"COLUMNS": "160"})


def keys(*args: str, db: str | None = None):
    return runner.invoke(app, ["keys", *args, *(["--db", db] if db else [])])


def check_token(db_url: str, token: str):
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return authenticate(session, token)
    finally:
        engine.dispose()


def test_create_list_revoke(db_url):
    created = keys("create", "ci pipeline", db=db_url)
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert re.fullmatch(r"fsk_[A-Za-z0-9_-]{43}", token), "stdout is the token alone, for scripts"
    assert "will not be shown again" in created.stderr
    key = check_token(db_url, token)
    assert key is not None and key.name == "ci pipeline" and key.id in created.stderr

    listed = keys("list", db=db_url)
    assert listed.exit_code == 0, listed.output
    assert key.id[:12] in listed.stdout and token[:12] in listed.stdout and "ci pipeline" in listed.stdout
    assert token not in listed.stdout
    assert "never" not in listed.stdout and listed.stdout.count(key.last_used_at.strftime("%Y-%m-%d")) >= 2, "last use shown"

    revoked = keys("revoke", token[:12], db=db_url)
    assert revoked.exit_code == 0 and f"API key {key.id} (ci pipeline) revoked" in revoked.stdout
    assert check_token(db_url, token) is None
    again = keys("revoke", key.id[:8], db=db_url)
    assert again.exit_code == 0 and "was already revoked on" in again.stdout


def test_unknown_key_and_bad_names_are_one_line_errors(sqlite_url):
    missing = keys("revoke", "deadbeef", db=sqlite_url)
    assert (
        missing.exit_code == 1
        and missing.stderr.strip() == "error: no API key with id or prefix 'deadbeef' (see `fakescope keys list`)"
    )
    blank = keys("create", "  ", db=sqlite_url)
    assert blank.exit_code == 2 and "1 to 200 characters" in blank.stderr and "Traceback" not in blank.output


def test_database_is_found_like_the_server_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["keys", "create", "a", "--data-dir", "data"]).exit_code == 0
    assert (tmp_path / "data" / "fakescope.db").is_file()
    monkeypatch.setenv("FAKESCOPE_DATA_DIR", str(tmp_path / "env-dir"))
    empty = runner.invoke(app, ["keys", "list"])
    assert empty.exit_code == 0 and "no API keys" in empty.stdout and (tmp_path / "env-dir" / "fakescope.db").is_file()


def test_unreachable_or_malformed_databases_are_one_line_errors(postgres_server):
    from tests.serve.conftest import free_port

    res = keys("list", db=f"postgresql+psycopg://u:hunter2@127.0.0.1:{free_port()}/x")
    assert res.exit_code == 2 and res.stderr.startswith("error: cannot open database postgresql+psycopg://u:***@127.0.0.1:")
    assert "hunter2" not in res.output and len(res.stderr.strip().splitlines()) == 1
    res = keys("list", db="not a url")
    assert res.exit_code == 2 and res.stderr.strip() == "error: not a database URL: not a url"


def test_cli_import_stays_light():
    """`fakescope --help` must not pay for SQLAlchemy, FastAPI or torch."""
    code = "import sys, fakescope.cli; print(sorted(m for m in ('sqlalchemy', 'fastapi', 'torch', 'httpx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_admin_keys_are_created_with_a_flag_and_listed_as_such(sqlite_url):
    created = keys("create", "ops", "--admin", db=sqlite_url)
    assert created.exit_code == 0 and "created admin API key" in created.stderr, created.output
    assert check_token(sqlite_url, created.stdout.strip()).admin
    plain = keys("create", "user", db=sqlite_url)
    assert not check_token(sqlite_url, plain.stdout.strip()).admin
    rows = {
        line.split("│")[3].strip(): line.split("│")[4].strip()
        for line in keys("list", db=sqlite_url).stdout.splitlines()
        if "│" in line
    }
    assert rows["ops"] == "yes" and rows["user"] == "—"
