"""Who is calling: API keys for programs, signed page sessions bound to a key for the web page.

Keys are stored only as the sha256 of the token (a leaked database does not leak keys)
and shown once when created. When keys are required, the web page signs in with one
(POST /v1/session) and gets a short-lived HMAC-signed cookie that names that key: the
cookie authorises exactly what the key does, and dies when the key is revoked. Only in
`--no-auth` mode may a caller go without a key: it is then known by the client id it sends.
Every request resolves to one `Caller` whose owner string filters jobs, so a caller only
ever sees its own work.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from fakescope.errors import FakescopeError
from fakescope.serve.db import ApiKey, utcnow

if TYPE_CHECKING:
    from fakescope.serve.settings import ServeSettings

log = logging.getLogger(__name__)

TOKEN_PREFIX = "fsk_"
PREFIX_CHARS = 12
SESSION_COOKIE = "fakescope_session"
SESSION_TTL_S = 12 * 3600
CLIENT_HEADER = "X-Fakescope-Client"
LAST_USED_EVERY = timedelta(minutes=1)
MISSING_KEY = "missing API key: send Authorization: Bearer <key> or X-API-Key"
INVALID_KEY = "invalid or revoked API key"
EXPIRED_SESSION = "invalid or expired page session: sign in again with an API key"
# Signed into every page-session MAC, so no other signature made with the same secret passes for a session.
SESSION_PURPOSE = "fakescope-key-session"
_CLIENT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_TOKEN = re.compile(r"fsk_[A-Za-z0-9_-]{20,100}")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_client_id(client_id: str) -> bool:
    """Client ids come from headers and cookies: only short [A-Za-z0-9-] strings become part of an owner."""
    return isinstance(client_id, str) and _CLIENT_ID.fullmatch(client_id) is not None


@dataclass(frozen=True)
class Caller:
    """Who a request is from: `owner` scopes jobs and usage ("key:<id>" or "local:<client>"); `admin` sees every user's usage."""

    owner: str
    admin: bool = False
    key_id: str | None = None
    key_name: str | None = None

    @classmethod
    def of_key(cls, key: ApiKey) -> Caller:
        return cls(owner=f"key:{key.id}", admin=bool(key.admin), key_id=key.id, key_name=key.name)


def create_key(session: Session, name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key (committed) and its token; the token is not stored and cannot be shown again."""
    name = name.strip()
    if not name or len(name) > 200:
        raise FakescopeError("a key name must be 1 to 200 characters")
    token = new_token()
    while session.scalar(select(ApiKey.id).where(ApiKey.prefix == token[:PREFIX_CHARS])) is not None:
        token = new_token()
    key = ApiKey(name=name, prefix=token[:PREFIX_CHARS], key_hash=hash_token(token), created_at=utcnow(), admin=admin)
    session.add(key)
    session.commit()
    log.info("created %sAPI key %s (%s)", "admin " if admin else "", key.id, key.name)
    return key, token


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def find_key(session: Session, key_id_or_prefix: str) -> ApiKey:
    """The one key whose id or token prefix starts with the text (6+ chars), or whose token it is; FakescopeError otherwise."""
    needle = key_id_or_prefix.strip()
    if not needle:
        raise FakescopeError("give a key id or prefix (see `fakescope keys list`)")
    clauses = [ApiKey.id == needle, ApiKey.prefix == needle, ApiKey.key_hash == hash_token(needle)]
    if len(needle) >= 6 and re.fullmatch(r"[0-9a-f]+", needle):
        clauses.append(ApiKey.id.startswith(needle, autoescape=True))
    if len(needle) >= len(TOKEN_PREFIX) + 4 and needle.startswith(TOKEN_PREFIX):
        clauses.append(ApiKey.prefix.startswith(needle[:PREFIX_CHARS], autoescape=True))
    matches = list(session.scalars(select(ApiKey).where(or_(*clauses))))
    if not matches:
        raise FakescopeError(f"no API key with id or prefix {needle!r} (see `fakescope keys list`)")
    if len(matches) > 1:
        raise FakescopeError(f"{needle!r} matches {len(matches)} keys: give more of the id")
    return matches[0]


def revoke_key(session: Session, key_id_or_prefix: str) -> ApiKey:
    """Revoke (committed); revoking a revoked key keeps its first revocation time."""
    key = find_key(session, key_id_or_prefix)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
        log.info("revoked API key %s (%s)", key.id, key.name)
    return key


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The live key behind a token, or None. Looked up by hash, so the token itself is never compared."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    digest = hash_token(token)
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at is not None:
        return None
    _mark_used(session, key)
    return key


def live_key(session: Session, key_id: str) -> ApiKey | None:
    """The key a page session names, if it still exists and is not revoked (so revoking a key ends its sessions)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return None
    _mark_used(session, key)
    return key


def _mark_used(session: Session, key: ApiKey) -> None:
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        key.last_used_at = now
        session.commit()


def sign_session(key_id: str, secret: str, ttl_s: int = SESSION_TTL_S, *, now: float | None = None) -> str:
    """`<key id>.<expiry unix s>.<hex hmac-sha256>`: the page's credential, standing for the key it signed in with."""
    if not valid_client_id(key_id):
        raise FakescopeError("a key id is 1 to 64 letters, digits or '-'")
    expiry = int((time.time() if now is None else now) + ttl_s)
    payload = f"{key_id}.{expiry}"
    return f"{payload}.{_mac(secret, payload)}"


def verify_session(token: str, secret: str, *, now: float | None = None) -> str | None:
    """The key id of a genuine, unexpired session token, else None (whether that key is still live is the caller's check)."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not valid_client_id(parts[0]) or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    key_id, expiry, mac = parts
    if not hmac.compare_digest(mac, _mac(secret, f"{key_id}.{expiry}")):
        return None
    if int(expiry) <= (time.time() if now is None else now):
        return None
    return key_id


def _mac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), f"{SESSION_PURPOSE}|{payload}".encode(), hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> str:
    """A random secret kept in a 0600 file, created on first use so restarts keep sessions and signatures valid."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others: now 0600", path)
            path.chmod(0o600)
        secret = path.read_text().strip()
        if len(secret) < 16:
            raise FakescopeError(f"{path} holds no usable secret (delete it and a new one is made)") from None
        return secret
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    log.info("created secret %s", path)
    return secret


def resolve_secret(explicit: str | None, path: Path) -> str:
    """The configured secret, else the one kept in `path`."""
    return explicit if explicit else load_or_create_secret(path)


def session_secret(settings: ServeSettings) -> str:
    return resolve_secret(settings.session_secret, settings.data_dir / "session_secret")


def set_session_cookie(response: Response, key_id: str, secret: str, ttl_s: int = SESSION_TTL_S, *, secure: bool = False) -> None:
    """The page's session cookie with the flags the contract fixes (HttpOnly, SameSite=Strict, path /; Secure over https)."""
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(key_id, secret, ttl_s),
        max_age=ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def request_token(request: Request) -> str | None:
    """The API key sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`, if any."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key", "").strip() or None


def owner_dependency(settings: ServeSettings, sessions: sessionmaker[Session]) -> Callable[[Request], Caller]:
    """Turns a request into its Caller, or a 401 (400 for a malformed client header).

    A key (header, then page session) always counts, in every mode, so an admin key is an admin
    with `--no-auth` too. Without one, only `--no-auth` lets a request through, known by its
    client header; a stale page cookie there is ignored, as no credential is needed.
    """
    secret = session_secret(settings)

    def require_caller(request: Request) -> Caller:
        token = request_token(request)
        if token is not None:
            with sessions() as session:
                key = authenticate(session, token)
            if key is None:
                raise HTTPException(401, INVALID_KEY, headers={"WWW-Authenticate": "Bearer"})
            return Caller.of_key(key)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            key_id = verify_session(cookie, secret)
            key = None
            if key_id is not None:
                with sessions() as session:
                    key = live_key(session, key_id)
            if key is not None:
                return Caller.of_key(key)
            if not settings.no_auth:
                raise HTTPException(401, EXPIRED_SESSION)
        if settings.no_auth:
            client = request.headers.get(CLIENT_HEADER)
            if client is None:
                return Caller("local:anonymous")
            if not valid_client_id(client):
                raise HTTPException(400, f"{CLIENT_HEADER} must be 1 to 64 letters, digits or '-'")
            return Caller(f"local:{client}")
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})

    return require_caller
