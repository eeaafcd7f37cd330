"""Stored analyses as a cache: the same content analysed by the same models is answered from the table.

A finished job row keeps `cache_key` = "<sha256 of the content>:<fingerprint of the workers'
Detector>" (models, versions, frames, weights, verdict bands). A new job or detect of the same
content is filled from the newest done row with that key, its face thumbnails copied, unless the
caller forces a fresh analysis. A Result of an internal error is never reused: a fixed bug must not
keep answering from the cache.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fakescope.detect.failures import is_internal_error
from fakescope.serve.db import Job, utcnow
from fakescope.serve.stats import record_analysis

log = logging.getLogger(__name__)


def cacheable(result: dict[str, Any]) -> bool:
    """A Result another request may reuse: anything but an unexpected internal failure."""
    return result.get("status") != "error" or not is_internal_error(result.get("reason"))


class StoredResults:
    """Looks up and records reusable analyses; `models_info` is what the workers said they loaded."""

    def __init__(self, models_info: Callable[[], dict[str, Any] | None], thumbs_for: Callable[[str], Path]) -> None:
        self.models_info = models_info
        self.thumbs_for = thumbs_for

    def key(self, sha256: str) -> str | None:
        """`sha256:fingerprint` of the workers' Detector; None until a worker said what it loaded."""
        info = self.models_info()
        return f"{sha256}:{info['fingerprint']}" if info else None

    def answer(self, session: Session, job: Job) -> Job | None:
        """Fill `job` from a stored analysis of the same content with the same models; the source row, or None."""
        key = self.key(job.sha256)
        if job.force or key is None:
            return None
        hit = session.scalars(
            select(Job).where(Job.cache_key == key, Job.status == "done").order_by(Job.finished_at.desc()).limit(1)
        ).first()
        if hit is None or hit.result is None:
            return None
        now = utcnow()
        job.status, job.cached, job.cache_key = "done", True, key
        job.result = {**hit.result, "file": job.filename, "cached": True}
        job.verdict, job.score, job.media_type = hit.verdict, hit.score, hit.media_type or job.media_type
        job.started_at = job.finished_at = now
        job.attempts = 0
        record_analysis(
            session,
            user=job.owner,
            job_id=job.id,
            verdict=job.verdict,
            media_type=job.media_type,
            status=job.result.get("status"),
        )
        return hit

    def fill(self, job: Job, data: dict[str, Any]) -> None:
        """Record a fresh Result on its row, keyed for reuse when it may be reused."""
        job.status, job.error = "done", None
        job.result = data
        job.verdict, job.score = data.get("verdict"), data.get("score")
        job.media_type = data.get("media_type") or job.media_type
        job.cache_key = self.key(job.sha256) if cacheable(data) else None

    def copy_thumbnails(self, hit: Job, job: Job) -> None:
        """Give a job answered from `hit` the face thumbnails `hit` has."""
        source = self.thumbs_for(hit.id)
        if source.is_dir():
            try:
                shutil.copytree(source, self.thumbs_for(job.id), dirs_exist_ok=True)
            except OSError:
                log.exception("copying thumbnails of %s to %s failed", hit.id, job.id)
