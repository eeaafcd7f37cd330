"""A thread-safe LRU of Results keyed by file content, so a repeated file is answered without decoding it.

The key is the content's sha256 plus the fingerprint of everything that shapes a Result (models and
their versions, frames sampled, fusion weights, verdict bands): a changed setting never serves a stale
answer. Files are hashed once per (path, size, mtime, inode): a repeat of an unchanged file costs a
`stat`, not a read. Detectors in CLI runs, scan workers and the service's workers each hold one.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from fakescope.detect.options import DEFAULT_OPTIONS
from fakescope.detect.result import Result
from fakescope.errors import UnsupportedMediaError
from fakescope.models.registry import sha256_file

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry; callers hold the lock."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    maxsize: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class ResultCache:
    """Results by (content sha256, detector fingerprint), least recently used dropped past `maxsize`."""

    def __init__(self, maxsize: int = DEFAULT_OPTIONS.cache_size) -> None:
        if maxsize < 1:
            raise ValueError("cache size must be at least 1")
        self._lock = threading.Lock()
        self._results: _Lru[tuple[str, str], str] = _Lru(maxsize)
        self._digests: _Lru[tuple[str, int, int, int], str] = _Lru(maxsize * 4)
        self.hits = 0
        self.misses = 0

    def digest(self, path: Path) -> str:
        """sha256 of the file's content, hashed again only when the file changed.

        Only a regular file is read: a FIFO would block and a device never end (UnsupportedMediaError)."""
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UnsupportedMediaError(f"{path}: not a regular file")
        stamp = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            known = self._digests.get(stamp)
        if known is not None:
            return known
        digest = sha256_file(Path(path))
        with self._lock:
            self._digests.put(stamp, digest)
        return digest

    def get(self, sha256: str, fingerprint: str) -> Result | None:
        """A fresh copy of the stored Result (callers may change it), counting the hit or miss."""
        with self._lock:
            stored = self._results.get((sha256, fingerprint))
            if stored is None:
                self.misses += 1
                return None
            self.hits += 1
        return Result.model_validate_json(stored)

    def put(self, sha256: str, fingerprint: str, result: Result) -> None:
        """Keep a Result that another run would repeat: errors (a file mid-copy, a missing model) are not kept."""
        if result.status == "error":
            return
        stored = result.model_dump_json()
        with self._lock:
            self._results.put((sha256, fingerprint), stored)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._results), self._results.maxsize)
