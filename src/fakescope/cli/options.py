"""Command-line options shared by several commands, each declared once; their defaults are DEFAULT_OPTIONS'.

The engine options (`ENGINE_OPTIONS`) are named as DetectorOptions' fields: `with_engine_options`
adds all of them to a command and hands it the DetectorOptions they describe, so `detect` and
`scan` offer the same options, spelled and documented once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from fakescope.detect.options import AUTO, DEFAULT_OPTIONS, DetectorOptions, model_choice

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


# Every engine option a Detector-building command offers, in --help order: (parameter, option, default).
ENGINE_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("model", ModelOpt, DEFAULT_OPTIONS.model),
    ("frames", FramesOpt, DEFAULT_OPTIONS.frames),
    ("face_detector", FaceOpt, DEFAULT_OPTIONS.face_detector),
    ("image_model", ImageModelOpt, AUTO),
    ("audio_model", AudioModelOpt, AUTO),
    ("audio_weight", AudioWeightOpt, DEFAULT_OPTIONS.audio_weight),
    ("backend", BackendOpt, DEFAULT_OPTIONS.backend),
    ("threads", ThreadsOpt, DEFAULT_OPTIONS.threads),
    ("batch", BatchOpt, DEFAULT_OPTIONS.batch),
    ("face_every", FaceEveryOpt, DEFAULT_OPTIONS.face_every),
    ("cache_size", CacheOpt, DEFAULT_OPTIONS.cache_size),
    ("onnx_dir", OnnxDirOpt, DEFAULT_OPTIONS.onnx_dir),
)


def with_engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Offer every engine option after `command`'s own and call it with `options=` the DetectorOptions they describe.

    typer builds a command's options from its signature, so the wrapper's signature is the command's
    own parameters (less `options`) followed by ENGINE_OPTIONS.
    """
    own = [p for name, p in inspect.signature(command, eval_str=True).parameters.items() if name != "options"]
    engine = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=option)
        for name, option, default in ENGINE_OPTIONS
    ]

    @functools.wraps(command)
    def run(**params: Any) -> Any:
        chosen = {name: params.pop(name) for name, _, _ in ENGINE_OPTIONS}
        return command(**params, options=detector_options(chosen))

    run.__signature__ = inspect.Signature([*own, *engine])  # type: ignore[attr-defined]
    return run
