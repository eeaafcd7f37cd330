"""The jobs table as the queue: claiming, leases, putting back, recovering what a dead server left.

Nothing is lost when the server stops because the queue is the table itself: a claim is an
atomic conditional UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL, so several instances can
share a database) that also starts a lease, which the dispatcher renews while the worker
runs. A row whose lease ran out belongs to a server that died: it is queued again, up to
MAX_ATTEMPTS starts in all. The owner-scoped reads the routes list and show jobs with live here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from fakescope.serve.db import Job, utcnow
from fakescope.serve.stats import record_analysis

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Claim:
    """A queued job just taken by this instance; `attempts` counts this start."""

    job_id: str
    sha256: str
    filename: str
    attempts: int


def get_owned_job(session: Session, owner: str, job_id: str) -> Job | None:
    """The job if it exists and belongs to `owner`: another owner's job is indistinguishable from none."""
    job = session.get(Job, job_id) if len(job_id) == 32 else None
    return job if job is not None and job.owner == owner else None


def list_owned_jobs(
    session: Session,
    owner: str,
    *,
    status: str | None = None,
    media_type: str | None = None,
    verdict: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """One page of the owner's jobs, newest first, and how many match in all."""
    where = [Job.owner == owner]
    where += [
        c
        for v, c in (
            (status, Job.status == status),
            (media_type, Job.media_type == media_type),
            (verdict, Job.verdict == verdict),
        )
        if v is not None
    ]
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    rows = session.scalars(select(Job).where(*where).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset))
    return list(rows), int(total)


class JobQueue:
    """Queue transitions of job rows (queued ⇄ running, leases); finishing a row is the dispatcher's."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def claim(self) -> Claim | None:
        """Atomically take the oldest queued job, or None."""
        now = utcnow()
        with self.sessions.begin() as session:
            job = session.scalars(
                select(Job)
                .where(Job.status == "queued", Job.kind == "job")
                .order_by(Job.created_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            claimed = Claim(job.id, job.sha256, job.filename, job.attempts + 1)
            done = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "queued")
                .values(status="running", attempts=Job.attempts + 1, lease_until=now + LEASE, started_at=now, error=None)
                .execution_options(synchronize_session=False)
            )
        return claimed if done.rowcount == 1 else None

    def requeue(self, job_id: str, attempts: int, *, penalty: bool) -> None:
        """Back to the queue, if this start still holds the row; without penalty the start does not count
        against MAX_ATTEMPTS."""
        values: dict[str, Any] = {"status": "queued", "lease_until": None}
        if not penalty:
            values["attempts"] = Job.attempts - 1
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "running", Job.attempts == attempts)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def renew_leases(self, job_ids: list[str]) -> None:
        """Push the leases of the jobs this instance runs one LEASE further."""
        if not job_ids:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.status == "running")
                .values(lease_until=utcnow() + LEASE)
                .execution_options(synchronize_session=False)
            )

    def recover(self, *, at_start: bool, ours: set[str]) -> tuple[int, list[Job]]:
        """Queue again the running jobs whose server died (lease expired), fail those out of attempts;
        jobs in `ours` run here and are left alone. Returns (how many were queued again, the failed rows).

        At start on SQLite every running job is taken as orphaned, without waiting for its lease:
        a SQLite file belongs to one server, and that server has just started. On PostgreSQL other
        instances may hold live leases, so only expired ones are touched."""
        now = utcnow()
        everything = at_start and self.sessions.kw["bind"].dialect.name == "sqlite"
        where = [Job.status == "running", Job.kind == "job"]
        if not everything:
            where.append((Job.lease_until.is_(None)) | (Job.lease_until < now))
        failed: list[Job] = []
        requeued = 0
        with self.sessions.begin() as session:
            for job in session.scalars(select(Job).where(*where).with_for_update(skip_locked=True)):
                if job.id in ours:
                    continue
                if job.attempts >= MAX_ATTEMPTS:
                    job.status, job.finished_at, job.lease_until = "failed", now, None
                    job.error = f"gave up after {job.attempts} attempts (the service stopped while it ran)"
                    record_analysis(
                        session, user=job.owner, job_id=job.id, verdict=None, media_type=job.media_type, status="error"
                    )
                    failed.append(job)
                else:
                    job.status, job.lease_until = "queued", None
                    requeued += 1
        if requeued or failed:
            log.warning(
                "recovered %d interrupted jobs (%d queued again, %d failed)", requeued + len(failed), requeued, len(failed)
            )
        return requeued, failed

    def depth(self) -> int:
        """Queued jobs in the database (other instances' queue included on a shared database)."""
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued")) or 0
