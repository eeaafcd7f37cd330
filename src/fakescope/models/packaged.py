"""Pretrained networks that PyPI wheels install as data files (no download at run time)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from fakescope.errors import ModelError


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
