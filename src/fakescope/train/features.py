"""Frozen-backbone features cached on disk (CLIP class tokens, Whisper statistics), so heads on them train and are
judged in seconds on a CPU.

The tower never changes (it is sha256-checked), so a picture's tokens are computed once per view and
reused by every probe, every cross-dataset row and every stacker. A view is how the file is read
before the model: "clean", or a named perturbation (`jpeg70`, `resize0.5`, `screenshot`) applied to
the file's own pixels first, exactly as `fakescope eval --perturb` does. Pixels reach the tower
through the same resize and normaliser as inference (`data.images.load_rgb`, `models.transforms`).

Cache: `runs/features/clip-b16/<view>/<folder>-<hash>.npz`, one per data folder, keyed by file path,
size and mtime (a changed file is recomputed), written every few hundred pictures so an interrupted
run resumes where it stopped.

Blocks tuned on top of the frozen backbone (`tuned_blocks` of models.clip_probe and models.whisper_probe)
train on its hidden states instead: every token (or speech frame) after the frozen blocks, ~200-300 KB a
file, so they go to chunk files written once each (`runs/features/<key>/<view>/<folder>-<hash>/chunk-0000.npz`,
same keys; key `clip-b16-hidden11`, `whisper-base-hidden5-conditioned`) rather than into one file rewritten
as it grows.

Speech probes (models.whisper_probe.WhisperProbe, e.g. audio-whisper-base) cache the same way what their head
reads: the frozen encoder's block statistics of each file's first prepared window, under
`runs/features/<raw_features_key>/clean/` (the key names encoder, blocks, statistics and conditioning).
`cached_inputs` picks the right one for a model.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from fakescope.data.audio import first_window_batches
from fakescope.data.images import load_rgb
from fakescope.data.samples import Sample
from fakescope.errors import FakescopeError
from fakescope.evaluate.perturb import parse_perturbation
from fakescope.models.clip import CLIP_MEAN, CLIP_SIZE, CLIP_STD, LAYERS, TOKENS, WIDTH, class_tokens, frozen_states
from fakescope.models.clip_probe import ClipProbe
from fakescope.models.config import PretrainedCfg
from fakescope.models.transforms import normalize
from fakescope.models.whisper_probe import WhisperProbe
from fakescope.progress import progress

log = logging.getLogger(__name__)

BACKBONE = "clip-b16"
CLEAN = "clean"
DEFAULT_CACHE = Path("runs/features")
SAVE_EVERY = 512
HIDDEN_CHUNK = 256  # files per hidden-state chunk file (~77 MB of CLIP states, ~53 MB of Whisper base)
ProbeModel = ClipProbe | WhisperProbe  # models whose head trains on cached inputs (train.probe)
CLIP_INPUT = PretrainedCfg(input_size=(3, CLIP_SIZE, CLIP_SIZE), mean=CLIP_MEAN, std=CLIP_STD)


def file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _folder_stem(folder: Path) -> str:
    return f"{folder.name}-{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]}"


def hidden_dir(cache_dir: Path, key: str, view: str, folder: Path) -> Path:
    """The folder of chunk files holding a data folder's hidden states of kind `key` (backbone and depth)."""
    return cache_dir / key / view / _folder_stem(folder)


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


def _pixel_batches(paths: Sequence[Path], view: str, batch_size: int) -> Iterator[torch.Tensor]:
    """CLIP-normalised (B, 3, 224, 224) batches of these files read through `view`, as inference reads them."""
    perturb = None if view == CLEAN else parse_perturbation(view)
    for start in range(0, len(paths), batch_size):
        images = [load_rgb(p, CLIP_SIZE, perturb) for p in paths[start : start + batch_size]]
        yield normalize(torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2), CLIP_INPUT)


def compute_tokens(paths: Sequence[Path], view: str = CLEAN, *, batch_size: int = 32) -> np.ndarray:
    """(N, 13, 768) float32 class tokens of these files read through `view`, without any cache."""
    out = [class_tokens(batch, LAYERS).numpy() for batch in _pixel_batches(paths, view, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, LAYERS + 1, WIDTH), np.float32)


def compute_hidden(paths: Sequence[Path], view: str = CLEAN, *, blocks_frozen: int, batch_size: int = 32) -> np.ndarray:
    """(N, 197, 768) float16 hidden states of these files after the tower's first `blocks_frozen` blocks, no cache."""
    out = [frozen_states(batch, blocks_frozen)[1].numpy().astype(np.float16) for batch in _pixel_batches(paths, view, batch_size)]
    return np.concatenate(out) if out else np.zeros((0, TOKENS, WIDTH), np.float16)


def cached_tokens(
    samples: Sequence[Sample], view: str = CLEAN, *, cache_dir: Path = DEFAULT_CACHE, batch_size: int = 32
) -> np.ndarray:
    """(N, 13, 768) float32 class tokens of `samples` (in order) through `view`, computing only what is missing."""

    def compute(paths: Sequence[Path]) -> np.ndarray:
        return compute_tokens(paths, view, batch_size=batch_size)

    return cached_values(samples, cache_dir / BACKBONE / view, compute, f"CLIP tokens ({view})")


def compute_speech_statistics(model: WhisperProbe, paths: Sequence[Path], *, batch_size: int = 16) -> np.ndarray:
    """(N, D) float32 `raw_features` of each file's first window (as evaluation scores it), without any cache."""
    out = np.zeros((len(paths), model.head.in_features), np.float32)
    for rows, waves in first_window_batches(paths, model.pretrained_cfg, batch_size):
        out[rows] = model.raw_features(waves).numpy()
    return out


def cached_inputs(
    model: ProbeModel, samples: Sequence[Sample], view: str = CLEAN, *, cache_dir: Path = DEFAULT_CACHE
) -> np.ndarray:
    """What a probe head reads of each sample, computed once per file: CLIP class tokens (N, 13, 768), or a
    Whisper probe's statistics (N, D) (clean only: its recipes take no other view)."""
    if isinstance(model, ClipProbe):
        return cached_tokens(samples, view, cache_dir=cache_dir)
    if view != CLEAN:
        raise FakescopeError(f"Whisper probes read speech clean only, not {view!r} (probe.views: [clean])")

    def compute(paths: Sequence[Path]) -> np.ndarray:
        return compute_speech_statistics(model, paths)

    return cached_values(samples, cache_dir / model.raw_features_key / CLEAN, compute, "Whisper statistics")


def cached_values(
    samples: Sequence[Sample], directory: Path, compute: Callable[[Sequence[Path]], np.ndarray], what: str
) -> np.ndarray:
    """`compute` of `samples` (in order), stored per data folder under `directory`; only what is missing is computed."""
    by_folder: dict[Path, list[Sample]] = {}
    for s in samples:
        by_folder.setdefault(_folder_of(s.path), []).append(s)
    found: dict[str, np.ndarray] = {}
    for folder, members in by_folder.items():
        found.update(_fill_folder(folder, members, directory / f"{_folder_stem(folder)}.npz", compute, what))
    return np.stack([found[file_key(s.path)] for s in samples]).astype(np.float32)


def _folder_of(path: Path) -> Path:
    """The data folder a file belongs to: the nearest parent with labels.csv (else the class folder's parent)."""
    for parent in path.parents:
        if (parent / "labels.csv").is_file():
            return parent
    return path.parent.parent


def _fill_folder(
    folder: Path, members: Sequence[Sample], path: Path, compute: Callable[[Sequence[Path]], np.ndarray], what: str
) -> dict[str, np.ndarray]:
    table = _load(path)
    keys = [file_key(s.path) for s in members]
    missing = list({k: s.path for k, s in zip(keys, members, strict=True) if k not in table}.items())
    if missing:
        log.info("%s: %d of %d files of %s to compute", what, len(missing), len(keys), folder.name)
        with progress() as bar:
            task = bar.add_task(f"{what} {folder.name}", total=len(missing), info="")
            for start in range(0, len(missing), SAVE_EVERY):
                chunk = missing[start : start + SAVE_EVERY]
                values = compute([p for _, p in chunk])
                table.update({k: v.astype(np.float16) for (k, _), v in zip(chunk, values, strict=True)})
                _save(path, table)
                bar.advance(task, len(chunk))
    return {k: table[k] for k in keys}


def compute_speech_hidden(model: WhisperProbe, paths: Sequence[Path], *, batch_size: int = 16) -> np.ndarray:
    """(N, frames, width) float16 hidden states after a tuned speech probe's frozen blocks, of each file's first
    window, padded with exact zeros to a full window's frames; no cache."""
    out = np.zeros((len(paths), *model.hidden_shape), np.float16)
    for rows, waves in first_window_batches(paths, model.pretrained_cfg, batch_size):
        hidden = model.frozen_hidden(waves).numpy().astype(np.float16)
        out[rows, : hidden.shape[1]] = hidden
    return out


def cached_hidden(
    model: ProbeModel, samples: Sequence[Sample], view: str = CLEAN, *, cache_dir: Path = DEFAULT_CACHE, batch_size: int = 32
) -> np.ndarray:
    """The inputs to a tuned model's own blocks for `samples` (in order) through `view`, computing only what is
    missing: CLIP hidden states (N, 197, 768) after the tower's first `frozen_blocks` blocks, or a speech probe's
    (N, frames, width) after its frozen blocks (`frozen_hidden`). float16 as stored: a train split's are gigabytes."""
    if not model.tuned_blocks:
        raise FakescopeError(f"{type(model).__name__} tunes no blocks: it reads no hidden states")
    if isinstance(model, ClipProbe):
        key, shape = f"{BACKBONE}-hidden{model.frozen_blocks}", (TOKENS, WIDTH)

        def compute(paths: Sequence[Path]) -> np.ndarray:
            return compute_hidden(paths, view, blocks_frozen=model.frozen_blocks, batch_size=batch_size)
    else:
        if view != CLEAN:
            raise FakescopeError(f"Whisper probes read speech clean only, not {view!r} (probe.views: [clean])")
        key, shape = model.hidden_key, model.hidden_shape

        def compute(paths: Sequence[Path]) -> np.ndarray:
            return compute_speech_hidden(model, paths)

    out = np.empty((len(samples), *shape), np.float16)
    by_folder: dict[Path, list[int]] = {}
    for i, s in enumerate(samples):
        by_folder.setdefault(_folder_of(s.path), []).append(i)
    for folder, rows in by_folder.items():
        directory = hidden_dir(cache_dir, key, view, folder)
        keys = [file_key(samples[i].path) for i in rows]
        index = _fill_chunks(directory, folder, keys, [samples[i].path for i in rows], compute, f"{key} {view}")
        wanted: dict[Path, list[tuple[int, int]]] = {}
        for i, file in zip(rows, keys, strict=True):
            chunk, row = index[file]
            wanted.setdefault(chunk, []).append((i, row))
        for chunk, pairs in wanted.items():
            with np.load(chunk) as data:
                hidden = data["hidden"]
            out[[i for i, _ in pairs]] = hidden[[row for _, row in pairs]]
    return out


def _chunk_index(directory: Path) -> dict[str, tuple[Path, int]]:
    """key -> (chunk file, row) over the chunks written so far (only their keys are read)."""
    index: dict[str, tuple[Path, int]] = {}
    for chunk in sorted(directory.glob("chunk-*.npz")):
        with np.load(chunk) as data:
            index.update({key: (chunk, row) for row, key in enumerate(data["keys"].tolist())})
    return index


def _fill_chunks(
    directory: Path, folder: Path, keys: list[str], paths: list[Path], compute: Callable[[Sequence[Path]], np.ndarray], what: str
) -> dict[str, tuple[Path, int]]:
    """Compute the hidden states of the keys no chunk holds yet, one new chunk file per HIDDEN_CHUNK files."""
    index = _chunk_index(directory)
    missing = list({k: p for k, p in zip(keys, paths, strict=True) if k not in index}.items())
    if not missing:
        return index
    log.info("hidden states %s: %d of %d files of %s to compute", what, len(missing), len(set(keys)), folder.name)
    directory.mkdir(parents=True, exist_ok=True)
    number = max((int(c.stem.split("-")[1]) + 1 for c in directory.glob("chunk-*.npz")), default=0)
    with progress() as bar:
        task = bar.add_task(f"hidden {what} {folder.name}", total=len(missing), info="")
        for start in range(0, len(missing), HIDDEN_CHUNK):
            part = missing[start : start + HIDDEN_CHUNK]
            hidden = compute([p for _, p in part]).astype(np.float16)
            chunk, tmp = directory / f"chunk-{number:04d}.npz", directory / f".tmp-chunk-{number:04d}.npz"
            np.savez(tmp, keys=np.array([k for k, _ in part]), hidden=hidden)
            os.replace(tmp, chunk)
            index.update({key: (chunk, row) for row, (key, _) in enumerate(part)})
            number += 1
            bar.advance(task, len(part))
    return index
