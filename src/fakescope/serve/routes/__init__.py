"""The API's routers and what they share: the caller's identity (with its rate limit) and error docs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPBearer

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


def current_owner(request: Request, _bearer_key: Any = Depends(_bearer), _header_key: Any = Depends(_api_key)) -> str:
    """The caller's owner string ("key:<id>", "session:<client>", "local:<client>"), after its rate limit."""
    svc = service(request)
    owner = svc.require_owner(request)
    retry_after = svc.limiter.check(owner)
    if retry_after is not None:
        seconds = int(retry_after)
        raise HTTPException(
            429,
            f"rate limit exceeded: {svc.settings.rate_limit_per_minute} requests a minute, retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    return owner
