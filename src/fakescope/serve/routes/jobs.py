"""Jobs: submit a file (upload, server path or URL), follow it, list, delete, and fetch face thumbnails."""

from __future__ import annotations

from functools import partial

import anyio.to_thread
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from fakescope.constants import MediaKind, Verdict
from fakescope.errors import FakescopeError
from fakescope.serve.db import Job
from fakescope.serve.job_queue import get_owned_job, list_owned_jobs
from fakescope.serve.routes import AUTH_ERRORS, current_owner, error, service
from fakescope.serve.schemas import JobOut, JobPage, JobStatus
from fakescope.serve.uploads import (
    allowed_path,
    check_url,
    clean_filename,
    fetch_url,
    path_kind,
    upload_kind,
    url_filename,
)
from fakescope.serve.webhook import check_webhook_url

router = APIRouter(prefix="/v1", tags=["jobs"])

JobId = Path(description="job id (32 hex characters)", max_length=64)
NOT_FOUND = "no such job"


def job_out(job: Job) -> JobOut:
    out = JobOut.model_validate(job)
    out.faces_url_template = f"/v1/jobs/{job.id}/faces/{{track_id}}.jpg"
    return out


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses={
        **AUTH_ERRORS,
        403: error("path or URL not allowed on this server"),
        404: error("the named server file does not exist"),
        413: error("the file is larger than max_upload_bytes"),
        507: error("the server's upload store (max_storage_bytes) or disk has no room now"),
        415: error("not an image, video or audio file"),
        502: error("the URL could not be fetched"),
    },
)
async def create_job(
    request: Request,
    file: UploadFile | None = File(None, description="an image, video or audio file"),
    path: str | None = Form(None, description="a file on the server, inside one of its allowed roots"),
    url: str | None = Form(None, description="an http(s) URL on one of the server's allowed hosts"),
    force_field: bool | None = Form(None, alias="force", description="analyse again even if a stored result exists"),
    webhook_url: str | None = Form(None, description="POSTed a signed JSON message when the job is done or failed"),
    force: bool = Query(False, description="same as the form field"),
    owner: str = Depends(current_owner),
) -> JobOut:
    """Queue an analysis of exactly one of `file`, `path` or `url`; 202 with the job at once.

    If the same content was already analysed with the same models (and `force` is not set), the job is
    answered from that analysis: status "done" and `cached` true straight away. Poll GET /v1/jobs/{id}
    or pass `webhook_url`.
    """
    svc = service(request)
    settings = svc.settings
    given = [name for name, value in (("file", file), ("path", path), ("url", url)) if value not in (None, "")]
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of file, path or url" + (f" (got {', '.join(given)})" if given else ""))
    if webhook_url:
        try:
            webhook_url = await anyio.to_thread.run_sync(
                check_webhook_url, webhook_url, settings.webhook_hosts, svc.runner.egress
            )
        except FakescopeError as err:
            raise HTTPException(422, str(err)) from None
    if file is not None:
        media_type = await upload_kind(file)
        blob = await svc.blobs.save_upload(file, settings.max_upload_bytes)
        source, filename = "upload", clean_filename(file.filename)
    elif path:
        real = allowed_path(path, settings.allowed_roots)
        media_type = await anyio.to_thread.run_sync(path_kind, real)
        blob = await anyio.to_thread.run_sync(svc.blobs.save_file, real, settings.max_upload_bytes)
        source, filename = "path", clean_filename(real.name)
    else:
        checked = check_url(url or "", settings.url_hosts)
        await anyio.to_thread.run_sync(svc.runner.egress.check_url, checked, "url")
        blob = await fetch_url(checked, svc.blobs, settings.max_upload_bytes, svc.runner.egress)
        try:
            media_type = await anyio.to_thread.run_sync(path_kind, blob.path)
        except HTTPException:
            await anyio.to_thread.run_sync(svc.runner.forget_blob, blob.sha256)
            raise
        source, filename = "url", url_filename(checked)
    job = await anyio.to_thread.run_sync(
        partial(
            svc.runner.submit_job,
            owner=owner,
            blob=blob,
            filename=filename,
            media_type=media_type,
            source=source,
            force=bool(force or force_field),
            webhook_url=webhook_url or None,
        )
    )
    return job_out(job)


@router.get("/jobs", response_model=JobPage, responses=AUTH_ERRORS)
def list_jobs(
    request: Request,
    status: JobStatus | None = Query(None, description="only jobs in this state"),
    media_type: MediaKind | None = Query(None, description="only this kind of media"),
    verdict: Verdict | None = Query(None, description="only this verdict"),
    limit: int = Query(20, ge=1, le=100, description="page size"),
    offset: int = Query(0, ge=0, le=1_000_000_000, description="jobs to skip"),
    owner: str = Depends(current_owner),
) -> JobPage:
    """The caller's jobs, newest first (other callers' jobs are never listed)."""
    with service(request).sessions() as session:
        rows, total = list_owned_jobs(
            session, owner, status=status, media_type=media_type, verdict=verdict, limit=limit, offset=offset
        )
    return JobPage(items=[job_out(j) for j in rows], total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobOut, responses={**AUTH_ERRORS, 404: error(NOT_FOUND)})
def get_job(request: Request, job_id: str = JobId, owner: str = Depends(current_owner)) -> JobOut:
    """One job, with its Result once done."""
    with service(request).sessions() as session:
        job = get_owned_job(session, owner, job_id)
    if job is None:
        raise HTTPException(404, NOT_FOUND)
    return job_out(job)


@router.delete("/jobs/{job_id}", status_code=204, response_class=Response, responses={**AUTH_ERRORS, 404: error(NOT_FOUND)})
def delete_job(request: Request, job_id: str = JobId, owner: str = Depends(current_owner)) -> Response:
    """Delete a job and its thumbnails; a running job is stopped. The upload goes once no job refers to it."""
    if not service(request).runner.delete_job(owner, job_id):
        raise HTTPException(404, NOT_FOUND)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/faces/{track_id}.jpg",
    response_class=FileResponse,
    responses={
        **AUTH_ERRORS,
        200: {"content": {"image/jpeg": {}}, "description": "JPEG, at most 160 px a side"},
        404: error("no such job or no thumbnail for this face"),
    },
)
def face_thumbnail(
    request: Request, job_id: str = JobId, track_id: int = Path(ge=0, le=1_000_000), owner: str = Depends(current_owner)
) -> FileResponse:
    """A face track's crop at its most suspicious frame (result.faces[].track_id)."""
    svc = service(request)
    with svc.sessions() as session:
        job = get_owned_job(session, owner, job_id)
    if job is None:
        raise HTTPException(404, NOT_FOUND)
    thumb = svc.runner.thumbs_for(job.id) / f"{track_id}.jpg"
    if not thumb.is_file():
        raise HTTPException(404, f"no thumbnail for face track {track_id}")
    return FileResponse(thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
