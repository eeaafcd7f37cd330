"""Command-line options shared by several commands, each declared once; their defaults are DEFAULT_OPTIONS'.

The engine options of `detect` and `scan` are named as DetectorOptions' fields, so that
`detector_options(ctx.params)` turns a command's options into the Detector it asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from fakescope.detect.options import DetectorOptions, model_choice

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="registered model name (see `fakescope models`)")]
FramesOpt = Annotated[int, typer.Option("--frames", "-n", min=1, max=512, help="frames sampled per video")]
FaceOpt = Annotated[
    str, typer.Option("--face-detector", help="yuface (YuNet, fastest, found a face in every labelled frame), mtcnn or haar")
]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="auto (ONNX Runtime wherever a model ships an export, else torch), onnx or torch")
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, max=256, help="CPU threads for inference (default: all cores)")
]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, max=1024, help="face crops per model forward")]
FaceEveryOpt = Annotated[
    int, typer.Option("--face-every", min=1, max=64, help="look for faces on every k-th sampled frame, track them in between")
]
CacheOpt = Annotated[
    int,
    typer.Option(
        "--cache-size", min=0, help="results of this many files kept by content hash, reused for repeated files (0: off)"
    ),
]
OnnxDirOpt = Annotated[Path | None, typer.Option("--onnx-dir", help="folder of ONNX exports (default: the shipped ones)")]
ImageModelOpt = Annotated[
    str,
    typer.Option(
        "--image-model", help="whole-image AI-generation detector for pictures: auto (the shipped one), a model name, or none"
    ),
]
AudioModelOpt = Annotated[
    str,
    typer.Option(
        "--audio-model",
        help="synthetic-speech detector for audio files and videos' sound: auto (the shipped one), a name, or none",
    ),
]
AudioWeightOpt = Annotated[
    float, typer.Option("--audio-weight", min=0.0, max=1.0, help="weight of the sound in a video's score (faces get the rest)")
]


def detector_options(params: Mapping[str, Any]) -> DetectorOptions:
    """The DetectorOptions a command's parameters describe: those named as a field, "none" models left out."""
    given = {f.name: params[f.name] for f in fields(DetectorOptions) if f.name in params}
    for name in ("image_model", "audio_model"):
        if name in given:
            given[name] = model_choice(given[name])
    return DetectorOptions(**given)
