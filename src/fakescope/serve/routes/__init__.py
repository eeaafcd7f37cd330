"""The API's routers and what they share: the caller's identity (with its rate limit) and error docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from fakescope.serve.auth import Caller
from fakescope.serve.schemas import ErrorOut

if TYPE_CHECKING:
    from fakescope.serve.service import Service

# Declared for the OpenAPI docs ("Authorize" in /docs); the check itself is serve.auth's.
_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer fsk_...`")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key, as a header")


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error("a malformed client header"),
    401: error("missing, invalid or revoked API key, or expired page session"),
    422: error("invalid parameters"),
    429: error("rate limit: retry after the Retry-After header's seconds"),
}


def service(request: Request) -> Service:
    return request.app.state.service


def rate_limited(what: str, per_minute: int, retry_after: float) -> HTTPException:
    seconds = int(retry_after)
    return HTTPException(
        429, f"rate limit exceeded: {per_minute} {what} a minute, retry in {seconds} s", headers={"Retry-After": str(seconds)}
    )


def current_caller(request: Request, _bearer_key: Any = Depends(_bearer), _header_key: Any = Depends(_api_key)) -> Caller:
    """The caller, after two rate limits: its client address's (checked first, so failed sign-ins count too) and its own."""
    limits = service(request).limiter
    retry_after = limits.addresses.check(limits.client_address(request))
    if retry_after is not None:
        raise rate_limited("requests from one address", limits.per_address, retry_after)
    caller = service(request).require_owner(request)
    retry_after = limits.callers.check(caller.owner)
    if retry_after is not None:
        raise rate_limited("requests", limits.per_caller, retry_after)
    return caller


def current_owner(caller: Caller = Depends(current_caller)) -> str:
    """The caller's owner string ("key:<id>" or "local:<client>"), which scopes jobs."""
    return caller.owner
