"""What one corpus item becomes: its real clips and its fakes, each through a channel condition,
written as 16 kHz PCM16 WAVs with their labels.csv rows.

A digit utterance (8 kHz) is written clean and under two channel conditions, and faked by every
generator at 8 kHz; a speech_synth clip is written clean and under one condition, and a real one
is also faked by every generator (a TTS system says a Harvard sentence, its words being unknown).

Nothing that differs by class may survive as a shortcut: everything is resampled to 16 kHz,
the same channel conditions (codecs, narrowband) are drawn for both classes, and every clip
gets the same faint dither so that digital silence says nothing. All randomness derives from
the seed and the item's name (`seeded_rng`), so worker count and order do not change a byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from fakescope.constants import SAMPLE_RATE
from fakescope.data.speech_sources import (
    DIGIT_SOURCE,
    REAL_FAMILY,
    REAL_GENERATOR,
    DigitUtterance,
    SynthClip,
    seeded_rng,
)
from fakescope.media.audio import decode_audio, resample
from fakescope.media.channels import CONDITIONS, apply_condition
from fakescope.train.speech.catalogue import generator_family
from fakescope.train.speech.fakes import GENERATORS, match_loudness
from fakescope.train.speech.sentences import HARVARD_SENTENCES
from fakescope.train.speech.tts import TTS_GENERATORS

DIGIT_RATE = 8_000
GAP_SECONDS = (0.08, 0.20)
DITHER_DBFS = -72.0
NOISY_CONDITIONS = tuple(c for c in CONDITIONS if c != "clean")


@dataclass(frozen=True)
class CorpusJob:
    """One work item for a worker: everything needed to write its clips and return their rows."""

    item: DigitUtterance | SynthClip
    out: Path
    seed: int
    generators: tuple[str, ...]


def write_item(job: CorpusJob) -> list[dict[str, str]]:
    """Write the job's clips that are not on disk yet; returns the rows of all of them (a worker's task)."""
    if isinstance(job.item, DigitUtterance):
        return _digit_clips(job.item, job.out, job.seed, job.generators)
    return _synth_clips(job.item, job.out, job.seed, job.generators)


def _digit_clips(utt: DigitUtterance, out: Path, seed: int, generators: tuple[str, ...]) -> list[dict[str, str]]:
    """One real utterance written clean and under two channel conditions, and one fake per generator
    (made at 8 kHz like the digits, then resampled), each under a random condition."""
    plan = seeded_rng(seed, utt.key, "plan")
    gaps = plan.uniform(*GAP_SECONDS, size=max(0, len(utt.files) - 1))
    real_conditions = ["clean", *plan.choice(NOISY_CONDITIONS, size=2, replace=False).tolist()]
    base = {"group": utt.group, "speaker": utt.speaker, "source": DIGIT_SOURCE, "split": utt.split}
    real = {**base, "label": "REAL", "generator": REAL_GENERATOR, "family": REAL_FAMILY}
    targets: list[tuple[dict[str, str], str | None]] = [
        ({**real, "file": f"real/{utt.key}_{c}.wav", "condition": c}, None) for c in real_conditions
    ]
    for name in generators:
        condition = fake_condition(seeded_rng(seed, utt.key, name, "condition"))
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
    rng = seeded_rng(seed, utt.key, name)
    if name in TTS_GENERATORS:
        return match_loudness(TTS_GENERATORS[name][1](" ".join(utt.words), DIGIT_RATE, rng), real)
    return GENERATORS[name][1](real, DIGIT_RATE, rng)


def _synth_clips(clip: SynthClip, out: Path, seed: int, generators: tuple[str, ...]) -> list[dict[str, str]]:
    """A speech_synth clip at 16 kHz, written clean and under one random channel condition; a real one
    is also faked by each generator (at 16 kHz, under a random condition)."""
    condition = str(seeded_rng(seed, clip.stem, "condition").choice(NOISY_CONDITIONS))
    folder = "fake" if clip.label else "real"
    base = {"group": clip.group, "speaker": clip.speaker, "source": clip.source, "split": clip.split}
    own = {**base, "label": "FAKE" if clip.label else "REAL", "generator": clip.generator, "family": clip.family}
    targets: list[tuple[dict[str, str], str | None]] = [
        ({**own, "file": f"{folder}/{clip.stem}_{c}.wav", "condition": c}, None) for c in ("clean", condition)
    ]
    for name in [] if clip.label else generators:
        made = fake_condition(seeded_rng(seed, clip.stem, name, "condition"))
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
    rng = seeded_rng(seed, clip.stem, name)
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
    y += seeded_rng(seed, row["file"], "dither").standard_normal(len(y)) * 10.0 ** (DITHER_DBFS / 20.0)
    path = out / row["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    sf.write(partial, np.clip(y, -1.0, 1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    os.replace(partial, path)
