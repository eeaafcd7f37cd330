"""POST /v1/detect: analyse now in the detect pool (or answer from the cache), within detect_timeout_s.

The detect pool is separate from the job pool, so a long video queued as a job never delays a
quick synchronous answer. Each detect is stored as a job row of kind "detect": it shares the
result cache and the usage figures with queued jobs. A worker that dies is replaced and the
file tried once more; a detect past its deadline restarts the pool (nothing else can stop it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from fakescope.detect.result import Result
from fakescope.errors import FakescopeError
from fakescope.serve.db import Job, utcnow
from fakescope.serve.detect_batches import DetectBatcher
from fakescope.serve.metrics import Metrics
from fakescope.serve.pool import WorkerPool
from fakescope.serve.result_cache import StoredResults
from fakescope.serve.stats import record_analysis

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from fakescope.serve.settings import ServeSettings
    from fakescope.serve.storage import StoredBlob

DETECT_TRIES = 2


class DetectTimeoutError(FakescopeError):
    """A synchronous detect took longer than detect_timeout_s (the API answers 504)."""


class SyncDetects:
    """Synchronous detects on `pool`, batched by `batches`; `on_cache_hit` / `on_finished` keep the books.

    Reads detect_timeout_s from `settings` at each call."""

    def __init__(
        self,
        settings: ServeSettings,
        sessions: sessionmaker[Session],
        pool: WorkerPool,
        batches: DetectBatcher,
        results: StoredResults,
        metrics: Metrics,
        *,
        thumbs_for: Callable[[str], Path],
        on_cache_hit: Callable[[Job, Job], None],
        on_finished: Callable[[Job], None],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.pool = pool
        self.batches = batches
        self.results = results
        self.metrics = metrics
        self.thumbs_for = thumbs_for
        self.on_cache_hit = on_cache_hit
        self.on_finished = on_finished

    async def detect_now(
        self, blob: StoredBlob, *, owner: str, filename: str, media_type: str | None, force: bool = False
    ) -> Result:
        """Analyse now (or answer from the cache); stored as a job of kind "detect"."""
        job = Job.new(
            sha256=blob.sha256,
            size=blob.size,
            owner=owner,
            kind="detect",
            status="running",
            filename=filename,
            media_type=media_type,
            source="upload",
            force=force,
            attempts=1,
        )
        hit = await anyio.to_thread.run_sync(self._store_cached, job)
        if hit is not None:
            return Result.model_validate(job.result)
        self.metrics.cache_misses.inc()
        job.started_at = utcnow()
        try:
            data = await self._run(blob, filename, job.id)
        except DetectTimeoutError as err:
            await anyio.to_thread.run_sync(self._store, job, None, str(err))
            raise
        await anyio.to_thread.run_sync(self._store, job, data, None)
        return Result.model_validate(data)

    async def _run(self, blob: StoredBlob, filename: str, job_id: str) -> dict[str, Any]:
        timeout = self.settings.detect_timeout_s
        deadline = time.monotonic() + timeout
        item = (str(blob.path), filename, str(self.thumbs_for(job_id)))
        for _ in range(DETECT_TRIES):
            pending = self.batches.submit(item)
            try:
                return await asyncio.wait_for(pending.future, max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                self.batches.cancel(pending)
                if pending.generation is not None:
                    await anyio.to_thread.run_sync(self.pool.restart, pending.generation, "a detect timed out")
                raise DetectTimeoutError(f"analysis timed out after {timeout:g} s") from None
            except BrokenProcessPool:
                self.metrics.worker_restarts.labels("detect").inc()
                if pending.generation is not None:
                    await anyio.to_thread.run_sync(self.pool.restart, pending.generation, "a worker process died")
        return Result(file=filename, status="error", reason="the analysis crashed its worker process").model_dump(mode="json")

    def _store_cached(self, job: Job) -> Job | None:
        with self.sessions.begin() as session:
            hit = self.results.answer(session, job)
            if hit is not None:
                session.add(job)
        if hit is not None:
            self.on_cache_hit(hit, job)
        return hit

    def _store(self, job: Job, data: dict[str, Any] | None, error: str | None) -> None:
        now = utcnow()
        with self.sessions.begin() as session:
            job.finished_at = now
            if data is None:
                job.status, job.error = "failed", error
            else:
                self.results.fill(job, data)
            session.add(job)
            record_analysis(
                session,
                user=job.owner,
                job_id=job.id,
                verdict=job.verdict,
                media_type=job.media_type,
                status=data.get("status") if data else "error",
            )
        self.on_finished(job)
