"""Readers of the shared speech data sets: spoken digits (real only) and speech_synth (published
reals next to vocoder, TTS, codec and voice-conversion fakes of the same utterances).

They turn a data folder into labelled items with the groups and the train/val split the audio
corpus (`train.speech.corpus`) builds on. Whole speakers of the digits are held out for val;
speech_synth clips are grouped by utterance, so a real and its fakes never straddle the split.
All randomness derives from the seed and the item's name (`seeded_rng`), so the order items
are read or processed in changes nothing.
"""

from __future__ import annotations

import csv
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fakescope.data.splits import stratified_split_groups
from fakescope.errors import FakescopeError

REAL_GENERATOR, REAL_FAMILY = "ground truth", "real"
DIGIT_SOURCE = "fsdd"
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WORDS_PER_UTTERANCE = 4
RECORDINGS_PER_GROUP = 20

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
    raise FakescopeError(f"{where}: unknown generator {generator!r}; add it to data.speech_sources.SYNTH_FAMILIES")


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
    held = {speakers[i] for i in seeded_rng(seed, DIGIT_SOURCE, "val").permutation(len(speakers))[:val_speakers]}
    per_speaker = []
    for speaker in speakers:
        files = sorted(by_speaker[speaker])
        order = seeded_rng(seed, "fsdd", speaker, "order").permutation(len(files))
        shuffled = [files[i] for i in order]
        split = "val" if speaker in held else "train"
        per_speaker.append(
            [
                utterance
                for b, start in enumerate(range(0, len(shuffled), RECORDINGS_PER_GROUP))
                for utterance in _group_utterances(
                    root,
                    shuffled[start : start + RECORDINGS_PER_GROUP],
                    group=f"{DIGIT_SOURCE}_{speaker}_{b:02d}",
                    speaker=speaker,
                    split=split,
                    passes=passes if split == "train" else 1,
                    seed=seed,
                )
            ]
        )
    interleaved = [u for round_ in _round_robin(per_speaker) for u in round_]
    return interleaved[:limit] if limit is not None else interleaved


def _group_utterances(
    root: Path, block: list[tuple[str, str]], *, group: str, speaker: str, split: str, passes: int, seed: int
) -> list[DigitUtterance]:
    """A group's (file, word) recordings joined four at a time, once per pass: pass 0 in the given
    order, later passes in a seeded shuffle of the same recordings."""
    utterances = []
    for p in range(passes):
        ordered = block if p == 0 else [block[i] for i in seeded_rng(seed, group, str(p)).permutation(len(block))]
        for n, start in enumerate(range(0, len(ordered), WORDS_PER_UTTERANCE)):
            chunk = ordered[start : start + WORDS_PER_UTTERANCE]
            utterances.append(
                DigitUtterance(
                    key=f"{group}{n}" + (f"p{p}" if p else ""),
                    group=group,
                    speaker=speaker,
                    files=tuple(root / f for f, _ in chunk),
                    words=tuple(w for _, w in chunk),
                    split=split,
                )
            )
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
    for i in seeded_rng(seed, "synth", "limit").permutation(len(names)):
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


def seeded_rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator fixed by the seed and a name, independent of the order items are processed in."""
    return np.random.default_rng([seed, *(zlib.crc32(p.encode("utf-8")) for p in parts)])
