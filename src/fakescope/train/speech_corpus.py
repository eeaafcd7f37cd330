"""The audio detector's training corpus, built once into a folder of 16 kHz WAVs and a labels.csv.

Two sources go in. Spoken digits (real only) are joined four at a time into ~2 s utterances
and every utterance is faked by each generator of `train.speech_fakes`; whole speakers are held
out for val (the split column), and the group is a set of 20 recordings of one speaker (joined
once, or twice in other orders for train speakers), so a real and its fakes stay together and
the trainer can carve its calib set from train groups that share no recording with training.
`speech_synth` clips (published reals next to vocoder, TTS, codec and voice-conversion fakes of
the same utterances) are grouped by utterance, so a real and its fakes never straddle the split.
Each speech_synth real is also faked by every generator: resynthesised, or (its words being
unknown) replaced by a TTS system saying a Harvard sentence, cut to the real's length. The digits
come from only six speakers, and with fakes made from them alone a detector learns the four
training voices as "real" and calls every new voice fake; the speech_synth reals add about a
hundred speakers, each with its own fakes next to it, and wideband TTS next to wideband reals.

Nothing that differs by class may survive as a shortcut: everything is resampled to 16 kHz,
the same channel conditions (codecs, narrowband) are drawn for both classes, and every clip
gets the same faint dither so that digital silence says nothing.

All randomness derives from the seed and the item's name, so worker count and order do not
change a byte. A manifest of the settings makes the build resumable and a no-op when done.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fakescope.errors import FakescopeError
from fakescope.media.audio import SAMPLE_RATE, decode_audio, resample
from fakescope.train.data import stratified_split_groups
from fakescope.train.sentences import HARVARD_SENTENCES
from fakescope.train.speech_fakes import (
    CONDITIONS,
    GENERATORS,
    TTS_GENERATORS,
    apply_condition,
    generator_family,
    match_loudness,
    network_sha256,
    tts_version,
)

log = logging.getLogger(__name__)

CORPUS_VERSION = 7  # bump when a change here alters what gets written
COLUMNS = ("file", "label", "group", "speaker", "source", "generator", "family", "condition", "split")
# `hifigan` (GENERATORS) is left out: trained beside the others it made the detector worse on the
# generators it had seen (README, "Tried and dropped"); add it with data.speech_corpus.generators.
DEFAULT_GENERATORS = (
    "griffin_lim", "phase_vocoder", "lpc", "world", "upsampling_vocoder", "istft_vocoder", "espeak", "flite", "kokoro",
)
REAL_GENERATOR, REAL_FAMILY = "ground truth", "real"
DIGIT_RATE = 8_000
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS_PER_UTTERANCE = 4
RECORDINGS_PER_GROUP = 20
GAP_SECONDS = (0.08, 0.20)
DIGIT_SOURCE = "fsdd"
DITHER_DBFS = -72.0
NOISY_CONDITIONS = tuple(c for c in CONDITIONS if c != "clean")
PROGRESS_EVERY = 200

# speech_synth generator (labels.csv `generator`) -> family. Families, not generators, are what
# a detector should generalise across, and what per-family scores are reported on:
#   gan-vocoder                   mel spectrogram -> waveform by a GAN-trained vocoder
#   autoregressive-flow-vocoder   WaveNet/WaveRNN (sample by sample) and WaveGlow (normalising flow)
#   tts                           text -> speech systems (acoustic model + a vocoder)
#   voice-conversion              one speaker's words in another's voice, or an anonymised voice
#   neural-codec                  waveform rebuilt from a neural codec's discrete tokens
# Any generator named "... (voice conversion)" or "... (voice anonymisation)" is voice conversion.
SYNTH_FAMILIES: dict[str, str] = {
    "MelGAN": "gan-vocoder",
    "Universal MelGAN": "gan-vocoder",
    "MelGAN (PWG repo)": "gan-vocoder",
    "Multi-band MelGAN": "gan-vocoder",
    "Full-band MelGAN": "gan-vocoder",
    "StyleMelGAN": "gan-vocoder",
    "Parallel WaveGAN": "gan-vocoder",
    "UnivNet (maum-ai implementation)": "gan-vocoder",
    "UnivNet (official samples)": "gan-vocoder",
    "BigVGAN": "gan-vocoder",
    "iSTFTNet": "gan-vocoder",
    "Vocos (mel)": "gan-vocoder",
    "WaveNet vocoder": "autoregressive-flow-vocoder",
    "WaveNet vocoder (r9y9)": "autoregressive-flow-vocoder",
    "WaveRNN": "autoregressive-flow-vocoder",
    "WaveGlow": "autoregressive-flow-vocoder",
    "ESPnet TTS + Griffin-Lim": "tts",
    "ESPnet TTS + WaveNet vocoder": "tts",
    "Tacotron2 TTS + WaveNet vocoder (r9y9)": "tts",
    "Bark TTS + EnCodec decoder": "tts",
    "Bark TTS + Vocos": "tts",
    "StarGANv2-VC (voice conversion)": "voice-conversion",
    "AUTO-VC (voice conversion)": "voice-conversion",
    "EnCodec decoder": "neural-codec",
    "Vocos (from EnCodec tokens)": "neural-codec",
}
_VOICE_CONVERSION_SUFFIXES = ("(voice conversion)", "(voice anonymisation)")
# VCTK conversions: LVC names them <content utterance>_<voice utterance> (p225_336_p329_300),
# StarGANv2-VC files them (and both recordings) under a <source>x<target> speaker folder.
_VCTK_PAIR = re.compile(r"(p\d{3}_\d{3})_(p\d{3}_\d{3})$")
_VCTK_SPEAKER_PAIR = re.compile(r"p\d{3}xp\d{3}")


def synth_family(generator: str, *, where: str = "speech_synth") -> str:
    """The family of a speech_synth generator ("real" for ground truth); an unknown name is an error,
    so new data is never silently mislabelled."""
    if generator == REAL_GENERATOR:
        return REAL_FAMILY
    if generator in SYNTH_FAMILIES:
        return SYNTH_FAMILIES[generator]
    if generator.endswith(_VOICE_CONVERSION_SUFFIXES):
        return "voice-conversion"
    raise FakescopeError(f"{where}: unknown generator {generator!r}; add it to speech_corpus.SYNTH_FAMILIES")


def synth_groups(files: Sequence[str], labels: Sequence[str]) -> dict[str, str]:
    """File -> group for speech_synth: clips of one utterance (a real, its resyntheses, conversions
    from it or into its voice) share a group, named by its smallest utterance id.

    File names are `<source>_<generator>[_<condition>]_<utterance>`; a real's id is everything
    after `<source>_real_`. A clip belongs to every real whose id ends its name, even in another
    source (`pwg` fakes re-synthesise `espnet`'s LJSpeech reals). `original_path` is no help:
    demos name outputs `<id>_gen`, `<n>_checkpoint_..._predicted` or `converted`. VCTK
    conversions also join the recordings they were made from: LVC's `<content>_<voice>` ids
    and StarGANv2-VC's `pXXXxpYYY` speaker-pair folders. A clip matching nothing is its own
    utterance.
    """
    rests = {file: _utterance_part(file) for file in files}
    real_ids = sorted({rests[f] for f, label in zip(files, labels, strict=True) if label == "REAL"})
    keys = {}
    for file, rest in rests.items():
        found = [k for k in real_ids if rest == k or rest.endswith("_" + k)]
        pair = _VCTK_PAIR.search(rest)
        found += list(pair.groups()) if pair else []
        found += _VCTK_SPEAKER_PAIR.findall(rest)
        keys[file] = found or [rest]
    components = _connected(keys.values())
    return {file: components[ks[0]] for file, ks in keys.items()}


def _utterance_part(file: str) -> str:
    parts = Path(file).stem.split("_", 2)
    if len(parts) < 3 or not all(parts):
        raise FakescopeError(f"{file}: name is not <source>_<generator>_<utterance>.wav")
    return parts[2]


@dataclass(frozen=True)
class DigitUtterance:
    """Four spoken digits of one speaker, joined with short pauses; `key` names its clips, `group` the
    recordings they come from."""

    key: str
    group: str
    speaker: str
    files: tuple[Path, ...]
    words: tuple[str, ...]
    split: str


@dataclass(frozen=True)
class SynthClip:
    """A speech_synth clip with what labels.csv needs; `label` is 0/1 as `stratified_split_groups` counts it."""

    path: Path
    stem: str
    label: int
    group: str
    speaker: str
    source: str
    generator: str
    family: str
    split: str = ""


@dataclass(frozen=True)
class _Job:
    """One work item for a worker: everything needed to write its clips and return their rows."""

    item: DigitUtterance | SynthClip
    out: Path
    seed: int
    generators: tuple[str, ...]


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
    used = _resolve_generators(generators)
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
        jobs = [_Job(item, out, seed, used) for item in [*utterances, *clips]]
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


def _resolve_generators(generators: Sequence[str]) -> tuple[str, ...]:
    """Known generator names in the given order; a TTS program that is not installed is dropped with a warning."""
    known = (*GENERATORS, *TTS_GENERATORS)
    for name in generators:
        if name not in known:
            raise FakescopeError(f"unknown speech generator {name!r}; use some of {', '.join(known)}")
    used = tuple(dict.fromkeys(generators))
    for name in [g for g in used if g in TTS_GENERATORS and tts_version(g) is None]:
        log.warning("%s is not installed: building the corpus without the %s generator", name, name)
        used = tuple(g for g in used if g != name)
    if not used:
        raise FakescopeError("no speech generator to make fakes with; use some of " + ", ".join(known))
    return used


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


def read_digit_utterances(
    root: Path, *, seed: int, val_speakers: int, passes: int = 1, limit: int | None = None
) -> list[DigitUtterance]:
    """Spoken digits joined four at a time per speaker (a seeded shuffle), `val_speakers` speakers in val.

    A train speaker's recordings are joined `passes` times, each pass in another order: with six
    speakers, more utterances of the same recordings were the one change that moved unseen
    speakers. Recordings are joined only within a group of 20 of one speaker, the utterances'
    group, so the calib split carved from train groups never hears a recording that trained the
    model. Val speakers get one pass: each val recording is scored once.

    With `limit`, utterances are taken round-robin over the speakers, so even a handful
    covers both splits.
    """
    by_speaker: dict[str, list[tuple[str, str]]] = defaultdict(list)
    csv_path = root / "labels.csv"
    for where, row in _read_csv(csv_path, ("file", "speaker", "digit")):
        digit = row["digit"].strip()
        if digit not in {str(d) for d in range(10)}:
            raise FakescopeError(f"{where}: digit must be 0-9, got {row['digit']!r}")
        by_speaker[row["speaker"].strip()].append((row["file"].strip(), DIGIT_WORDS[int(digit)]))
    speakers = sorted(by_speaker)
    if not 0 <= val_speakers < len(speakers):
        raise FakescopeError(
            f"{csv_path}: val_speakers must be 0 to {len(speakers) - 1} (it lists {len(speakers)} speakers), got {val_speakers}"
        )
    held = {speakers[i] for i in _rng(seed, DIGIT_SOURCE, "val").permutation(len(speakers))[:val_speakers]}
    per_speaker = []
    for speaker in speakers:
        files = sorted(by_speaker[speaker])
        order = _rng(seed, "fsdd", speaker, "order").permutation(len(files))
        shuffled = [files[i] for i in order]
        split = "val" if speaker in held else "train"
        per_speaker.append([
            utterance
            for b, start in enumerate(range(0, len(shuffled), RECORDINGS_PER_GROUP))
            for utterance in _group_utterances(root, shuffled[start : start + RECORDINGS_PER_GROUP],
                                               group=f"{DIGIT_SOURCE}_{speaker}_{b:02d}", speaker=speaker, split=split,
                                               passes=passes if split == "train" else 1, seed=seed)
        ])
    interleaved = [u for round_ in _round_robin(per_speaker) for u in round_]
    return interleaved[:limit] if limit is not None else interleaved


def _group_utterances(root: Path, block: list[tuple[str, str]], *, group: str, speaker: str, split: str, passes: int,
                      seed: int) -> list[DigitUtterance]:
    """A group's (file, word) recordings joined four at a time, once per pass: pass 0 in the given
    order, later passes in a seeded shuffle of the same recordings."""
    utterances = []
    for p in range(passes):
        ordered = block if p == 0 else [block[i] for i in _rng(seed, group, str(p)).permutation(len(block))]
        for n, start in enumerate(range(0, len(ordered), WORDS_PER_UTTERANCE)):
            chunk = ordered[start : start + WORDS_PER_UTTERANCE]
            utterances.append(DigitUtterance(key=f"{group}{n}" + (f"p{p}" if p else ""), group=group, speaker=speaker,
                                             files=tuple(root / f for f, _ in chunk), words=tuple(w for _, w in chunk),
                                             split=split))
    return utterances


def _round_robin(lists: list[list[DigitUtterance]]) -> Iterable[list[DigitUtterance]]:
    for i in range(max(map(len, lists), default=0)):
        yield [items[i] for items in lists if i < len(items)]


def read_synth_clips(root: Path, *, seed: int, val_fraction: float, limit: int | None = None) -> list[SynthClip]:
    """speech_synth clips with family, source and group; `val_fraction` of the groups in val, stratified
    by label mix. Clips sharing an utterance (a real, its resyntheses, conversions from it) form a group.

    With `limit`, whole groups are taken in a seeded order while they fit.
    """
    entries = []
    for where, row in _read_csv(root / "labels.csv", ("file", "label", "generator", "speaker_or_corpus")):
        label = row["label"].strip().upper()
        if label not in ("REAL", "FAKE"):
            raise FakescopeError(f"{where}: label must be REAL or FAKE, got {row['label']!r}")
        generator = row["generator"].strip()
        family = synth_family(generator, where=where)
        if (family == REAL_FAMILY) != (label == "REAL"):
            raise FakescopeError(f"{where}: generator {generator!r} does not fit label {label}")
        entries.append((row["file"].strip(), label, generator, family, row["speaker_or_corpus"].strip()))
    groups = synth_groups([e[0] for e in entries], [e[1] for e in entries])
    clips = [
        SynthClip(
            path=root / file,
            stem=Path(file).stem,
            label=int(label == "FAKE"),
            group=groups[file],
            speaker=speaker,
            source=Path(file).stem.split("_", 1)[0],
            generator=generator,
            family=family,
        )
        for file, label, generator, family, speaker in entries
    ]
    if limit is not None:
        clips = _limit_groups(clips, limit, seed)
    _, val = stratified_split_groups(clips, val_fraction, seed=seed)
    held = {c.group for c in val}
    return [replace(c, split="val" if c.group in held else "train") for c in clips]


def _connected(key_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """Key -> smallest key it is connected to, keys listed together being connected (union-find)."""
    parent: dict[str, str] = {}

    def find(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for keys in key_lists:
        for k in keys[1:]:
            a, b = sorted((find(keys[0]), find(k)))
            parent[b] = a
        find(keys[0])
    return {k: find(k) for k in parent}


def _limit_groups(clips: list[SynthClip], limit: int, seed: int) -> list[SynthClip]:
    by_group: dict[str, list[SynthClip]] = defaultdict(list)
    for clip in clips:
        by_group[clip.group].append(clip)
    names = sorted(by_group)
    kept: list[SynthClip] = []
    for i in _rng(seed, "synth", "limit").permutation(len(names)):
        if len(kept) + len(by_group[names[i]]) <= limit:
            kept.extend(by_group[names[i]])
    return kept


def _read_csv(path: Path, required: Sequence[str]) -> Iterable[tuple[str, dict[str, str]]]:
    """(where, row) for each row of a CSV, `where` = "path:line" for error messages."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for missing in [c for c in required if c not in (reader.fieldnames or [])]:
                raise FakescopeError(f"{path}: missing column {missing!r}")
            rows = [(f"{path}:{line}", row) for line, row in enumerate(reader, start=2)]
    except FileNotFoundError as err:
        raise FakescopeError(f"{path}: not found") from err
    except UnicodeDecodeError as err:
        raise FakescopeError(f"{path}: not UTF-8 text") from err
    for where, row in rows:
        if any(row.get(c) is None or not row[c].strip() for c in required):
            raise FakescopeError(f"{where}: empty value in one of {', '.join(required)}")
    return rows


def _rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator fixed by the seed and a name, independent of the order items are processed in."""
    return np.random.default_rng([seed, *(zlib.crc32(p.encode("utf-8")) for p in parts)])


def _run_jobs(jobs: list[_Job], workers: int) -> list[dict[str, str]]:
    """Rows of every job, inline for one worker, else in a spawn-started process pool."""
    rows: list[dict[str, str]] = []
    progress = _Progress(len(jobs))
    if workers <= 1:
        for job in jobs:
            rows.extend(progress.add(_run_job(job)))
        return rows
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
    try:
        futures = [pool.submit(_run_job, job) for job in jobs]
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


def _run_job(job: _Job) -> list[dict[str, str]]:
    if isinstance(job.item, DigitUtterance):
        return _digit_clips(job.item, job.out, job.seed, job.generators)
    return _synth_clips(job.item, job.out, job.seed, job.generators)


def _digit_clips(utt: DigitUtterance, out: Path, seed: int, generators: tuple[str, ...]) -> list[dict[str, str]]:
    """One real utterance written clean and under two channel conditions, and one fake per generator
    (made at 8 kHz like the digits, then resampled), each under a random condition."""
    plan = _rng(seed, utt.key, "plan")
    gaps = plan.uniform(*GAP_SECONDS, size=max(0, len(utt.files) - 1))
    real_conditions = ["clean", *plan.choice(NOISY_CONDITIONS, size=2, replace=False).tolist()]
    base = {"group": utt.group, "speaker": utt.speaker, "source": DIGIT_SOURCE, "split": utt.split}
    real = {**base, "label": "REAL", "generator": REAL_GENERATOR, "family": REAL_FAMILY}
    targets: list[tuple[dict[str, str], str | None]] = [
        ({**real, "file": f"real/{utt.key}_{c}.wav", "condition": c}, None) for c in real_conditions
    ]
    for name in generators:
        condition = fake_condition(_rng(seed, utt.key, name, "condition"))
        family = generator_family(name)
        fake = {**base, "label": "FAKE", "generator": name, "family": family, "condition": condition}
        targets.append(({**fake, "file": f"fake/{utt.key}_{name}_{condition}.wav"}, name))
    missing = [(row, name) for row, name in targets if not (out / row["file"]).is_file()]
    if missing:
        words = _join_words(utt, gaps)
        for row, name in missing:
            clip = words if name is None else _fake(name, words, utt, seed)
            _write_clip(out, row, resample(clip, DIGIT_RATE, SAMPLE_RATE), seed)
    return [row for row, _ in targets]


def fake_condition(rng: np.random.Generator) -> str:
    """Clean one time in three, else any codec or band limit: the mix a real digit utterance gets
    (clean + two others), so that how clean a clip is says nothing about its class."""
    return "clean" if rng.random() < 1 / 3 else str(rng.choice(NOISY_CONDITIONS))


def _join_words(utt: DigitUtterance, gaps: np.ndarray) -> np.ndarray:
    """The digit recordings at 8 kHz with `gaps` seconds of silence between them."""
    parts: list[np.ndarray] = []
    for i, path in enumerate(utt.files):
        if i:
            parts.append(np.zeros(round(gaps[i - 1] * DIGIT_RATE), dtype=np.float32))
        parts.append(decode_audio(path, sample_rate=DIGIT_RATE)[0])
    return np.concatenate(parts)


def _fake(name: str, real: np.ndarray, utt: DigitUtterance, seed: int) -> np.ndarray:
    """`name`'s fake of the utterance at 8 kHz; a TTS program says the same digits at the real one's loudness."""
    rng = _rng(seed, utt.key, name)
    if name in TTS_GENERATORS:
        return match_loudness(TTS_GENERATORS[name][1](" ".join(utt.words), DIGIT_RATE, rng), real)
    return GENERATORS[name][1](real, DIGIT_RATE, rng)


def _synth_clips(clip: SynthClip, out: Path, seed: int, generators: tuple[str, ...]) -> list[dict[str, str]]:
    """A speech_synth clip at 16 kHz, written clean and under one random channel condition; a real one
    is also faked by each generator (at 16 kHz, under a random condition)."""
    condition = str(_rng(seed, clip.stem, "condition").choice(NOISY_CONDITIONS))
    folder = "fake" if clip.label else "real"
    base = {"group": clip.group, "speaker": clip.speaker, "source": clip.source, "split": clip.split}
    own = {**base, "label": "FAKE" if clip.label else "REAL", "generator": clip.generator, "family": clip.family}
    targets: list[tuple[dict[str, str], str | None]] = [
        ({**own, "file": f"{folder}/{clip.stem}_{c}.wav", "condition": c}, None) for c in ("clean", condition)
    ]
    for name in [] if clip.label else generators:
        made = fake_condition(_rng(seed, clip.stem, name, "condition"))
        fake = {**base, "label": "FAKE", "generator": name, "family": generator_family(name), "condition": made}
        targets.append(({**fake, "file": f"fake/{fake_stem(clip, name)}_{made}.wav"}, name))
    missing = [(row, name) for row, name in targets if not (out / row["file"]).is_file()]
    if missing:
        samples, _ = decode_audio(clip.path, sample_rate=SAMPLE_RATE)
        for row, name in missing:
            _write_clip(out, row, samples if name is None else _synth_fake(name, samples, clip, seed), seed)
    return [row for row, _ in targets]


def _synth_fake(name: str, real: np.ndarray, clip: SynthClip, seed: int) -> np.ndarray:
    """`name`'s fake of a speech_synth real at 16 kHz; a TTS system says a Harvard sentence, no longer than the real."""
    rng = _rng(seed, clip.stem, name)
    if name in TTS_GENERATORS:
        text = str(rng.choice(HARVARD_SENTENCES))
        return match_loudness(TTS_GENERATORS[name][1](text, SAMPLE_RATE, rng)[: len(real)], real)
    return GENERATORS[name][1](real, SAMPLE_RATE, rng)


def fake_stem(clip: SynthClip, generator: str) -> str:
    """`<source>_<generator>_<utterance>` for a generator's fake of a speech_synth real, as the demos name theirs."""
    source, _, utterance = clip.stem.split("_", 2)
    return f"{source}_{generator.replace('_', '-')}_{utterance}"


def _write_clip(out: Path, row: dict[str, str], samples: np.ndarray, seed: int) -> None:
    """The clip through its channel condition plus the shared dither, as PCM16; renamed into place
    only when complete, so an interrupted build never leaves a half-written clip behind."""
    y = apply_condition(samples, SAMPLE_RATE, row["condition"]).astype(np.float64)
    y += _rng(seed, row["file"], "dither").standard_normal(len(y)) * 10.0 ** (DITHER_DBFS / 20.0)
    path = out / row["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    sf.write(partial, np.clip(y, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    os.replace(partial, path)


def _check(rows: list[dict[str, str]], labels_path: Path) -> None:
    """No group on both sides of the split (the trainer trusts this file's split)."""
    from fakescope.train.data import LABELS, Sample, check_no_leakage

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
