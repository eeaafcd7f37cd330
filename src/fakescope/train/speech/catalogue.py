"""What the speech corpus is made of: its generators, their families, the labels.csv columns and
the version that says when an old build must be thrown away.

A generator is either a resynthesis of a real recording (`fakes.GENERATORS`) or a text-to-speech
system (`tts.TTS_GENERATORS`); each belongs to a family, and families, not generators, are what
a detector should generalise across. The families of the published fakes in speech_synth are
the data set's own labels (`fakescope.data.speech_sources.SYNTH_FAMILIES`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fakescope.errors import FakescopeError
from fakescope.train.speech.fakes import GENERATORS
from fakescope.train.speech.tts import TTS_GENERATORS, tts_version

log = logging.getLogger(__name__)

CORPUS_VERSION = 7  # bump when a change to the corpus build alters what gets written
COLUMNS = ("file", "label", "group", "speaker", "source", "generator", "family", "condition", "split")
# `hifigan` (GENERATORS) is left out: trained beside the others it made the detector worse on the
# generators it had seen (docs/TRAINING.md, "The published vocoder"); add it with data.speech_corpus.generators.
DEFAULT_GENERATORS = (
    "griffin_lim",
    "phase_vocoder",
    "lpc",
    "world",
    "upsampling_vocoder",
    "istft_vocoder",
    "espeak",
    "flite",
    "kokoro",
)


def generator_family(name: str) -> str:
    """The family of a resynthesis or TTS generator."""
    return (GENERATORS.get(name) or TTS_GENERATORS[name])[0]


def resolve_generators(generators: Sequence[str]) -> tuple[str, ...]:
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
