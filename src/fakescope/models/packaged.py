"""Pretrained networks that PyPI wheels install as data files (no download at run time).

PyPI caps a file at 100 MB, so a larger network comes split over several wheels; `joined_file`
puts the parts back together once, into the user's cache, and checks the result's sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from collections.abc import Sequence
from pathlib import Path

from fakescope.errors import ModelError

_CHUNK = 1 << 22


def installed_file(package: str, suffix: str, *, needed_by: str) -> Path:
    """The first file ending in `suffix` that `package` installed, found through the package's
    installed file list (a wheel may put it under the environment's prefix, not the module)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as err:
        raise ModelError(f"{package}: not installed (pip install {package}); {needed_by} needs it") from err
    found = [Path(str(dist.locate_file(f))).resolve() for f in dist.files or [] if str(f).endswith(suffix)]
    if not found or not found[0].is_file():
        raise ModelError(f"{package}: its network file is missing; reinstall it (pip install --force-reinstall {package})")
    return found[0]


def cache_dir() -> Path:
    """fakescope's folder in the user's cache ($XDG_CACHE_HOME, else ~/.cache): files rebuilt from
    installed ones, safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fakescope"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def joined_file(parts: Sequence[Path], out: Path, *, size: int, sha256: str, remedy: str) -> Path:
    """`parts` concatenated into `out`, written once: a later call finds `out` complete (its size and
    sha256 as recorded) and returns it as is. A missing, cut or altered part is one ModelError that
    ends in `remedy`; nothing half-written is left behind (the join goes to a temporary file first)."""
    if out.is_file() and out.stat().st_size == size and file_sha256(out) == sha256:
        return out
    for part in parts:
        if not part.is_file():
            raise ModelError(f"{part}: a part of {out.name} is missing; {remedy}")
    total = sum(part.stat().st_size for part in parts)
    if total != size:
        raise ModelError(f"{out.name}: its parts hold {total:,} bytes, expected {size:,}; {remedy}")
    partial = out.with_name(f"{out.name}.{os.getpid()}.part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with partial.open("wb") as dst:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{out}: cannot write the joined network file ({err.strerror}); set XDG_CACHE_HOME to a writable folder"
        ) from None
    if digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"{out.name}: its joined parts have sha256 {digest.hexdigest()[:12]}…, expected {sha256[:12]}…; {remedy}"
        )
    os.replace(partial, out)
    return out
