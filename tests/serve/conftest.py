"""Databases for the service tests: a SQLite file, and a real throwaway PostgreSQL server.

The PostgreSQL server is started once per test session from the Debian binaries
(/usr/lib/postgresql/*/bin), on a free loopback port with its socket in its own temp dir,
and stopped at the end. `db_url` runs a test on both backends, each time on a new, empty
database; tests that need PostgreSQL carry the `postgres` marker (deselect with -m "not postgres").
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "fakescope"


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder holding initdb and pg_ctl."""
    found = [Path(d) for d in glob.glob(PG_BIN_GLOB) if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _runner(base: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, hand the dir to `postgres` and run its tools as that user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and `runuser` is missing: cannot start PostgreSQL as the postgres user")
    try:
        import pwd

        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    os.chown(base, pw.pw_uid, pw.pw_gid)
    return [runuser, "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_pg_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL binaries (initdb, pg_ctl) not found in {PG_BIN_GLOB}")
    base = Path(tempfile.mkdtemp(prefix="fakescope-pg-"))
    data, log_file = base / "data", base / "server.log"
    try:
        as_pg = _runner(base)
        init = subprocess.run(
            [
                *as_pg,
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {(init.stderr or init.stdout).strip()[-500:]}")
        for _ in range(3):
            port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = subprocess.run(
                [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log_file), "-w", "-t", "60", "-o", options, "start"],
                check=False,
                capture_output=True,
                text=True,
                timeout=90,
            )
            if start.returncode == 0:
                break
        else:
            tail = log_file.read_text(errors="replace")[-500:] if log_file.exists() else start.stderr[-500:]
            pytest.skip(f"PostgreSQL did not start: {tail.strip()}")
        server = PostgresServer(port)
        server.create_database("fakescope")
        try:
            yield server
        finally:
            subprocess.run(
                [*as_pg, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                check=False,
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """The session's shared `fakescope` database (tests that need an empty one use `fresh_postgres_url`)."""
    return postgres_server.url("fakescope")


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)  # WITH (FORCE): connections a test left open do not block it


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fakescope.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fakescope.db'}"
    return request.getfixturevalue("fresh_postgres_url")
