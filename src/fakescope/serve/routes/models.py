"""GET /v1/models: which detectors the workers analyse with."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from fakescope.serve.routes import AUTH_ERRORS, current_owner, error, service
from fakescope.serve.schemas import ModelsOut

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut, responses={**AUTH_ERRORS, 503: error("the workers are still loading")})
def models(request: Request, owner: str = Depends(current_owner)) -> ModelsOut:
    """The loaded detectors (name, weights version, input kind, verdict thresholds), as the workers report them."""
    runner = service(request).runner
    info = runner.models_info
    if info is None:
        raise HTTPException(503, runner.not_ready_reason() or "worker processes are loading the models")
    return ModelsOut.model_validate(info)
