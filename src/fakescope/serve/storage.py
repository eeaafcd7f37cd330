"""Content-addressed blob store for uploaded media.

Uploads stream to a temp file while being hashed and counted, so a too-large upload is
stopped at the limit without ever holding it in memory, and the final name is the
sha256 of the content: identical uploads share one read-only file, and a path is built
only from a validated hex digest, never from anything a client named.

The store has a disk budget: bytes being written count against it chunk by chunk (so
concurrent uploads cannot overshoot it together), a file larger than the whole budget is
refused as too large (413), a new one that does not fit now as storage full (507), and either
way nothing of it stays on disk. The retention sweep (serve.retention) is what frees room.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterable, Iterable, Iterator
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


class StorageFullError(FakescopeError):
    """The blob store's disk budget, or the disk, has no room for the content now; nothing of it was kept (507)."""


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
    """One temp file being written: hash, count and limit in one place for every input kind.

    When the budget runs out mid-way the temp file goes at once and the rest is only hashed: content
    the store holds already needs no room (it is answered as stored), anything else is StorageFullError."""

    def __init__(self, store: BlobStore, max_bytes: int, expected_size: int | None = None) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size = 0
        self.reserved = 0
        self.full: StorageFullError | None = None
        if expected_size:
            store.check_size(expected_size)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=store.tmp_dir)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadTooLargeError(f"file too large: the limit is {format_bytes(self.max_bytes)}")
        self.store.check_size(self.size)
        self.digest.update(chunk)
        if self.full is None:
            try:
                self.store.reserve(len(chunk))
            except StorageFullError as err:
                self.full = err
                self._drop_temp()
                return
            self.reserved += len(chunk)
            self.file.write(chunk)

    def _drop_temp(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
        self.store.settle(self.reserved, 0)
        self.reserved = 0

    def abort(self) -> None:
        self._drop_temp()

    def finish(self) -> StoredBlob:
        try:
            self.file.close()
            if self.size == 0:
                raise EmptyUploadError("empty upload")
            sha256 = self.digest.hexdigest()
            final = self.store.path_for(sha256)
            if final.exists():
                self.path.unlink(missing_ok=True)
                _touch(final)  # in use again: the retention sweep leaves recently used uploads alone
                added = 0
            elif self.full is not None:
                raise self.full
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(self.path, 0o444)
                os.replace(self.path, final)
                added = self.size
        except BaseException:
            self.abort()
            raise
        self.store.settle(self.reserved, added)
        return StoredBlob(sha256=sha256, size=self.size, path=final)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        log.warning("could not mark %s as recently used", path.name)


class BlobStore:
    """Files under `root/ab/cd/<sha256>`, temp files under `root/tmp` (same file system: atomic rename).

    `budget_bytes` bounds the stored files plus those being written (0: no bound); `min_free_bytes`
    is the free disk an upload must leave. The count of stored bytes is taken at start, kept up to
    date by this process and taken again by each retention sweep (`measure`)."""

    def __init__(self, root: Path, *, budget_bytes: int = 0, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.budget_bytes = budget_bytes
        self.min_free_bytes = min_free_bytes
        self._lock = threading.Lock()
        self._pending = 0
        self._used = 0
        self.measure()

    # the disk budget

    @property
    def used_bytes(self) -> int:
        """Bytes of the stored files (not those being written)."""
        return self._used

    def blob_paths(self) -> Iterator[Path]:
        """Every stored file (temp files excluded)."""
        for path in self.root.glob("??/??/*"):
            if _SHA256.fullmatch(path.name) and path.is_file():
                yield path

    def measure(self) -> int:
        """Count the stored bytes again from the disk (another process or a crash may have changed them)."""
        total = 0
        for path in self.blob_paths():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        with self._lock:
            self._used = total
        return total

    def check_size(self, total: int) -> None:
        """UploadTooLargeError if one file of `total` bytes could never fit in the budget."""
        if self.budget_bytes and total > self.budget_bytes:
            raise UploadTooLargeError(f"file too large: the server's storage budget is {format_bytes(self.budget_bytes)}")

    def reserve(self, incoming: int) -> None:
        """Count `incoming` bytes being written, or StorageFullError if the budget or the free disk has no room."""
        with self._lock:
            budget = self.budget_bytes
            if budget and self._used + self._pending + incoming > budget:
                raise StorageFullError(
                    f"storage full: the server's upload store ({format_bytes(budget)}) has no room for this file; try again later"
                )
            if self.min_free_bytes and shutil.disk_usage(self.root).free - incoming < self.min_free_bytes:
                raise StorageFullError("storage full: the server's disk is nearly full; try again later")
            self._pending += incoming

    def settle(self, reserved: int, added: int) -> None:
        """A write is over: `reserved` bytes no longer pending, `added` bytes now stored."""
        with self._lock:
            self._pending -= reserved
            self._used += added

    def path_for(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        """Remove a blob; True if there was one. Callers check first that no job still refers to it."""
        path = self.path_for(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return False
        with self._lock:
            self._used = max(0, self._used - size)
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

    def save_iter(self, chunks: Iterable[bytes], max_bytes: int, expected_size: int | None = None) -> StoredBlob:
        """Store the concatenated chunks (blocking: for threads, e.g. a URL download)."""
        pending = _PendingBlob(self, max_bytes, expected_size)
        try:
            for chunk in chunks:
                pending.write(chunk)
        except BaseException:
            pending.abort()
            raise
        return pending.finish()

    async def save_stream(
        self, chunks: AsyncIterable[bytes] | Iterable[bytes], max_bytes: int, expected_size: int | None = None
    ) -> StoredBlob:
        """Store chunks from an async or plain iterable; disk work runs in a thread, off the event loop.

        `expected_size` (a declared length, when known) lets a file that cannot fit be refused before any byte."""
        pending = await anyio.to_thread.run_sync(_PendingBlob, self, max_bytes, expected_size)
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

        size = getattr(upload, "size", None)
        return await self.save_stream(chunks(), max_bytes, size if isinstance(size, int) and size <= max_bytes else None)

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
            return self.save_iter(iter(lambda: fh.read(CHUNK_BYTES), b""), max_bytes, size)
