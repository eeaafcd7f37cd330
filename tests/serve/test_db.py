"""Migrations and the ORM on both backends: SQLite and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text

from fakescope.serve.db import ApiKey, Base, Job, UsageEvent, make_engine, session_factory, upgrade_database, utcnow


@contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    """The database at `url` migrated to the latest schema, and an engine on it (disposed after)."""
    upgrade_database(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_migrations_create_the_schema_and_are_idempotent(db_url):
    with migrated_engine(db_url) as engine:
        tables = set(inspect(engine).get_table_names())
        assert {"api_keys", "jobs", "usage_events", "alembic_version"} <= tables
        with engine.connect() as conn:
            first = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        with session_factory(engine)() as session:
            session.add(ApiKey(name="kept", prefix="fsk_abcdefgh", key_hash="0" * 64))
            session.commit()
        upgrade_database(db_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == first
        assert len(first) == 1
        with session_factory(engine)() as session:
            assert [k.name for k in session.scalars(select(ApiKey))] == ["kept"], "a second upgrade keeps the data"


def test_migrated_schema_matches_the_orm_models(db_url):
    """No drift: what Alembic builds is what the models describe (columns, types, indexes, uniques)."""
    with migrated_engine(db_url) as engine:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []


def test_rows_round_trip_with_json_and_utc_datetimes(db_url):
    start = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with migrated_engine(db_url) as engine:
        with session_factory(engine)() as session:
            job = Job(
                owner="key:abc",
                filename="clip.mp4",
                sha256="a" * 64,
                size=3 * 1024**2,
                source="upload",
                result={"status": "ok", "score": 0.25, "faces": [{"track_id": 0}]},
                verdict="authentic",
                score=0.25,
                started_at=start,
                lease_until=start + timedelta(seconds=60),
            )
            session.add(job)
            session.add(UsageEvent(user="key:abc", kind="page_time", seconds=12.5))
            session.commit()
            job_id = job.id
        with session_factory(engine)() as session:
            job = session.get(Job, job_id)
            assert len(job_id) == 32 and job.status == "queued" and job.kind == "job" and job.attempts == 0
            assert job.force is False and job.cached is False
            assert job.result == {"status": "ok", "score": 0.25, "faces": [{"track_id": 0}]}
            assert job.started_at == start and job.started_at.tzinfo is not None
            assert job.started_at.utcoffset() == timedelta(0)
            assert abs(job.created_at - utcnow()) < timedelta(minutes=5)
            event = session.scalars(select(UsageEvent)).one()
            assert event.id >= 1 and event.at.tzinfo is not None and event.seconds == 12.5


def test_sqlite_engine_uses_wal_and_foreign_keys(sqlite_url):
    with migrated_engine(sqlite_url) as engine, engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_upgrade_creates_the_sqlite_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'fakescope.db'}"
    upgrade_database(url)
    assert (tmp_path / "new" / "dir" / "fakescope.db").is_file()
