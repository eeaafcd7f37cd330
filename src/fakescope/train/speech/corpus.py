"""The audio detector's training corpus, built once into a folder of 16 kHz WAVs and a labels.csv.

Two sources go in (read by `fakescope.data.speech_sources`). Spoken digits (real only) are
joined four at a time into ~2 s utterances and every utterance is faked by each generator of
the catalogue; whole speakers are held out for val (the split column), and the group is a set
of 20 recordings of one speaker (joined once, or twice in other orders for train speakers), so
a real and its fakes stay together and the trainer can carve its calib set from train groups
that share no recording with training. `speech_synth` clips (published reals next to vocoder,
TTS, codec and voice-conversion fakes of the same utterances) are grouped by utterance, so a
real and its fakes never straddle the split. Each speech_synth real is also faked by every
generator: resynthesised, or (its words being unknown) replaced by a TTS system saying a
Harvard sentence, cut to the real's length. The digits come from only six speakers, and with
fakes made from them alone a detector learns the four training voices as "real" and calls
every new voice fake; the speech_synth reals add about a hundred speakers, each with its own
fakes next to it, and wideband TTS next to wideband reals.

This module runs the build: the items go to a process pool (`generation.write_item` writes
each one's clips), and a manifest of the settings makes the build resumable and a no-op when
done. Worker count and order do not change a byte.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fakescope.constants import SAMPLE_RATE
from fakescope.data import LABELS, Sample, check_no_leakage
from fakescope.data.speech_sources import read_digit_utterances, read_synth_clips
from fakescope.errors import FakescopeError
from fakescope.media.channels import CONDITIONS
from fakescope.train.speech.catalogue import COLUMNS, CORPUS_VERSION, DEFAULT_GENERATORS, resolve_generators
from fakescope.train.speech.fakes import network_sha256
from fakescope.train.speech.generation import CorpusJob, write_item
from fakescope.train.speech.tts import TTS_GENERATORS, tts_version

log = logging.getLogger(__name__)

PROGRESS_EVERY = 200


def build_speech_corpus(
    out: Path,
    *,
    real_root: Path,
    synth_root: Path | None,
    seed: int = 20261123,
    workers: int = 2,
    generators: Sequence[str] = DEFAULT_GENERATORS,
    val_speakers: int = 2,
    val_fraction: float = 0.25,
    digit_passes: int = 2,
    limit: int | None = None,
) -> Path:
    """Write the corpus under `out` (real/, fake/, labels.csv, manifest.json); returns labels.csv.

    Returns at once when `out` already holds a finished build with the same settings; resumes an
    interrupted one (clips already written are kept); starts over when the settings changed.
    `limit` caps the digit utterances and the synth clips (each), for smoke runs.
    """
    out, real_root = Path(out), Path(real_root)
    synth_root = Path(synth_root) if synth_root is not None else None
    used = resolve_generators(generators)
    settings = _settings(real_root, synth_root, seed, used, val_speakers, val_fraction, digit_passes, limit)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    labels_path, manifest_path = out / "labels.csv", out / "manifest.json"
    with _exclusive(out):
        previous = _read_manifest(manifest_path)
        if previous.get("settings_hash") == digest and labels_path.is_file():
            log.info("%s: up to date (settings %s)", labels_path, digest)
            return labels_path
        if previous.get("settings_hash") != digest:
            _clear(out, known=bool(previous))
        _drop_partial(out)
        started = time.monotonic()
        _write_json(manifest_path, {"settings": settings, "settings_hash": digest, "status": "building"})
        utterances = read_digit_utterances(real_root, seed=seed, val_speakers=val_speakers, passes=digit_passes, limit=limit)
        clips = read_synth_clips(synth_root, seed=seed, val_fraction=val_fraction, limit=limit) if synth_root else []
        log.info("%s: building %d digit utterances x %d generators, %d synth clips", out, len(utterances), len(used), len(clips))
        jobs = [CorpusJob(item, out, seed, used) for item in [*utterances, *clips]]
        rows = sorted(_run_jobs(jobs, workers), key=lambda row: row["file"])
        _check(rows, labels_path)
        counts = _counts(rows)
        _log_counts(counts)
        done = {"status": "complete", "clips": len(rows), "counts": counts, "seconds": round(time.monotonic() - started, 1)}
        _write_json(manifest_path, {"settings": settings, "settings_hash": digest, **done})
        _write_labels(labels_path, rows)
    return labels_path


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One build per folder at a time (two trainings may start together): a second caller waits,
    then finds the corpus done. The lock goes with the process, so a killed build leaves none."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    with (out / ".build.lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another process is building this corpus, waiting for it", out)
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _settings(
    real_root: Path,
    synth_root: Path | None,
    seed: int,
    generators: tuple[str, ...],
    val_speakers: int,
    val_fraction: float,
    digit_passes: int,
    limit: int | None,
) -> dict[str, Any]:
    """Everything that decides the output, inputs' labels.csv included, to be hashed."""
    return {
        "version": CORPUS_VERSION,
        "seed": seed,
        "generators": list(generators),
        "tts_versions": {name: tts_version(name) for name in generators if name in TTS_GENERATORS},
        "vocoders_sha256": {name: sha for name in generators if (sha := network_sha256(name))},
        "conditions": list(CONDITIONS),
        "val_speakers": val_speakers,
        "val_fraction": val_fraction,
        "digit_passes": digit_passes,
        "limit": limit,
        "sample_rate": SAMPLE_RATE,
        "real_root": str(real_root.resolve()),
        "real_labels_sha256": _file_digest(real_root / "labels.csv"),
        "synth_root": str(synth_root.resolve()) if synth_root else None,
        "synth_labels_sha256": _file_digest(synth_root / "labels.csv") if synth_root else None,
    }


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError as err:
        raise FakescopeError(f"{path}: not found") from err


def _read_manifest(path: Path) -> dict[str, Any]:
    """The previous build's manifest, or {} when there is none; an unreadable one is an error."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FakescopeError(f"{path}: not a corpus manifest ({err}); delete the folder to rebuild") from err
    if not isinstance(data, dict):
        raise FakescopeError(f"{path}: not a corpus manifest; delete the folder to rebuild")
    return data


def _clear(out: Path, *, known: bool) -> None:
    """Remove an outdated build's clips and labels; refuse to touch clips that no manifest vouches for."""
    wavs = [p for folder in ("real", "fake") for p in (out / folder).glob("*.wav")]
    if wavs and not known:
        raise FakescopeError(f"{out}: holds real/ or fake/ clips but no manifest.json; build the corpus into a new folder")
    if wavs or (out / "labels.csv").exists():
        log.info("%s: settings changed, removing the previous build (%d clips)", out, len(wavs))
    for path in wavs:
        path.unlink()
    (out / "labels.csv").unlink(missing_ok=True)


def _drop_partial(out: Path) -> None:
    """Half-written clips of an interrupted build: they are written again."""
    for path in [p for folder in ("real", "fake") for p in (out / folder).glob("*.part")]:
        path.unlink()


def _run_jobs(jobs: list[CorpusJob], workers: int) -> list[dict[str, str]]:
    """Rows of every job, inline for one worker, else in a spawn-started process pool."""
    rows: list[dict[str, str]] = []
    progress = _Progress(len(jobs))
    if workers <= 1:
        for job in jobs:
            rows.extend(progress.add(write_item(job)))
        return rows
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
    try:
        futures = [pool.submit(write_item, job) for job in jobs]
        for future in as_completed(futures):
            rows.extend(progress.add(future.result()))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return rows


def _one_thread() -> None:
    """Workers are the parallelism: a vocoder's torch in each must not spread over every core too
    (torch is already imported when this runs, so its thread count, not OMP_NUM_THREADS)."""
    import torch

    torch.set_num_threads(1)


class _Progress:
    def __init__(self, jobs: int) -> None:
        self.jobs, self.done, self.clips, self.logged = jobs, 0, 0, 0

    def add(self, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        self.done += 1
        self.clips += len(rows)
        if self.clips - self.logged >= PROGRESS_EVERY or self.done == self.jobs:
            log.info("speech corpus: %d/%d items, %d clips", self.done, self.jobs, self.clips)
            self.logged = self.clips
        return rows


def _check(rows: list[dict[str, str]], labels_path: Path) -> None:
    """No group on both sides of the split (the trainer trusts this file's split)."""
    check_no_leakage([Sample(Path(r["file"]), LABELS[r["label"]], r["group"], r["split"]) for r in rows], labels_path)


def _counts(rows: list[dict[str, str]]) -> dict[str, int]:
    """Clips per split/label/source, e.g. {"train/FAKE/fsdd": 1250}."""
    counts = Counter(f"{r['split']}/{r['label']}/{r['source']}" for r in rows)
    return dict(sorted(counts.items()))


def _log_counts(counts: dict[str, int]) -> None:
    log.info("speech corpus clips per split/label/source:")
    for key, n in counts.items():
        log.info("  %-28s %5d", key, n)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _write_labels(path: Path, rows: list[dict[str, str]]) -> None:
    partial = path.with_name(path.name + ".part")
    with partial.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
