"""Getting a file into the service safely: size limits, content sniffing, names, server paths and URLs.

Everything a client sends is hostile until checked: the body is cut off at the limit
while it streams (not after it was spooled to disk), the media kind comes from the
bytes (never the name or the Content-Type), a file name is display text only, a
server path must resolve (symlinks followed) inside an allowed root, and a URL must
name an allowed host, pass the egress policy (no internal addresses, checked again at
connect time: serve.egress) and is fetched without following redirects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from fastapi import HTTPException, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fakescope.media.sniff import HEAD_BYTES, sniff_kind
from fakescope.serve.egress import EgressPolicy, RefusedAddressError, async_pinned_client
from fakescope.serve.storage import BlobStore, StoredBlob, format_bytes

MAX_FILENAME = 200
# Multipart boundaries and form fields around the file: the body may exceed the file limit by this much.
MULTIPART_SLACK = 64 * 1024
OTHER_BODY_LIMIT = 1024 * 1024
FETCH_TIMEOUT_S = 30.0
_SEPARATORS = re.compile(r"[\\/]")


def clean_filename(name: str | None, fallback: str = "upload") -> str:
    """Display name from a client-given name: last path component, printable characters, at most 200."""
    base = _SEPARATORS.split(name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()[:MAX_FILENAME]
    return base if base not in ("", ".", "..") else fallback


def media_kind(head: bytes) -> str:
    """image, video or audio from the first bytes; 422 for an empty file, 415 for anything else."""
    if not head:
        raise HTTPException(422, "empty file")
    sniffed = sniff_kind(head)
    if sniffed is None:
        raise HTTPException(415, "unsupported media type: not an image, video or audio file")
    return sniffed[0]


async def upload_kind(upload: UploadFile) -> str:
    """Sniff an upload's kind from its first bytes and rewind it."""
    head = await upload.read(HEAD_BYTES)
    await upload.seek(0)
    return media_kind(head)


def allowed_path(raw: str, roots: list[Path]) -> Path:
    """The real file a path names, if it lies inside an allowed root (after following symlinks); else 403/404."""
    if not roots:
        raise HTTPException(403, "path jobs are disabled on this server (no allowed roots)")
    if "\x00" in raw or not raw.strip():
        raise HTTPException(422, "path: not a valid path")
    candidate = Path(raw).expanduser()
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        if _inside(candidate.resolve(strict=False), roots):
            raise HTTPException(404, f"no such file: {clean_filename(candidate.name)}") from None
        raise HTTPException(403, "path is outside the allowed roots") from None
    if not _inside(real, roots):
        raise HTTPException(403, "path is outside the allowed roots")
    if not real.is_file():
        raise HTTPException(422, "path: not a regular file")
    return real


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def path_kind(path: Path) -> str:
    with path.open("rb") as fh:
        return media_kind(fh.read(HEAD_BYTES))


def check_url(url: str, hosts: list[str]) -> str:
    """The URL if its scheme is http(s) and its host is allowed; else 403/422."""
    if not hosts:
        raise HTTPException(403, "URL jobs are disabled on this server (no allowed hosts)")
    url = url.strip()
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise HTTPException(422, "url: must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - parsing the port raises ValueError when it is not a number
    except ValueError:
        raise HTTPException(422, "url: not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise HTTPException(422, "url: must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise HTTPException(422, "url: must not contain credentials (user:password@)")
    if host not in {h.lower() for h in hosts}:
        raise HTTPException(403, f"url: host {host} is not allowed")
    return url


def url_filename(url: str) -> str:
    parts = urlsplit(url)
    return clean_filename(unquote(parts.path.rsplit("/", 1)[-1]), fallback=parts.hostname or "download")


async def fetch_url(url: str, blobs: BlobStore, max_bytes: int, policy: EgressPolicy) -> StoredBlob:
    """Stream a URL's body into the blob store, stopping at `max_bytes` (redirects are not followed).

    The connection passes `policy` when it is made (a DNS answer changed since the check is caught there);
    a failure says what happened in fixed words, never the connection error's text."""
    try:
        async with (
            async_pinned_client(policy, FETCH_TIMEOUT_S) as client,
            client.stream("GET", url) as response,
        ):
            if not response.is_success:
                raise HTTPException(502, f"could not fetch url: HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise HTTPException(413, f"file too large: the limit is {format_bytes(max_bytes)}")
            return await blobs.save_stream(response.aiter_bytes(), max_bytes, int(declared) if declared.isdigit() else None)
    except RefusedAddressError as err:
        raise HTTPException(422, f"url: {err}") from None
    except httpx.HTTPError:
        raise HTTPException(502, "could not fetch url: connection failed") from None


class BodyLimitMiddleware:
    """413 as soon as a request body passes its limit: from Content-Length before reading, else while counting.

    The limit of POST /v1/detect is max_detect_bytes, of POST /v1/jobs max_upload_bytes (plus the
    multipart overhead); every other body is small JSON. The storage layer checks the file size
    exactly; this stops a huge body before it is spooled anywhere.
    """

    def __init__(self, app: ASGIApp, *, detect_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.limits = {"/v1/detect": detect_bytes, "/v1/jobs": upload_bytes}

    def limit_for(self, scope: Scope) -> tuple[int, int]:
        """(body limit, file limit shown in the message)."""
        file_limit = self.limits.get(scope.get("path", "").rstrip("/"))
        if scope.get("method") == "POST" and file_limit is not None:
            return file_limit + MULTIPART_SLACK, file_limit
        return OTHER_BODY_LIMIT, OTHER_BODY_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, shown = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, shown)
            return
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _too_large(send, shown)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"file too large: the limit is {format_bytes(limit)}"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
