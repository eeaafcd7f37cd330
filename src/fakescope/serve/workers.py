"""What runs inside the worker processes: load the models once, then analyse one file per call.

The web process only ever pickles references to these functions; torch and the models
live in the spawned workers, so a crash or a hang in decoding or inference can be
contained by killing a worker, and the web process stays responsive.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakescope.detect import Detector
    from fakescope.serve.settings import ServeSettings

log = logging.getLogger(__name__)

_detector: Detector | None = None
_load_seconds: float = 0.0
_load_error: str | None = None


def init_worker(settings: ServeSettings, threads: int) -> None:
    """Pool initializer: build the Detector once per process. A failure is kept and reported by
    `warm_up` instead of raised, since a raising initializer only shows up as a broken pool."""
    global _detector, _load_seconds, _load_error
    start = time.perf_counter()
    try:
        import torch

        from fakescope.detect import Detector

        torch.set_num_threads(max(1, threads))
        # No in-process result cache: the service keeps its own, and force=true must really analyse again.
        _detector = Detector.from_options(replace(settings.detector_options(), cache_size=0))
        if settings.batch_window_ms > 0:
            _detector.batch_calls(max_wait_ms=settings.batch_window_ms)
    except Exception as err:
        log.exception("worker %d could not load its models", os.getpid())
        _load_error = f"{type(err).__name__}: {err}"
    _load_seconds = time.perf_counter() - start


def warm_up() -> dict[str, Any]:
    """The first call into a fresh process: how long the models took to load and what they are."""
    info: dict[str, Any] = {"pid": os.getpid(), "load_seconds": round(_load_seconds, 3), "error": _load_error}
    if _detector is not None:
        info.update(describe(_detector))
    return info


def describe(detector: Detector) -> dict[str, Any]:
    """The loaded detectors, as GET /v1/models shows them."""
    from fakescope.models.info import model_summary

    models = [(detector.model_name, detector.model)]
    models += [
        (n, m)
        for n, m in ((detector.image_model_name, detector.image_model), (detector.audio_model_name, detector.audio_model))
        if n and m is not None
    ]
    return {
        "versions": detector.model_versions(),
        "fingerprint": detector.fingerprint,
        "face_detector": detector.face_detector.name,
        "frames": detector.num_frames,
        "models": [model_summary(name, model.pretrained_cfg) for name, model in models],
    }


def run_detect_batch(items: list[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    """`run_detect` on several files at once, one thread each: their model calls share forwards
    (`Detector.batch_calls`). One answer per item: {"result": ...} or {"error": "..."}."""
    if len(items) == 1:
        return [_answer(items[0])]
    with ThreadPoolExecutor(len(items), thread_name_prefix="detect") as pool:
        return list(pool.map(_answer, items))


def _answer(item: tuple[str, str, str | None]) -> dict[str, Any]:
    try:
        return {"result": run_detect(*item)}
    except Exception as err:  # noqa: BLE001 - one file's failure must not take its batch-mates' answers with it
        return {"error": f"{type(err).__name__}: {err}"}


def run_detect(blob_path: str, display_name: str, thumb_dir: str | None = None) -> dict[str, Any]:
    """Analyse one stored file; the Result as JSON-ready dict, naming the file as the caller did.

    Never raises for bad input (`Detector.detect` answers every failure with an error Result), and
    the server's blob path never leaks into the answer. With `thumb_dir`, face thumbnails are cut
    there from the pictures the analysis decoded (failures only logged).
    """
    if _detector is None:
        raise RuntimeError(f"the models did not load: {_load_error}")
    path = Path(blob_path)
    analysis = _detector.analyse(path)
    result = analysis.result
    result.file = display_name
    if result.reason:
        result.reason = result.reason.replace(str(path), display_name).replace(path.name, display_name)
    if thumb_dir is not None and result.faces:
        from fakescope.serve.thumbnails import write_thumbnails

        try:
            write_thumbnails(result.faces, analysis.pictures, Path(thumb_dir), display_name, analysis.picture_scale)
        except Exception:
            log.exception("thumbnails for %s failed", display_name)
    return result.model_dump(mode="json")
