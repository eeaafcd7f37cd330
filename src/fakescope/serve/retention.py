"""Retention: finished jobs, their uploads and face thumbnails go after `retention_days`; orphans go too.

Without it the blob store only grows: every upload stays, those of deleted jobs included when
a crash came between storing the file and writing its row. A sweep runs in its own thread,
at start and then every SWEEP_EVERY_S (so a long walk over the store never delays the
dispatcher), and removes:

- finished jobs (done or failed) that finished more than `retention_days` ago, with their thumbnails;
- uploads no job refers to any more (those of the removed jobs, and orphans of any age) and
  thumbnail folders whose job is gone, once untouched for ORPHAN_GRACE: an upload stored a
  moment ago may belong to a job whose row is still being written, and one stored again (the
  same content uploaded anew) has its time renewed by the store.

Queued and running jobs are never removed, whatever their age. After the sweep the store counts
its bytes again from the disk, so the disk budget follows what is really there.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from fakescope.serve.db import Job, utcnow
from fakescope.serve.storage import BlobStore

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 600.0
ORPHAN_GRACE_S = 3600.0
BATCH = 500
FINAL = ("done", "failed")


@dataclass
class SweepReport:
    jobs: int = 0
    blobs: int = 0
    thumbs: int = 0

    def __bool__(self) -> bool:
        return bool(self.jobs or self.blobs or self.thumbs)


class Retention:
    """Sweeps the jobs table, the blob store and the thumbnail folder; `days` 0 keeps jobs forever."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        thumb_dir: Path,
        days: float,
        *,
        every_s: float = SWEEP_EVERY_S,
        grace_s: float = ORPHAN_GRACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.thumb_dir = Path(thumb_dir)
        self.days = days
        self.every_s = every_s
        self.grace_s = grace_s
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # life cycle

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="fakescope-retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed")
            self._stopping.wait(self.every_s)

    # the sweep

    def sweep(self) -> SweepReport:
        """One pass: expired jobs, then unreferenced uploads and thumbnails; what was removed."""
        report = SweepReport()
        if self.days > 0:
            report.jobs = self.expire_jobs()
        report.blobs = self.remove_unreferenced_blobs()
        report.thumbs = self.remove_orphan_thumbnails()
        self.blobs.measure()
        if report:
            log.info("retention: removed %d jobs, %d uploads, %d thumbnail folders", report.jobs, report.blobs, report.thumbs)
        return report

    def expire_jobs(self) -> int:
        """Delete finished jobs older than `days` (and their thumbnails), a batch at a time."""
        cutoff = utcnow() - timedelta(days=self.days)
        old = and_(
            Job.status.in_(FINAL),
            or_(Job.finished_at < cutoff, and_(Job.finished_at.is_(None), Job.created_at < cutoff)),
        )
        removed = 0
        while not self._stopping.is_set():
            with self.sessions.begin() as session:
                ids = list(session.scalars(select(Job.id).where(old).limit(BATCH)))
                if not ids:
                    break
                session.execute(delete(Job).where(Job.id.in_(ids), old).execution_options(synchronize_session=False))
            for job_id in ids:
                shutil.rmtree(self.thumb_dir / job_id, ignore_errors=True)
            removed += len(ids)
        return removed

    def remove_unreferenced_blobs(self) -> int:
        """Delete stored uploads no job refers to, once untouched for the grace period."""
        settled = self.clock() - self.grace_s
        candidates = [p.name for p in self.blobs.blob_paths() if _mtime(p) < settled]
        removed = 0
        for chunk in _batches(candidates):
            with self.sessions() as session:
                used = set(session.scalars(select(Job.sha256).where(Job.sha256.in_(chunk)).distinct()))
            for sha256 in chunk:
                # looked at again just before: the same content may have been stored anew meanwhile
                if sha256 not in used and _mtime(self.blobs.path_for(sha256)) < settled:
                    removed += self.blobs.delete(sha256)
        return removed

    def remove_orphan_thumbnails(self) -> int:
        """Delete thumbnail folders whose job no longer exists, once untouched for the grace period."""
        if not self.thumb_dir.is_dir():
            return 0
        settled = self.clock() - self.grace_s
        candidates = [p.name for p in self.thumb_dir.iterdir() if p.is_dir() and _mtime(p) < settled]
        removed = 0
        for chunk in _batches(candidates):
            with self.sessions() as session:
                alive = set(session.scalars(select(Job.id).where(Job.id.in_(chunk))))
            for name in chunk:
                if name not in alive:
                    shutil.rmtree(self.thumb_dir / name, ignore_errors=True)
                    removed += 1
        return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _batches(items: list[str], size: int = BATCH) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
