"""Usage figures, and the beacon the web page reports its views and time on page with."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from fakescope.serve.auth import valid_client_id
from fakescope.serve.routes import AUTH_ERRORS, current_owner, service
from fakescope.serve.schemas import BeaconIn, Stats
from fakescope.serve.stats import MAX_DAYS, record_page_event, usage_stats

router = APIRouter(prefix="/v1", tags=["usage"])
ANONYMOUS = "local:anonymous"


@router.get("/stats", response_model=Stats, responses=AUTH_ERRORS)
def stats(
    request: Request,
    days: int = Query(30, ge=1, le=MAX_DAYS, description="window length in days, today included"),
    owner: str = Depends(current_owner),
) -> Stats:
    """How much the service is used: analyses per day, users, how many come back, time on page, verdict mix."""
    with service(request).sessions() as session:
        return Stats.model_validate(usage_stats(session, days=days))


@router.post("/beacon", status_code=204, response_class=Response, responses=AUTH_ERRORS)
def beacon(
    request: Request,
    body: BeaconIn,
    client: str | None = Query(None, description="the page's client id, for beacons that cannot send headers", max_length=64),
    owner: str = Depends(current_owner),
) -> Response:
    """Record a page view or time on page (navigator.sendBeacon cannot set headers, hence `client`)."""
    if owner == ANONYMOUS and client and valid_client_id(client):
        owner = f"local:{client}"
    with service(request).sessions.begin() as session:
        record_page_event(session, user=owner, kind=body.event, seconds=body.seconds)
    return Response(status_code=204)
