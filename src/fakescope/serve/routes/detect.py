"""POST /v1/detect: analyse one upload and answer with its Result in the same request."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from fakescope.detect.result import Result
from fakescope.serve.routes import AUTH_ERRORS, current_owner, error, service
from fakescope.serve.uploads import clean_filename, upload_kind

router = APIRouter(prefix="/v1", tags=["analysis"])


@router.post(
    "/detect",
    response_model=Result,
    responses={
        **AUTH_ERRORS,
        413: error("the file is larger than max_detect_bytes"),
        507: error("the server's upload store (max_storage_bytes) or disk has no room now"),
        415: error("not an image, video or audio file (judged from its content)"),
        504: error("the analysis took too long"),
    },
)
async def detect(
    request: Request,
    file: UploadFile = File(description="an image, video or audio file"),
    force: bool = Query(False, description="analyse again even if the same content was analysed with the same models"),
    owner: str = Depends(current_owner),
) -> Result:
    """Analyse a file now and return its Result (the same object as `fakescope detect --json`).

    Media that cannot be scored (corrupt, no face, too short) is still a 200: the Result's status is
    "error" or "not_applicable" and its reason says why. The analysis is kept in the history as a job
    of kind "detect". Long videos are better sent to POST /v1/jobs.
    """
    svc = service(request)
    media_type = await upload_kind(file)
    blob = await svc.blobs.save_upload(file, svc.settings.max_detect_bytes)
    return await svc.runner.detect_now(
        blob, owner=owner, filename=clean_filename(file.filename), media_type=media_type, force=force
    )
