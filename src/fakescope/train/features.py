"""Frozen CLIP class tokens cached on disk, so heads on them train and are judged in seconds on a CPU.

The tower never changes (it is sha256-checked), so a picture's tokens are computed once per view and
reused by every probe, every cross-dataset row and every stacker. A view is how the file is read
before the model: "clean", or a named perturbation (`jpeg70`, `resize0.5`, `screenshot`) applied to
the file's own pixels first, exactly as `fakescope eval --perturb` does. Pixels reach the tower
through the same resize and normaliser as inference (`data.images.load_rgb`, `models.transforms`).

Cache: `runs/features/clip-b16/<view>/<folder>-<hash>.npz`, one per data folder, keyed by file path,
size and mtime (a changed file is recomputed), written every few hundred pictures so an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fakescope.data.images import load_rgb
from fakescope.data.samples import Sample
from fakescope.evaluate.perturb import parse_perturbation
from fakescope.models.clip import CLIP_MEAN, CLIP_SIZE, CLIP_STD, LAYERS, class_tokens
from fakescope.models.config import PretrainedCfg
from fakescope.models.transforms import normalize
from fakescope.progress import progress

log = logging.getLogger(__name__)

BACKBONE = "clip-b16"
CLEAN = "clean"
DEFAULT_CACHE = Path("runs/features")
SAVE_EVERY = 512
CLIP_INPUT = PretrainedCfg(input_size=(3, CLIP_SIZE, CLIP_SIZE), mean=CLIP_MEAN, std=CLIP_STD)


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _cache_path(cache_dir: Path, view: str, folder: Path) -> Path:
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    return cache_dir / BACKBONE / view / f"{folder.name}-{digest}.npz"


def _load(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return dict(zip(data["keys"].tolist(), data["tokens"], strict=True))


def _save(path: Path, table: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    keys = list(table)
    np.savez(tmp, keys=np.array(keys), tokens=np.stack([table[k] for k in keys]).astype(np.float16))
    os.replace(tmp, path)


def compute_tokens(paths: Sequence[Path], view: str = CLEAN, *, batch_size: int = 32) -> np.ndarray:
    """(N, 13, 768) float32 class tokens of these files read through `view`, without any cache."""
    perturb = None if view == CLEAN else parse_perturbation(view)
    out = []
    for start in range(0, len(paths), batch_size):
        images = [load_rgb(p, CLIP_SIZE, perturb) for p in paths[start : start + batch_size]]
        batch = normalize(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2), CLIP_INPUT)
        out.append(class_tokens(batch, LAYERS).numpy())
    return np.concatenate(out) if out else np.zeros((0, LAYERS + 1, 768), np.float32)


def cached_tokens(
    samples: Sequence[Sample], view: str = CLEAN, *, cache_dir: Path = DEFAULT_CACHE, batch_size: int = 32
) -> np.ndarray:
    """(N, 13, 768) float32 class tokens of `samples` (in order) through `view`, computing only what is missing."""
    by_folder: dict[Path, list[Sample]] = {}
    for s in samples:
        by_folder.setdefault(_folder_of(s.path), []).append(s)
    found: dict[str, np.ndarray] = {}
    for folder, members in by_folder.items():
        found.update(_fill_folder(folder, members, view, cache_dir, batch_size))
    return np.stack([found[file_key(s.path)] for s in samples]).astype(np.float32)


def _folder_of(path: Path) -> Path:
    """The data folder a file belongs to: the nearest parent with labels.csv (else the class folder's parent)."""
    for parent in path.parents:
        if (parent / "labels.csv").is_file():
            return parent
    return path.parent.parent


def _fill_folder(folder: Path, members: Sequence[Sample], view: str, cache_dir: Path, batch_size: int) -> dict[str, np.ndarray]:
    path = _cache_path(cache_dir, view, folder)
    table = _load(path)
    keys = [file_key(s.path) for s in members]
    missing = [(k, s.path) for k, s in zip(keys, members, strict=True) if k not in table]
    if missing:
        log.info("CLIP tokens: %d of %d pictures of %s (%s) to compute", len(missing), len(keys), folder.name, view)
        with progress() as bar:
            task = bar.add_task(f"CLIP {folder.name} {view}", total=len(missing), info="")
            for start in range(0, len(missing), SAVE_EVERY):
                chunk = missing[start : start + SAVE_EVERY]
                tokens = compute_tokens([p for _, p in chunk], view, batch_size=batch_size)
                table.update({k: t.astype(np.float16) for (k, _), t in zip(chunk, tokens, strict=True)})
                _save(path, table)
                bar.advance(task, len(chunk))
    return {k: table[k] for k in keys}
