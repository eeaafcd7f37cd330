"""api keys, jobs, usage events

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        _when("created_at", nullable=False),
        _when("last_used_at"),
        _when("revoked_at"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, index=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(10)),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("force", sa.Boolean, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("cache_key", sa.String(200), index=True),
        sa.Column("webhook_url", sa.Text),
        sa.Column("webhook_status", sa.Text),
        sa.Column("result", sa.JSON),
        sa.Column("verdict", sa.String(20)),
        sa.Column("score", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        _when("lease_until"),
        _when("created_at", nullable=False),
        _when("started_at"),
        _when("finished_at"),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _when("at", nullable=False),
        sa.Column("user", sa.String(100), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(32)),
        sa.Column("verdict", sa.String(20)),
        sa.Column("media_type", sa.String(10)),
        sa.Column("seconds", sa.Float),
    )
    op.create_index("ix_usage_events_at", "usage_events", ["at"])


def downgrade() -> None:
    op.drop_table("usage_events")
    op.drop_table("jobs")
    op.drop_table("api_keys")
