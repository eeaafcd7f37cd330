"""Usage figures, and the beacon the web page reports its views and time on page with."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from fakescope.serve.auth import Caller, valid_client_id
from fakescope.serve.routes import AUTH_ERRORS, current_caller, error, rate_limited, service
from fakescope.serve.schemas import BeaconIn, Stats
from fakescope.serve.stats import MAX_DAYS, MAX_PAGE_SECONDS, record_page_event, usage_stats

router = APIRouter(prefix="/v1", tags=["usage"])
ANONYMOUS = "local:anonymous"


@router.get("/stats", response_model=Stats, responses=AUTH_ERRORS)
def stats(
    request: Request,
    days: int = Query(30, ge=1, le=MAX_DAYS, description="window length in days, today included"),
    caller: Caller = Depends(current_caller),
) -> Stats:
    """How much the caller has used the service: analyses per day, how often it came back, time on page, verdict mix.

    An admin key (`fakescope keys create NAME --admin`) sees every user's figures together (scope "all").
    """
    with service(request).sessions() as session:
        figures = usage_stats(session, days=days, user=None if caller.admin else caller.owner)
    return Stats.model_validate(figures | {"scope": "all" if caller.admin else "caller"})


@router.post(
    "/beacon",
    status_code=204,
    response_class=Response,
    responses={**AUTH_ERRORS, 422: error(f"unknown event, unknown field, or seconds outside 0..{MAX_PAGE_SECONDS:g}")},
)
def beacon(
    request: Request,
    body: BeaconIn,
    client: str | None = Query(None, description="the page's client id, for beacons that cannot send headers", max_length=64),
    caller: Caller = Depends(current_caller),
) -> Response:
    """Record a page view or time on page (navigator.sendBeacon cannot set headers, hence `client`).

    Beacons are client input that feeds everyone's figures: each caller and each address may send
    only `beacon_per_minute` of them, and time on page is bounded.
    """
    svc = service(request)
    owner = caller.owner
    if owner == ANONYMOUS and client and valid_client_id(client):
        owner = f"local:{client}"
    limits = svc.limiter
    for bucket in (f"beacon:{owner}", f"beacon:{limits.client_address(request)}"):
        retry_after = limits.beacons.check(bucket)
        if retry_after is not None:
            raise rate_limited("beacons", svc.settings.beacon_per_minute, retry_after)
    with svc.sessions.begin() as session:
        record_page_event(session, user=owner, kind=body.event, seconds=body.seconds)
    return Response(status_code=204)
