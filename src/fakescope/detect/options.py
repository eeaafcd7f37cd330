"""`DetectorOptions`: everything a Detector is built from, as plain names and numbers.

`fakescope detect` and `fakescope scan`, the service's settings and scan worker processes all
describe the Detector they want with one of these, and `Detector.from_options` builds it: an
engine option is added in one place and means the same everywhere. Plain values only (no
loaded models, no torch): it pickles to worker processes, and the service settings and
`fakescope --help` import it without loading the model code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fakescope.constants import DEFAULT_DETECT_EVERY, DEFAULT_FACE_DETECTOR, DEFAULT_MODEL, MAX_CROPS_PER_FORWARD

AUTO = "auto"
# What a user types to leave the image or audio model out.
NO_MODEL = "none"


@dataclass(frozen=True)
class DetectorOptions:
    """How to build a Detector: which models, how much of a file to look at, and how it runs.

    `image_model` / `audio_model`: "auto" (the shipped default when its weights ship), a
    registered name, or None to leave that detector out. `audio_weight`: the sound's share of a
    video's score (the faces get the rest). `face_every`: faces are looked for on every k-th
    sampled frame and followed in between. `batch`: face crops per model forward. `backend`:
    "auto", "onnx" or "torch"; `onnx_dir`: where the ONNX exports are (None: the shipped ones).
    `threads`: CPU threads for inference (None: all cores). `cache_size`: results of this many
    files kept by content hash (0: no cache). The defaults come from `fakescope.constants`.
    """

    model: str = DEFAULT_MODEL
    frames: int = 32
    face_detector: str = DEFAULT_FACE_DETECTOR
    image_model: str | None = AUTO
    audio_model: str | None = AUTO
    audio_weight: float = 0.5
    backend: str = AUTO
    threads: int | None = None
    batch: int = MAX_CROPS_PER_FORWARD
    face_every: int = DEFAULT_DETECT_EVERY
    cache_size: int = 100
    onnx_dir: Path | None = None
    device: str = "cpu"


DEFAULT_OPTIONS = DetectorOptions()


def model_choice(value: str) -> str | None:
    """An image or audio model as a user names it on the command line or in FAKESCOPE_*: "none" leaves it out."""
    return None if value.lower() == NO_MODEL else value
