"""Batch scans: many files → one Result per line (JSONL), resumable, optional DFDC submission CSV."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain
from pathlib import Path

from fakescope.detect import Detector, DetectorOptions, Result
from fakescope.media.files import Unreadable
from fakescope.orphans import exit_with_parent


def read_done(output: Path) -> dict[str, Result]:
    """Results already in `output`, by file path; a torn last line (crash mid-write) is ignored."""
    done: dict[str, Result] = {}
    if not output.is_file():
        return done
    with output.open() as fh:
        for line in fh:
            try:
                result = Result.model_validate_json(line)
            except ValueError:
                continue
            done[result.file] = result
    return done


def close_torn_line(output: Path) -> None:
    """End a line torn by a crash so the next Result starts on its own line."""
    if not output.is_file() or output.stat().st_size == 0:
        return
    with output.open("rb+") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


_worker_detector: Detector | None = None


def _init_worker(options: DetectorOptions, threads: int) -> None:
    """Pool initializer: the worker ends with the scan (even a killed one), then loads its models."""
    exit_with_parent()
    import torch

    global _worker_detector
    torch.set_num_threads(threads)
    _worker_detector = Detector.from_options(options)


def _work(path: str) -> str:
    assert _worker_detector is not None
    return _worker_detector.detect(Path(path)).model_dump_json()


def unreadable_results(entries: Iterable[Unreadable]) -> list[Result]:
    """Error Results for what the folder walk could not read (folders, broken links, link loops),
    so that they are in the scan's output, with their reason, like any file that failed."""
    return [Result(file=str(u.path), status="error", reason=u.reason) for u in entries]


def scan_files(
    todo: Sequence[Path],
    output: Path,
    *,
    detector_factory: Callable[[], Detector],
    options: DetectorOptions,
    workers: int = 1,
    on_result: Callable[[Result], None] = lambda r: None,
    failed: Sequence[Result] = (),
) -> list[Result]:
    """Score `todo`, appending each Result to `output` as soon as it is ready (callers skip
    files already there with `read_done`, which is what makes a scan resumable). `failed`:
    Results known before any analysis (`unreadable_results`), written first.

    One worker uses `detector_factory()`; several each build `Detector.from_options(options)`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    new: list[Result] = []
    close_torn_line(output)
    with output.open("a") as fh:
        for result in chain(failed, _results(todo, detector_factory, options, workers)):
            fh.write(result.model_dump_json() + "\n")
            fh.flush()
            new.append(result)
            on_result(result)
    return new


def _results(
    todo: Sequence[Path], detector_factory: Callable[[], Detector], options: DetectorOptions, workers: int
) -> Iterable[Result]:
    if not todo:
        return
    if workers <= 1:
        detector = detector_factory()
        for path in todo:
            yield detector.detect(path)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(options, threads)) as pool:
        for line in pool.map(_work, [str(p) for p in todo]):
            yield Result.model_validate_json(line)


def summarize(results: Iterable[Result]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        key = r.verdict if r.status == "ok" and r.verdict else r.status
        counts[key] = counts.get(key, 0) + 1
    return counts


def dumps(results: Sequence[Result]) -> str:
    """One Result → its JSON object; several → a JSON array."""
    payload = [json.loads(r.model_dump_json()) for r in results]
    return json.dumps(payload[0] if len(payload) == 1 else payload, indent=2)
