"""Running analyses: `JobRunner` wires the service's worker pools, queue, dispatcher, cache and webhooks.

Analyses run in worker processes (serve.pool), one pool for queued jobs and one for POST
/v1/detect, so a long video never delays a quick synchronous answer. The jobs table is the
queue (job_queue), a dispatcher thread feeds it to the job pool (dispatcher), synchronous detects
go to the detect pool (sync_detect), stored analyses answer repeated content (result_cache), and
a finished job's webhook is sent in the background (webhook). The runner owns their life cycle
and keeps the books every finished job shares: metrics and its webhook.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fakescope.detect.result import Result
from fakescope.serve.auth import resolve_secret
from fakescope.serve.db import Job
from fakescope.serve.detect_batches import DetectBatcher
from fakescope.serve.dispatcher import Dispatcher
from fakescope.serve.egress import EgressPolicy
from fakescope.serve.job_queue import JobQueue, get_owned_job
from fakescope.serve.metrics import Metrics
from fakescope.serve.pool import WorkerPool, threads_per_worker
from fakescope.serve.result_cache import StoredResults
from fakescope.serve.retention import Retention
from fakescope.serve.sync_detect import SyncDetects
from fakescope.serve.webhook import WebhookSender

if TYPE_CHECKING:
    from fakescope.serve.settings import ServeSettings
    from fakescope.serve.storage import BlobStore, StoredBlob


class JobRunner:
    """Owns the worker pools and the dispatcher thread of one service instance."""

    def __init__(
        self, settings: ServeSettings, sessions: sessionmaker[Session], blobs: BlobStore, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.metrics = metrics or Metrics()
        threads = threads_per_worker(settings.workers + settings.detect_workers)
        self.job_pool = WorkerPool("jobs", settings.workers, settings, threads=threads, on_warm=self._warmed)
        self.detect_pool = WorkerPool("detect", settings.detect_workers, settings, threads=threads, on_warm=self._warmed)
        self.detect_batches = DetectBatcher(
            self.detect_pool, settings.batch_window_ms, settings.batch_max_files, on_batch=self.metrics.detect_batch_size.observe
        )
        self.egress = EgressPolicy.from_entries(settings.egress_allow)
        self.webhooks = WebhookSender(
            sessions, resolve_secret(settings.webhook_secret, settings.data_dir / "webhook_secret"), self.egress
        )
        self.results = StoredResults(lambda: self.models_info, self.thumbs_for)
        self.queue = JobQueue(sessions)
        self.retention = Retention(sessions, blobs, settings.thumb_dir, settings.retention_days)
        self.dispatcher = Dispatcher(
            settings,
            sessions,
            self.queue,
            self.job_pool,
            blobs,
            self.results,
            self.metrics,
            thumbs_for=self.thumbs_for,
            on_finished=self._finished,
        )
        self.detects = SyncDetects(
            settings,
            sessions,
            self.detect_pool,
            self.detect_batches,
            self.results,
            self.metrics,
            thumbs_for=self.thumbs_for,
            on_cache_hit=self._answered_from_cache,
            on_finished=self._finished,
        )

    # life cycle

    def start(self) -> None:
        """Recover what a previous run left, start the pools (models load in the background) and the dispatcher."""
        self.settings.thumb_dir.mkdir(parents=True, exist_ok=True)
        self.requeue_expired(at_start=True)
        self.retention.start()
        self.webhooks.start()
        self.job_pool.start()
        self.detect_pool.start()
        self.dispatcher.start()

    def stop(self) -> None:
        """Stop the dispatcher and the workers; jobs still running go back to the queue for the next start."""
        self.dispatcher.stop()
        self.job_pool.stop()
        self.detect_pool.stop()
        self.webhooks.stop()
        self.retention.stop()

    @property
    def ready(self) -> bool:
        return self.job_pool.ready and self.detect_pool.ready

    def not_ready_reason(self) -> str | None:
        """Why the service cannot analyse yet, or None."""
        error = self.job_pool.load_error or self.detect_pool.load_error
        if error:
            return f"models failed to load: {error}"
        if not self.ready:
            return "worker processes are loading the models"
        return None

    @property
    def models_info(self) -> dict[str, Any] | None:
        return self.job_pool.info or self.detect_pool.info

    def _warmed(self, pool: str, info: dict[str, Any]) -> None:
        self.metrics.model_load.labels(pool).set(float(info.get("load_seconds") or 0.0))
        if pool == "jobs":
            self.dispatcher.wake()

    def thumbs_for(self, job_id: str) -> Path:
        return self.settings.thumb_dir / job_id

    # submitting

    def submit_job(
        self,
        *,
        owner: str,
        blob: StoredBlob,
        filename: str,
        media_type: str | None,
        source: str,
        force: bool = False,
        webhook_url: str | None = None,
    ) -> Job:
        """A new job row: queued for the dispatcher, or done at once from the cache."""
        job = Job.new(
            sha256=blob.sha256,
            size=blob.size,
            owner=owner,
            kind="job",
            status="queued",
            filename=filename,
            media_type=media_type,
            source=source,
            force=force,
            webhook_url=webhook_url,
            attempts=0,
        )
        with self.sessions.begin() as session:
            hit = self.results.answer(session, job)
            session.add(job)
        if hit is not None:
            self._answered_from_cache(hit, job)
        else:
            self.metrics.cache_misses.inc()
            self.dispatcher.wake()
        return job

    async def detect_now(
        self, blob: StoredBlob, *, owner: str, filename: str, media_type: str | None, force: bool = False
    ) -> Result:
        """Analyse now in the detect pool (or answer from the cache); stored as a job of kind "detect"."""
        return await self.detects.detect_now(blob, owner=owner, filename=filename, media_type=media_type, force=force)

    # finishing: the books every finished job keeps, however it finished

    def _answered_from_cache(self, hit: Job, job: Job) -> None:
        self.metrics.cache_hits.inc()
        self._count_finished(job)
        self.results.copy_thumbnails(hit, job)
        self.webhooks.notify(job)

    def _finished(self, job: Job) -> None:
        self._count_finished(job)
        self.webhooks.notify(job)

    def _count_finished(self, job: Job) -> None:
        self.metrics.jobs_finished.labels(job.kind, job.status).inc()
        if job.status == "done" and job.result is not None:
            self.metrics.verdicts.labels(job.verdict or job.result.get("status") or "error").inc()

    # deleting

    def delete_job(self, owner: str, job_id: str) -> bool:
        """Remove the owner's job (a running one is stopped), its thumbnails, and its upload once unreferenced."""
        with self.sessions.begin() as session:
            job = get_owned_job(session, owner, job_id)
            if job is None:
                return False
            sha256 = job.sha256
            session.delete(job)
        self.dispatcher.cancel(job_id)
        shutil.rmtree(self.thumbs_for(job_id), ignore_errors=True)
        self.forget_blob(sha256)
        return True

    def forget_blob(self, sha256: str) -> None:
        """Delete a stored upload unless a job still refers to it."""
        with self.sessions() as session:
            still_used = session.scalar(select(func.count()).select_from(Job).where(Job.sha256 == sha256))
        if not still_used:
            self.blobs.delete(sha256)

    # the queue

    def requeue_expired(self, *, at_start: bool = False) -> int:
        """Queue again the running jobs whose server died (lease expired); fail those out of attempts."""
        return self.dispatcher.requeue_expired(at_start=at_start)

    def refresh_gauges(self) -> None:
        """Queue depth from the database (it includes other instances' queue on a shared database)."""
        self.metrics.queue_depth.set(self.queue.depth())
        self.metrics.jobs_running.set(self.dispatcher.running)
