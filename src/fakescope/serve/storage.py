"""Content-addressed blob store for uploaded media.

Uploads stream to a temp file while being hashed and counted, so a too-large upload is
stopped at the limit without ever holding it in memory, and the final name is the
sha256 of the content: identical uploads share one read-only file, and a path is built
only from a validated hex digest, never from anything a client named.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio.to_thread

from fakescope.errors import FakescopeError, MissingFileError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Same as fakescope.media.sniff.HEAD_BYTES (a test keeps them equal): enough bytes for sniff_kind.
SNIFF_BYTES = 4096
_SHA256 = re.compile(r"[0-9a-f]{64}")


class UploadTooLargeError(FakescopeError):
    """The content passed the size limit; nothing of it was kept."""


class EmptyUploadError(FakescopeError):
    """The content had no bytes at all."""


class AsyncReadable(Protocol):
    """What `save_upload` needs from Starlette's `UploadFile`."""

    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    path: Path


def format_bytes(n: int) -> str:
    """Human size for error messages (500 MiB, 12 KiB, 7 bytes)."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.4g} {unit}"
    return f"{n} bytes"


def check_sha256(sha256: str) -> str:
    """The digest itself, or FakescopeError: the only way a string becomes part of a blob path."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise FakescopeError(f"not a sha256 digest: {str(sha256)[:80]!r}")
    return sha256


class _PendingBlob:
    """One temp file being written: hash, count and limit in one place for every input kind."""

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=store.tmp_dir)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadTooLargeError(f"file too large: the limit is {format_bytes(self.max_bytes)}")
        self.digest.update(chunk)
        self.file.write(chunk)

    def abort(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)

    def finish(self) -> StoredBlob:
        self.file.close()
        if self.size == 0:
            self.path.unlink(missing_ok=True)
            raise EmptyUploadError("empty upload")
        sha256 = self.digest.hexdigest()
        final = self.store.path_for(sha256)
        if final.exists():
            self.path.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path, 0o444)
            os.replace(self.path, final)
        return StoredBlob(sha256=sha256, size=self.size, path=final)


class BlobStore:
    """Files under `root/ab/cd/<sha256>`, temp files under `root/tmp` (same file system: atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        """Remove a blob; True if there was one. Callers check first that no job still refers to it."""
        path = self.path_for(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        log.info("deleted blob %s", sha256)
        return True

    def head(self, sha256: str, n: int = SNIFF_BYTES) -> bytes:
        """The first bytes of a blob, for sniffing its media kind."""
        with self.path_for(sha256).open("rb") as fh:
            return fh.read(n)

    def clean_tmp(self) -> int:
        """Drop temp files a killed process left behind (call at start, before any upload)."""
        removed = 0
        for path in self.tmp_dir.glob("upload-*.part"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def save_iter(self, chunks: Iterable[bytes], max_bytes: int) -> StoredBlob:
        """Store the concatenated chunks (blocking: for threads, e.g. a URL download)."""
        pending = _PendingBlob(self, max_bytes)
        try:
            for chunk in chunks:
                pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        return pending.finish()

    async def save_stream(self, chunks: AsyncIterable[bytes] | Iterable[bytes], max_bytes: int) -> StoredBlob:
        """Store chunks from an async or plain iterable; disk work runs in a thread, off the event loop."""
        pending = await anyio.to_thread.run_sync(_PendingBlob, self, max_bytes)
        try:
            if isinstance(chunks, AsyncIterable):
                async for chunk in chunks:
                    await anyio.to_thread.run_sync(pending.write, chunk)
            else:
                for chunk in chunks:
                    await anyio.to_thread.run_sync(pending.write, chunk)
        except BaseException:
            pending.abort()
            raise
        return await anyio.to_thread.run_sync(pending.finish)

    async def save_upload(self, upload: AsyncReadable, max_bytes: int) -> StoredBlob:
        """Store a Starlette `UploadFile`, read 1 MiB at a time."""

        async def chunks():
            while chunk := await upload.read(CHUNK_BYTES):
                yield chunk

        return await self.save_stream(chunks(), max_bytes)

    def save_file(self, path: Path, max_bytes: int) -> StoredBlob:
        """Copy a server-side file in, so a job never depends on a path that may change or vanish."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"no such file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise UploadTooLargeError(
                f"file too large: {path.name} is {format_bytes(size)}, the limit is {format_bytes(max_bytes)}"
            )
        with path.open("rb") as fh:
            return self.save_iter(iter(lambda: fh.read(CHUNK_BYTES), b""), max_bytes)
