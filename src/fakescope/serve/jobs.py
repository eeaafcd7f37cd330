"""Running analyses: the job queue's dispatcher, synchronous detects, the result cache, cancellation.

The jobs table is the queue, so nothing is lost when the server stops: a dispatcher
thread claims queued rows (an atomic conditional UPDATE; FOR UPDATE SKIP LOCKED on
PostgreSQL so several instances can share a database), holds a lease it renews while
the worker runs, and writes the outcome. A row whose lease ran out belongs to a server
that died: it is queued again, up to MAX_ATTEMPTS starts in all. Analyses run in
worker processes (serve.pool), one pool for jobs and one for POST /v1/detect, so a
long video never delays a quick synchronous answer.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from fakescope.detect.result import Result
from fakescope.errors import FakescopeError
from fakescope.serve import workers
from fakescope.serve.auth import resolve_secret
from fakescope.serve.db import Job, new_id, utcnow
from fakescope.serve.detect_batches import DetectBatcher
from fakescope.serve.metrics import Metrics
from fakescope.serve.pool import WorkerPool, threads_per_worker
from fakescope.serve.stats import record_analysis
from fakescope.serve.webhook import deliver

if TYPE_CHECKING:
    from fakescope.serve.settings import ServeSettings
    from fakescope.serve.storage import BlobStore, StoredBlob

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LEASE = timedelta(seconds=60)
RENEW_EVERY_S = 15.0
REAP_EVERY_S = 15.0
TICK_S = 0.5
DETECT_TRIES = 2


class DetectTimeoutError(FakescopeError):
    """A synchronous detect took longer than detect_timeout_s (the API answers 504)."""


@dataclass
class _Running:
    job_id: str
    attempts: int
    future: Future[dict[str, Any]]
    generation: int
    started: float = field(default_factory=time.monotonic)


def cacheable(result: dict[str, Any]) -> bool:
    """A Result another request may reuse: anything but an unexpected internal failure."""
    return result.get("status") != "error" or not str(result.get("reason") or "").startswith("internal error")


def get_owned_job(session: Session, owner: str, job_id: str) -> Job | None:
    """The job if it exists and belongs to `owner`: another owner's job is indistinguishable from none."""
    job = session.get(Job, job_id) if len(job_id) == 32 else None
    return job if job is not None and job.owner == owner else None


def list_owned_jobs(session: Session, owner: str, *, status: str | None = None, media_type: str | None = None,
                    verdict: str | None = None, limit: int = 20, offset: int = 0) -> tuple[list[Job], int]:
    """One page of the owner's jobs, newest first, and how many match in all."""
    where = [Job.owner == owner]
    where += [c for v, c in ((status, Job.status == status), (media_type, Job.media_type == media_type),
                             (verdict, Job.verdict == verdict)) if v is not None]
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    rows = session.scalars(select(Job).where(*where).order_by(Job.created_at.desc(), Job.id.desc())
                           .limit(limit).offset(offset))
    return list(rows), int(total)


class JobRunner:
    """Owns the worker pools and the dispatcher thread of one service instance."""

    def __init__(self, settings: ServeSettings, sessions: sessionmaker[Session], blobs: BlobStore,
                 metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.blobs = blobs
        self.metrics = metrics or Metrics()
        threads = threads_per_worker(settings.workers + settings.detect_workers)
        self.job_pool = WorkerPool("jobs", settings.workers, settings, threads=threads, on_warm=self._warmed)
        self.detect_pool = WorkerPool("detect", settings.detect_workers, settings, threads=threads, on_warm=self._warmed)
        self.detect_batches = DetectBatcher(self.detect_pool, settings.batch_window_ms, settings.batch_max_files,
                                            on_batch=self.metrics.detect_batch_size.observe)
        self.webhook_secret = resolve_secret(settings.webhook_secret, settings.data_dir / "webhook_secret")
        self._running: dict[str, _Running] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._webhooks: ThreadPoolExecutor | None = None
        self._next_renew = self._next_reap = 0.0

    # life cycle

    def start(self) -> None:
        """Recover what a previous run left, start the pools (models load in the background) and the dispatcher."""
        self.settings.thumb_dir.mkdir(parents=True, exist_ok=True)
        self.requeue_expired(at_start=True)
        self._webhooks = ThreadPoolExecutor(4, thread_name_prefix="fakescope-webhook")
        self.job_pool.start()
        self.detect_pool.start()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="fakescope-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the dispatcher and the workers; jobs still running go back to the queue for the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for r in running:
            self._requeue(r, penalty=False)
        self.job_pool.stop()
        self.detect_pool.stop()
        if self._webhooks is not None:
            self._webhooks.shutdown(wait=False, cancel_futures=True)

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
            self._wake.set()

    def cache_key(self, sha256: str) -> str | None:
        """`sha256:fingerprint` of the workers' Detector (models, versions, frames, weights, verdict bands);
        None until a worker said what it loaded."""
        info = self.models_info
        return f"{sha256}:{info['fingerprint']}" if info else None

    def thumbs_for(self, job_id: str) -> Path:
        return self.settings.thumb_dir / job_id

    # submitting

    def submit_job(self, *, owner: str, blob: StoredBlob, filename: str, media_type: str | None, source: str,
                   force: bool = False, webhook_url: str | None = None) -> Job:
        """A new job row: queued for the dispatcher, or done at once from the cache."""
        job = Job(id=new_id(), owner=owner, kind="job", status="queued", filename=filename, sha256=blob.sha256,
                  size=blob.size, media_type=media_type, source=source, force=force, cached=False,
                  webhook_url=webhook_url, attempts=0, created_at=utcnow())
        with self.sessions.begin() as session:
            hit = self._answer_from_cache(session, job)
            session.add(job)
        if hit is not None:
            self._after_cache_hit(hit, job)
        else:
            self.metrics.cache_misses.inc()
            self._wake.set()
        return job

    async def detect_now(self, blob: StoredBlob, *, owner: str, filename: str, media_type: str | None,
                         force: bool = False) -> Result:
        """Analyse now in the detect pool (or answer from the cache); stored as a job of kind "detect"."""
        job = Job(id=new_id(), owner=owner, kind="detect", status="running", filename=filename, sha256=blob.sha256,
                  size=blob.size, media_type=media_type, source="upload", force=force, cached=False, attempts=1,
                  created_at=utcnow())
        hit = await anyio.to_thread.run_sync(self._store_cached_detect, job)
        if hit is not None:
            return Result.model_validate(job.result)
        self.metrics.cache_misses.inc()
        job.started_at = utcnow()
        try:
            data = await self._run_detect(blob, filename, job.id)
        except DetectTimeoutError as err:
            await anyio.to_thread.run_sync(self._store_detect, job, None, str(err))
            raise
        await anyio.to_thread.run_sync(self._store_detect, job, data, None)
        return Result.model_validate(data)

    async def _run_detect(self, blob: StoredBlob, filename: str, job_id: str) -> dict[str, Any]:
        timeout = self.settings.detect_timeout_s
        deadline = time.monotonic() + timeout
        item = (str(blob.path), filename, str(self.thumbs_for(job_id)))
        for _ in range(DETECT_TRIES):
            pending = self.detect_batches.submit(item)
            try:
                return await asyncio.wait_for(pending.future, max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.detect_batches.cancel(pending)
                if pending.generation is not None:
                    await anyio.to_thread.run_sync(self.detect_pool.restart, pending.generation, "a detect timed out")
                raise DetectTimeoutError(f"analysis timed out after {timeout:g} s") from None
            except BrokenProcessPool:
                self.metrics.worker_restarts.labels("detect").inc()
                if pending.generation is not None:
                    await anyio.to_thread.run_sync(self.detect_pool.restart, pending.generation, "a worker process died")
        return Result(file=filename, status="error", reason="the analysis crashed its worker process").model_dump(mode="json")

    def _answer_from_cache(self, session: Session, job: Job) -> Job | None:
        """Fill `job` from a stored analysis of the same content with the same models; the source row, or None."""
        key = self.cache_key(job.sha256)
        if job.force or key is None:
            return None
        hit = session.scalars(select(Job).where(Job.cache_key == key, Job.status == "done")
                              .order_by(Job.finished_at.desc()).limit(1)).first()
        if hit is None or hit.result is None:
            return None
        now = utcnow()
        job.status, job.cached, job.cache_key = "done", True, key
        job.result = {**hit.result, "file": job.filename, "cached": True}
        job.verdict, job.score, job.media_type = hit.verdict, hit.score, hit.media_type or job.media_type
        job.started_at = job.finished_at = now
        job.attempts = 0
        record_analysis(session, user=job.owner, job_id=job.id, verdict=job.verdict, media_type=job.media_type,
                        status=job.result.get("status"))
        return hit

    def _after_cache_hit(self, hit: Job, job: Job) -> None:
        self.metrics.cache_hits.inc()
        self._count_finished(job)
        source = self.thumbs_for(hit.id)
        if source.is_dir():
            try:
                shutil.copytree(source, self.thumbs_for(job.id), dirs_exist_ok=True)
            except OSError:
                log.exception("copying thumbnails of %s to %s failed", hit.id, job.id)
        self._notify(job)

    def _store_cached_detect(self, job: Job) -> Job | None:
        with self.sessions.begin() as session:
            hit = self._answer_from_cache(session, job)
            if hit is not None:
                session.add(job)
        if hit is not None:
            self._after_cache_hit(hit, job)
        return hit

    def _store_detect(self, job: Job, data: dict[str, Any] | None, error: str | None) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            job.finished_at = now
            if data is None:
                job.status, job.error = "failed", error
            else:
                self._fill_result(job, data)
            session.add(job)
            record_analysis(session, user=job.owner, job_id=job.id, verdict=job.verdict, media_type=job.media_type,
                            status=data.get("status") if data else "error")
        self._count_finished(job)

    def _fill_result(self, job: Job, data: dict[str, Any]) -> None:
        job.status, job.error = "done", None
        job.result = data
        job.verdict, job.score = data.get("verdict"), data.get("score")
        job.media_type = data.get("media_type") or job.media_type
        job.cache_key = self.cache_key(job.sha256) if cacheable(data) else None

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
        with self._lock:
            if job_id in self._running:
                self._cancelled.add(job_id)
                self._wake.set()
        shutil.rmtree(self.thumbs_for(job_id), ignore_errors=True)
        self.forget_blob(sha256)
        return True

    def forget_blob(self, sha256: str) -> None:
        """Delete a stored upload unless a job still refers to it."""
        with self.sessions() as session:
            still_used = session.scalar(select(func.count()).select_from(Job).where(Job.sha256 == sha256))
        if not still_used:
            self.blobs.delete(sha256)

    # the dispatcher

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the dispatcher
                log.exception("dispatcher tick failed")
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _tick(self) -> None:
        self._handle_cancelled()
        self._collect_finished()
        self._enforce_timeouts()
        now = time.monotonic()
        if now >= self._next_renew:
            self._renew_leases()
            self._next_renew = now + RENEW_EVERY_S
        if now >= self._next_reap:
            self.requeue_expired()
            self._next_reap = now + REAP_EVERY_S
        self._claim_more()
        self.metrics.jobs_running.set(len(self._running))

    def _claim_more(self) -> None:
        while len(self._running) < self.settings.workers and self.job_pool.ready and not self._stopping.is_set():
            claimed = self._claim()
            if claimed is None:
                return
            job_id, sha256, filename, attempts = claimed
            path = self.blobs.path_for(sha256)
            if not path.is_file():
                self._fail(job_id, attempts, "the uploaded file is no longer stored")
                continue
            future, generation = self.job_pool.submit(workers.run_detect, str(path), filename, str(self.thumbs_for(job_id)))
            future.add_done_callback(lambda _f: self._wake.set())
            with self._lock:
                self._running[job_id] = _Running(job_id, attempts, future, generation)
            log.info("job %s started (attempt %d)", job_id, attempts)

    def _claim(self) -> tuple[str, str, str, int] | None:
        """Atomically take the oldest queued job: (id, sha256, filename, attempts) or None."""
        now = utcnow()
        with self.sessions.begin() as session:
            job = session.scalars(select(Job).where(Job.status == "queued", Job.kind == "job")
                                  .order_by(Job.created_at, Job.id).limit(1).with_for_update(skip_locked=True)).first()
            if job is None:
                return None
            claimed = (job.id, job.sha256, job.filename, job.attempts + 1)
            done = session.execute(
                update(Job).where(Job.id == job.id, Job.status == "queued")
                .values(status="running", attempts=Job.attempts + 1, lease_until=now + LEASE, started_at=now, error=None)
                .execution_options(synchronize_session=False))
        return claimed if done.rowcount == 1 else None

    def _collect_finished(self) -> None:
        with self._lock:
            finished = [r for r in self._running.values() if r.future.done()]
            for r in finished:
                del self._running[r.job_id]
        for r in finished:
            err = r.future.exception() if not r.future.cancelled() else BrokenProcessPool("cancelled")
            if err is None:
                self._finish(r, r.future.result())
            elif isinstance(err, BrokenProcessPool):
                log.warning("job %s: its worker process died (attempt %d)", r.job_id, r.attempts)
                if self.job_pool.restart(r.generation, "a worker process died"):
                    self.metrics.worker_restarts.labels("jobs").inc()
                if r.attempts >= MAX_ATTEMPTS:
                    self._fail(r.job_id, r.attempts, f"the analysis crashed its worker process {r.attempts} times")
                else:
                    self._requeue(r, penalty=True)
            else:
                log.error("job %s failed in its worker: %r", r.job_id, err)
                self._fail(r.job_id, r.attempts, f"internal error: {type(err).__name__}: {err}")

    def _enforce_timeouts(self) -> None:
        limit = self.settings.job_timeout_s
        now = time.monotonic()
        with self._lock:
            late = [r for r in self._running.values() if now - r.started > limit and not r.future.done()]
        for r in late:
            log.warning("job %s timed out after %g s", r.job_id, limit)
            self._stop_running(r)
            self._fail(r.job_id, r.attempts, f"timed out after {limit:g} s")

    def _handle_cancelled(self) -> None:
        with self._lock:
            cancelled = [self._running[i] for i in self._cancelled if i in self._running]
            self._cancelled.clear()
        for r in cancelled:
            log.info("job %s deleted while running: stopping it", r.job_id)
            self._stop_running(r)
            shutil.rmtree(self.thumbs_for(r.job_id), ignore_errors=True)

    def _stop_running(self, victim: _Running) -> None:
        """Kill the pool that runs `victim`; the other jobs it was running go back to the queue unpenalised."""
        with self._lock:
            self._running.pop(victim.job_id, None)
            others = [r for r in self._running.values() if r.generation == victim.generation]
            for r in others:
                del self._running[r.job_id]
        if self.job_pool.restart(victim.generation, f"stopping job {victim.job_id}"):
            self.metrics.worker_restarts.labels("jobs").inc()
        for r in others:
            self._requeue(r, penalty=False)

    def _finish(self, r: _Running, data: dict[str, Any]) -> None:
        with self.sessions.begin() as session:
            job = session.get(Job, r.job_id)
            if job is None or job.status != "running" or job.attempts != r.attempts:
                log.info("job %s finished but was deleted or taken over meanwhile", r.job_id)
                if job is None:
                    shutil.rmtree(self.thumbs_for(r.job_id), ignore_errors=True)
                return
            self._fill_result(job, data)
            job.finished_at, job.lease_until = utcnow(), None
            record_analysis(session, user=job.owner, job_id=job.id, verdict=job.verdict, media_type=job.media_type,
                            status=data.get("status"))
        log.info("job %s done: %s", r.job_id, job.verdict or data.get("status"))
        self._count_finished(job)
        self._notify(job)

    def _fail(self, job_id: str, attempts: int, error: str) -> None:
        with self.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.status != "running" or job.attempts != attempts:
                return
            job.status, job.error, job.finished_at, job.lease_until = "failed", error, utcnow(), None
            record_analysis(session, user=job.owner, job_id=job.id, verdict=None, media_type=job.media_type, status="error")
        log.warning("job %s failed: %s", job_id, error)
        self._count_finished(job)
        self._notify(job)

    def _requeue(self, r: _Running, *, penalty: bool) -> None:
        """Back to the queue; without penalty the start does not count against MAX_ATTEMPTS."""
        values: dict[str, Any] = {"status": "queued", "lease_until": None}
        if not penalty:
            values["attempts"] = Job.attempts - 1
        with self.sessions.begin() as session:
            session.execute(update(Job).where(Job.id == r.job_id, Job.status == "running", Job.attempts == r.attempts)
                            .values(**values).execution_options(synchronize_session=False))
        self._wake.set()

    def _renew_leases(self) -> None:
        with self._lock:
            ids = list(self._running)
        if not ids:
            return
        with self.sessions.begin() as session:
            session.execute(update(Job).where(Job.id.in_(ids), Job.status == "running")
                            .values(lease_until=utcnow() + LEASE).execution_options(synchronize_session=False))

    def requeue_expired(self, *, at_start: bool = False) -> int:
        """Queue again the running jobs whose server died (lease expired); fail those out of attempts.

        At start on SQLite every running job is taken as orphaned, without waiting for its lease:
        a SQLite file belongs to one server, and that server has just started. On PostgreSQL other
        instances may hold live leases, so only expired ones are touched."""
        now = utcnow()
        everything = at_start and self.sessions.kw["bind"].dialect.name == "sqlite"
        where = [Job.status == "running", Job.kind == "job"]
        if not everything:
            where.append((Job.lease_until.is_(None)) | (Job.lease_until < now))
        with self._lock:
            ours = set(self._running)
        failed: list[Job] = []
        requeued = 0
        with self.sessions.begin() as session:
            for job in session.scalars(select(Job).where(*where).with_for_update(skip_locked=True)):
                if job.id in ours:
                    continue
                if job.attempts >= MAX_ATTEMPTS:
                    job.status, job.finished_at, job.lease_until = "failed", now, None
                    job.error = f"gave up after {job.attempts} attempts (the service stopped while it ran)"
                    record_analysis(session, user=job.owner, job_id=job.id, verdict=None, media_type=job.media_type,
                                    status="error")
                    failed.append(job)
                else:
                    job.status, job.lease_until = "queued", None
                    requeued += 1
        if requeued or failed:
            log.warning("recovered %d interrupted jobs (%d queued again, %d failed)", requeued + len(failed), requeued,
                        len(failed))
            self._wake.set()
        for job in failed:
            self._count_finished(job)
            self._notify(job)
        return requeued

    def refresh_gauges(self) -> None:
        """Queue depth from the database (it includes other instances' queue on a shared database)."""
        with self.sessions() as session:
            queued = session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued")) or 0
        self.metrics.queue_depth.set(queued)
        self.metrics.jobs_running.set(len(self._running))

    # webhooks

    def _notify(self, job: Job) -> None:
        if not job.webhook_url or self._webhooks is None:
            return
        payload = {"job_id": job.id, "status": job.status, "result": job.result, "error": job.error}
        try:
            self._webhooks.submit(self._deliver, job.id, job.webhook_url, payload)
        except RuntimeError:
            log.warning("webhook of job %s not sent: the service is stopping", job.id)

    def _deliver(self, job_id: str, url: str, payload: dict[str, Any]) -> None:
        status = deliver(url, payload, self.webhook_secret)
        with self.sessions.begin() as session:
            session.execute(update(Job).where(Job.id == job_id).values(webhook_status=status[:1000])
                            .execution_options(synchronize_session=False))
