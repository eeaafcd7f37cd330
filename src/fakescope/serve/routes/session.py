"""The web page's sign-in: exchange an API key for a page session, see who is signed in, sign out.

The page never keeps a key: it sends it once to POST /v1/session and gets an HttpOnly cookie
that stands for that key (same jobs, same limits, revoked with it). Without keys (--no-auth)
the page needs no sign-in and GET /v1/session says so.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from fakescope.serve.auth import MISSING_KEY, Caller, clear_session_cookie, request_token, set_session_cookie
from fakescope.serve.routes import AUTH_ERRORS, current_caller, service
from fakescope.serve.schemas import SessionOut

router = APIRouter(prefix="/v1", tags=["session"])


def session_out(caller: Caller) -> SessionOut:
    return SessionOut(owner=caller.owner, auth="key" if caller.key_id else "none", key_name=caller.key_name, admin=caller.admin)


@router.get("/session", response_model=SessionOut, responses=AUTH_ERRORS)
def whoami(caller: Caller = Depends(current_caller)) -> SessionOut:
    """Who the caller is; 401 when keys are required and neither a key nor a live page session came with the request."""
    return session_out(caller)


@router.post("/session", response_model=SessionOut, responses=AUTH_ERRORS)
def sign_in(request: Request, response: Response, caller: Caller = Depends(current_caller)) -> SessionOut:
    """Sign the web page in with the API key in the Authorization (Bearer) or X-API-Key header.

    Sets an HttpOnly, SameSite=Strict session cookie naming that key: it authorises what the key
    does, shares its rate limit, and stops working when the key is revoked or after 12 hours.
    """
    if caller.key_id is None or request_token(request) is None:
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})
    svc = service(request)
    set_session_cookie(response, caller.key_id, svc.session_secret, secure=request.url.scheme == "https")
    return session_out(caller)


@router.delete("/session", status_code=204, response_class=Response)
def sign_out() -> Response:
    """Forget the page session (the key itself stays valid: revoke it with `fakescope keys revoke`)."""
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response
