"""`fakescope` command line: thin typer commands over the library API."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from sqlalchemy.orm import Session

    from fakescope.detect import Result

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Detect manipulated faces in images and videos, and synthetic speech in audio and videos' sound.")
console = Console()
err_console = Console(stderr=True)

# Same as fakescope.models.DEFAULT_MODEL (a test keeps them equal), spelled out so that
# `fakescope --help` does not import torch.
DEFAULT_MODEL = "faceswap-effnet-lite0.dfdc"
VERDICT_STYLE = {"authentic": "green", "suspicious": "yellow", "manipulated": "bold red"}

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="registered model name (see `fakescope models`)")]
FramesOpt = Annotated[int, typer.Option("--frames", "-n", min=1, max=512, help="frames sampled per video")]
FaceOpt = Annotated[str, typer.Option(
    "--face-detector", help="yuface (YuNet, fastest, found a face in every labelled frame), mtcnn or haar")]
BackendOpt = Annotated[str, typer.Option(
    "--backend", help="auto (ONNX Runtime wherever a model ships an export, else torch), onnx or torch")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, max=256, help="CPU threads for inference (default: all cores)")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, max=1024, help="face crops per model forward")]
FaceEveryOpt = Annotated[int, typer.Option(
    "--face-every", min=1, max=64, help="look for faces on every k-th sampled frame, track them in between")]
CacheOpt = Annotated[int, typer.Option(
    "--cache-size", min=0, help="results of this many files kept by content hash, reused for repeated files (0: off)")]
OnnxDirOpt = Annotated[Path | None, typer.Option("--onnx-dir", help="folder of ONNX exports (default: the shipped ones)")]
ImageModelOpt = Annotated[str, typer.Option(
    "--image-model", help="whole-image AI-generation detector for pictures: auto (the shipped one), a model name, or none")]
AudioModelOpt = Annotated[str, typer.Option(
    "--audio-model", help="synthetic-speech detector for audio files and videos' sound: auto (the shipped one), a name, or none")]
AudioWeightOpt = Annotated[float, typer.Option(
    "--audio-weight", min=0.0, max=1.0, help="weight of the sound in a video's score (faces get the rest)")]


def wide_console() -> Console:
    """The console, or a wide one when output goes to a file or pipe, where wide tables would be cut to 80 columns."""
    return console if console.is_terminal else Console(width=220)


def fail(message: str, code: int = 2) -> NoReturn:
    """One red line on stderr and a non-zero exit: never a traceback."""
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")] = False) -> None:
    """fakescope: tells real from manipulated faces in images and videos, and real from synthetic speech."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def optional_model(value: str) -> str | None:
    return None if value.lower() == "none" else value


def detector_options(model: str, frames: int, *, image_model: str = "auto", audio_model: str = "auto",
                     audio_weight: float = 0.5, **engine: Any) -> dict[str, Any]:
    """Keyword arguments of `Detector.from_pretrained` (also sent to scan worker processes).

    `engine`: how it runs (face_detector, backend, threads, batch_size, detect_every, cache_size, onnx_dir)."""
    from fakescope.detect.fusion import ModalityWeights

    try:
        weights = ModalityWeights(video=1.0 - audio_weight, audio=audio_weight)
    except ValueError as err:
        fail(f"--audio-weight: {err}")
    return {"name": model, "num_frames": frames, "image_model": optional_model(image_model),
            "audio_model": optional_model(audio_model), "weights": weights, **engine}


def load_detector(options: dict[str, Any]):
    from fakescope.detect import Detector
    from fakescope.errors import FakescopeError

    try:
        return Detector.from_pretrained(**options)
    except FakescopeError as err:
        fail(str(err))


def results_table(results: list[Result]) -> Table:
    table = Table(title="fakescope", title_justify="left")
    for col, justify in [("file", "left"), ("type", "left"), ("verdict", "left"), ("P(fake)", "right"),
                         ("faces", "right"), ("frames", "right"), ("time", "right")]:
        # Long file names fold; the verdict columns never shrink to an ellipsis.
        table.add_column(col, justify=justify, overflow="fold", no_wrap=col != "file", min_width=len(col))
    for r in results:
        name = Path(r.file).name
        if r.status == "ok":
            verdict = f"[{VERDICT_STYLE[r.verdict or 'suspicious']}]{r.verdict}[/]"
            score = f"{r.score:.3f}"
        else:
            verdict, score = f"[magenta]{r.status}[/]", "—"
        frames = str(r.frames_sampled) if r.media_type == "video" else "—"
        faces = "—" if r.media_type == "audio" else str(r.faces_found)
        table.add_row(name, r.media_type or "?", verdict, score, faces, frames, f"{r.processing_time:.2f}s")
    return table


def print_reason(r: Result) -> None:
    """One unwrapped line per file that was not scored normally, naming the file once."""
    name = Path(r.file).name
    line = escape(r.reason if r.reason and name in r.reason else f"{name}: {r.reason}")
    if r.status == "error":
        err_console.print(f"[red]error:[/] {line}", soft_wrap=True, markup=True, highlight=False)
    else:
        console.print(f"[dim]{line}[/]", soft_wrap=True, highlight=False)


def evidence_line(r: Result) -> str:
    """Each detector's score and weight, and why a modality was skipped."""
    parts = [f"{d.name} {d.score:.3f} (weight {d.weight:g})" for d in r.detectors]
    parts += [f"{m.modality}: skipped, {m.skipped}" for m in r.modalities if m.skipped]
    return " · ".join(parts)


@app.command()
def detect(
    files: Annotated[list[Path], typer.Argument(
        help="images (jpg/png/webp/bmp), videos (mp4/mov/avi/mkv/webm) or audio (wav/flac/mp3/ogg/opus/m4a)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the Result object(s) as JSON")] = False,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = 32,
    face_detector: FaceOpt = "yuface",
    image_model: ImageModelOpt = "auto",
    audio_model: AudioModelOpt = "auto",
    audio_weight: AudioWeightOpt = 0.5,
    backend: BackendOpt = "auto",
    threads: ThreadsOpt = None,
    batch: BatchOpt = 128,
    face_every: FaceEveryOpt = 2,
    cache_size: CacheOpt = 100,
    onnx_dir: OnnxDirOpt = None,
) -> None:
    """Score files and print a verdict per file. Exit code 1 if any file could not be read."""
    from fakescope.scan import dumps

    detector = load_detector(detector_options(
        model, frames, image_model=image_model, audio_model=audio_model, audio_weight=audio_weight, face_detector=face_detector,
        backend=backend, threads=threads, batch_size=batch, detect_every=face_every, cache_size=cache_size, onnx_dir=onnx_dir))
    results = [detector.detect(f) for f in files]
    if as_json:
        typer.echo(dumps(results))
    else:
        console.print(results_table(results))
        for r in results:
            if len(r.detectors) > 1 or len(r.modalities) > 1:
                console.print(f"[dim]{escape(Path(r.file).name)}: {escape(evidence_line(r))}[/]", soft_wrap=True, highlight=False)
            if r.reason:
                print_reason(r)
    if any(r.status == "error" for r in results):
        raise typer.Exit(1)


@app.command()
def scan(
    inputs: Annotated[list[Path], typer.Argument(help="folders (walked recursively) and/or files")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file; files already in it are skipped")],
    submission: Annotated[Path | None, typer.Option(help="also write a DFDC-style filename,label CSV")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = 32,
    face_detector: FaceOpt = "yuface",
    image_model: ImageModelOpt = "auto",
    audio_model: AudioModelOpt = "auto",
    audio_weight: AudioWeightOpt = 0.5,
    backend: BackendOpt = "auto",
    threads: ThreadsOpt = None,
    batch: BatchOpt = 128,
    face_every: FaceEveryOpt = 2,
    cache_size: CacheOpt = 100,
    onnx_dir: OnnxDirOpt = None,
) -> None:
    """Scan folders: one Result per line, resumable; one bad file never stops the scan.

    Files with the same content are analysed once (the result cache, per worker process)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fakescope.errors import FakescopeError
    from fakescope.media import collect_media_files
    from fakescope.scan import read_done, scan_files, summarize, write_submission

    try:
        files = collect_media_files(inputs)
    except FakescopeError as err:
        fail(str(err), 1)
    done = read_done(output)
    todo = [f for f in files if str(f) not in done]
    console.print(f"{len(files)} files, {len(files) - len(todo)} already in {output}, {len(todo)} to scan")
    with Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("scan", total=len(todo))
        options = detector_options(
            model, frames, image_model=image_model, audio_model=audio_model, audio_weight=audio_weight,
            face_detector=face_detector, backend=backend, threads=threads, batch_size=batch, detect_every=face_every,
            cache_size=cache_size, onnx_dir=onnx_dir)
        new = scan_files(todo, output, options=options, workers=workers, detector_factory=lambda: load_detector(options),
                         on_result=lambda r: bar.advance(task))
    wanted = {str(f) for f in files}
    everything = [r for f, r in done.items() if f in wanted] + new
    counts = summarize(everything)
    console.print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {output}")
    if submission is not None:
        n = write_submission(everything, submission)
        console.print(f"submission: {n} rows → {submission}")


def input_summary(cfg: Any) -> str:
    if cfg.input_kind == "audio":
        return f"audio {cfg.sample_rate // 1000}kHz {cfg.window_seconds:g}s"
    return f"{cfg.input_kind} {cfg.input_size[1]}x{cfg.input_size[2]}"


@app.command("models")
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="glob over model names")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List registered detectors with input size, weights sha256 and measured metrics."""
    from importlib import resources

    from fakescope.models import get_pretrained_cfg, list_models
    from fakescope.models.config import WEIGHTS_PACKAGE
    from fakescope.optimize.artifact import exports_of

    shipped = Path(str(resources.files(WEIGHTS_PACKAGE)))
    rows = []
    for name in list_models(pattern):
        cfg = get_pretrained_cfg(name)
        path = cfg.weights_path()
        evalset, val = next(iter(cfg.metrics.items()), (None, {}))
        exports = {variant: {"file": f"{name}.{variant}.onnx", "sha256": card["sha256"], "size_mb": round(card.get(
            "size_bytes", 0) / 1e6, 2), "metrics": card.get("metrics", {})} for variant, card in exports_of(name, shipped).items()}
        rows.append({
            "name": name, "input": cfg.input_kind, "input_size": list(cfg.input_size), "weights": cfg.file,
            "installed": bool(path and path.is_file()), "sha256": cfg.sha256,
            "size_mb": round(path.stat().st_size / 1e6, 2) if path and path.is_file() else None,
            "metrics": cfg.metrics, "evaluated_on": evalset, "dataset": cfg.dataset, "recipe": cfg.recipe,
            "temperature": cfg.temperature, "thresholds": cfg.thresholds, "auc": val.get("auc"), "logloss": val.get("logloss"),
            "onnx": exports,
        })
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="registered detectors (metrics measured on held-out data)", title_justify="left",
                  caption="full cards: fakescope models --json")
    for col in ["name", "input", "sha256", "size", "evaluated on", "AUC", "LogLoss", "ECE", "EER", "ONNX (AUC)"]:
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "input", "sha256", "evaluated on") else "right")
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else "—"  # noqa: E731
    for r in rows:
        val = r["metrics"].get(r["evaluated_on"], {})
        table.add_row(
            r["name"], input_summary(get_pretrained_cfg(r["name"])),
            (r["sha256"] or "—")[:12] if r["installed"] else "[red]not trained[/]",
            f"{r['size_mb']:.1f}MB" if r["size_mb"] else "—", r["evaluated_on"] or "—",
            fmt(val.get("auc")), fmt(val.get("logloss")), fmt(val.get("ece")), fmt(val.get("eer")),
            " ".join(f"{v} {fmt(e['metrics'].get(r['evaluated_on'], {}).get('auc'))}" for v, e in r["onnx"].items()) or "—",
        )
    wide_console().print(table)
    console.print("reproduce:")
    for r in rows:
        console.print(f"  {r['name']}: {r['recipe'] or '—'}", soft_wrap=True, highlight=False, markup=False)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="recipe YAML, e.g. configs/faceswap-effnet-lite0.yaml")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. optim.lr=3e-4 schedule.epochs=2")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in run_dir from its last checkpoint")] = False,
    tracker: Annotated[str | None, typer.Option(help="mlflow (default, runs/mlflow.db), clearml (offline) or none")] = None,
) -> None:
    """Train a detector from a YAML recipe; checkpoints every epoch; writes weights, sha256 and metrics."""
    from fakescope.errors import FakescopeError
    from fakescope.train.config import load_config
    from fakescope.train.trainer import run_training

    logging.getLogger().setLevel(logging.INFO)
    extra = [*(overrides or []), *([f"tracker={tracker}"] if tracker else [])]
    try:
        cfg = load_config(config, extra)
        card = run_training(cfg, resume=resume, recipe=" ".join(["fakescope train", str(config), *extra]))
    except FakescopeError as err:
        fail(str(err))
    typer.echo(json.dumps({"metrics": card["metrics"], "temperature": card["temperature"],
                           "thresholds": card["thresholds"], "run_dir": str(cfg.run_path)}, indent=2))


@app.command("train-ensemble")
def train_ensemble_cmd(
    name: Annotated[str, typer.Argument(help="registered stack, e.g. stack-faceswap.dfdc (its members come from the registry)")],
    data: Annotated[Path, typer.Option(help="the dataset the members were trained on")] = Path("../shared/data/dfdc_faces"),
    out: Annotated[Path | None, typer.Option(help="write the meta-model weights + card here (e.g. src/fakescope/weights)")] = None,
) -> None:
    """Fit a logistic-regression meta-model over several detectors' outputs (stacking)."""
    from fakescope.errors import FakescopeError
    from fakescope.train.ensemble import train_ensemble

    logging.getLogger().setLevel(logging.INFO)
    try:
        card = train_ensemble(name, data, out=out)
    except FakescopeError as err:
        fail(str(err))
    typer.echo(json.dumps({"metrics": card["metrics"], "members": card["extra"]["member_metrics"],
                           "coef": card["extra"]["coef"]}, indent=2))


@app.command("eval")
def eval_cmd(
    dataset: Annotated[Path, typer.Argument(help="DFDC video folder (metadata.json), labels.csv folder, or real/ + fake/ folders")],
    model: ModelOpt = DEFAULT_MODEL,
    split: Annotated[str, typer.Option(help="val (the model's held-out split), train, or all")] = "val",
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder: report.html, metrics.json, plots")] = Path("runs/eval"),
    submission: Annotated[Path | None, typer.Option(help="also write a DFDC submission CSV (video folders)")] = None,
    frames: FramesOpt = 32,
    face_detector: FaceOpt = "yuface",
    perturb: Annotated[list[str] | None, typer.Option(
        help="also score after a perturbation, repeatable: jpeg70, resize0.5, blur1.5 (images); mp3_32k, opus_12k, "
             "aac_32k, narrowband ... (audio)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print metrics.json")] = False,
) -> None:
    """Score a labelled dataset: LogLoss, AUC, EER, ECE, ... at frame and video level, plots, HTML report."""
    from fakescope.errors import FakescopeError
    from fakescope.evaluate.runner import evaluate_dataset

    if split not in ("val", "train", "all"):
        fail(f"--split must be val, train or all, got {split!r}")
    try:
        summary, html = evaluate_dataset(dataset, model, out_dir=out, split=split, frames=frames,
                                         face_detector=face_detector, submission=submission,
                                         perturbations=perturb or [])
    except FakescopeError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"{model} on {dataset.name} ({split})", title_justify="left")
    keys = ["n", "logloss", "auc", "eer", "accuracy", "precision", "recall", "real_recall", "ece"]
    table.add_column("level", no_wrap=True)
    for key in keys:
        table.add_column(key, justify="right")
    for level, section in summary["sections"].items():
        m = section["metrics"]
        table.add_row(level, *(str(m[k]) if k == "n" else f"{m[k]:.3f}" if m.get(k) is not None else "—" for k in keys))
    console.print(table)
    console.print(f"report: {html}", soft_wrap=True, highlight=False)


BENCH_KINDS = ("video", "image", "audio", "cache", "backends", "all")


@app.command()
def bench(
    kind: Annotated[str, typer.Argument(
        help="video, image, audio, cache (repeated files), backends (crops/s per inference backend, val AUC) or all")] = "all",
    files: Annotated[list[Path] | None, typer.Argument(
        help="files (default: the bundled clips, a frame of each as images; for audio, 4 s / 30 s / 2 min speech)")] = None,
    frames: FramesOpt = 32,
    seconds: Annotated[float | None, typer.Option(
        min=0.5, help="video: time the first SECONDS of each clip (packets copied, no sound), e.g. 10")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="runs per file; the median is reported")] = 3,
    backend: BackendOpt = "auto",
    threads: ThreadsOpt = None,
    quick: Annotated[bool, typer.Option("--quick", help="smoke mode: one run per file, backends on a few crops")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure in one run: per-stage time, processing time ÷ media duration, peak memory, cache hits, and per inference
    backend crops/s at batch 1/8/32, size on disk and val AUC (so that speed never hides an accuracy loss)."""
    from fakescope import bench as b
    from fakescope.errors import FakescopeError

    if kind not in BENCH_KINDS:
        fail(f"unknown benchmark {kind!r} (available: {', '.join(BENCH_KINDS)})")
    repeat = 1 if quick else repeat
    wanted = {"video", "image", "audio", "cache", "backends"} if kind == "all" else {kind}
    engine = {"backend": backend, "threads": threads}
    report: dict[str, Any] = {}
    try:
        clips = (files if kind == "video" else None) or b.default_clips()
        if "video" in wanted:
            report["video"] = b.bench_video(clips, num_frames=frames, repeat=repeat, seconds=seconds, **engine)
        if "image" in wanted:
            report["image"] = b.bench_image(files if kind == "image" else None, repeat=repeat, **engine)
        if "audio" in wanted:
            report["audio"] = b.bench_audio(files if kind == "audio" else None, repeat=repeat, threads=threads)
        if "cache" in wanted:
            report["cache"] = b.bench_cache((files if kind == "cache" else None) or clips[:1], repeat=5 if quick else 20, **engine)
        if "backends" in wanted:
            from fakescope.optimize.bench import QUICK, bench_backends
            from fakescope.optimize.runtime import default_threads

            report["backends"] = bench_backends(out_dir="runs/onnx-quick" if quick else "runs/onnx", reuse=True,
                                                threads=threads or default_threads(), **(QUICK if quick else {}))
    except FakescopeError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    print_bench_report(report, threads)


def print_bench_report(report: dict[str, Any], threads: int | None) -> None:
    from fakescope import bench as b
    from fakescope.optimize.runtime import default_threads

    out = wide_console()
    tables = {"video": lambda rows: b.bench_table(rows, b.VIDEO_STAGES),
              "image": lambda rows: b.bench_table(rows, b.IMAGE_STAGES, unit="faces"),
              "audio": lambda rows: b.bench_table(rows, b.AUDIO_STAGES, unit="windows"),
              "cache": b.cache_table}
    for section, rows in report.items():
        if section == "backends":
            from fakescope.optimize.bench import backends_table

            out.print(backends_table(rows, threads=threads or default_threads()))
        else:
            out.print(f"[bold]{section}[/]")
            out.print(tables[section](rows))


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="registered model name (see `fakescope models`)")],
    fmt: Annotated[str, typer.Option("--format", help="export format: onnx")] = "onnx",
    quantize: Annotated[str | None, typer.Option(
        help="int8-static (calibrated on real crops, the fastest), int8-dynamic or fp16; fp32 if not given")] = None,
    prune: Annotated[float | None, typer.Option(min=0.01, max=0.95, help="share of weights zeroed before export")] = None,
    prune_method: Annotated[str, typer.Option(help="l1 (unstructured magnitude) or channels (structured, L2 norm)")] = "l1",
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for <model>.<variant>.onnx and its .json card")] = Path(
        "runs/onnx"),
    calib_crops: Annotated[int, typer.Option(min=1, help="crops of the calibration split for int8-static")] = 300,
    data: Annotated[Path | None, typer.Option(help="labelled data folder (default: the one the model was trained on)")] = None,
    evaluate: Annotated[bool, typer.Option(help="score the export on the model's val split into its card")] = True,
) -> None:
    """Export a model for ONNX Runtime (`--backend onnx`), with a card: input contract, calibration, sha256, val metrics."""
    from fakescope.errors import FakescopeError
    from fakescope.optimize import export_model

    try:
        exported = export_model(model, out, fmt, quantize=quantize, prune=prune, prune_method=prune_method,
                                calib_crops=calib_crops, data=data, evaluate=evaluate)
    except FakescopeError as err:
        fail(str(err))
    size = exported.onnx.stat().st_size / 1e6
    console.print(f"{escape(str(exported.onnx))} ({exported.variant}, {size:.1f} MB) · card {escape(str(exported.metadata))}",
                  soft_wrap=True, highlight=False)
    for split, m in exported.metrics.items():
        console.print(f"{split}: AUC {m['auc']:.4f} · LogLoss {m['logloss']:.4f} · n {m['n']}", highlight=False)
    console.print(f"use it: fakescope detect FILE --backend onnx --onnx-dir {escape(str(out))}", soft_wrap=True, highlight=False)


def serve_settings(**given: Any) -> Any:
    """ServeSettings from the options a user gave (None: not given, so FAKESCOPE_* or the default applies)."""
    from pydantic import ValidationError

    from fakescope.serve.settings import ServeSettings

    try:
        return ServeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        fail(f"bad setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def migrate_service_db(url: str) -> None:
    """Open the service's database and bring its schema up to date, or fail with one line (password hidden)."""
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from fakescope.serve.db import upgrade_database

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        fail(f"not a database URL: {url}")
    try:
        upgrade_database(url)
    except (SQLAlchemyError, CommandError, ValueError, OSError) as err:
        fail(f"cannot open database {shown}: {(str(err).strip().splitlines() or [type(err).__name__])[0]}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port (default 8000)")] = None,
    db: Annotated[str | None, typer.Option("--db", help="database URL, e.g. postgresql+psycopg://user@host/db "
                                                        "(default: SQLite in the data dir)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="uploads, thumbnails, SQLite file (default fakescope-data)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="worker processes for jobs (default 1)")] = None,
    detect_workers: Annotated[int | None, typer.Option(
        "--detect-workers", min=1, max=64, help="worker processes for POST /v1/detect (default 1)")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="no API key needed: for use on your own machine only")] = False,
    allowed_root: Annotated[list[Path] | None, typer.Option(
        "--allowed-root", help="server folder jobs may name by path, repeatable (default: none, path jobs refused)")] = None,
    url_host: Annotated[list[str] | None, typer.Option(
        "--url-host", help="host jobs may name by URL, repeatable (default: none, URL jobs refused)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="registered face model (see `fakescope models`)")] = None,
    frames: Annotated[int | None, typer.Option("--frames", "-n", min=1, max=512, help="frames sampled per video (default 32)")] = None,
) -> None:
    """Run the HTTP service: REST API (/v1, docs at /docs), web page (/), /metrics, /healthz and /readyz.

    Unset options fall back to FAKESCOPE_* environment variables (e.g. FAKESCOPE_DB_URL), then to the defaults."""
    import uvicorn

    from fakescope.errors import FakescopeError
    from fakescope.models import get_pretrained_cfg
    from fakescope.serve import create_app

    settings = serve_settings(host=host, port=port, db_url=db, data_dir=data_dir, workers=workers,
                              detect_workers=detect_workers, no_auth=no_auth or None, allowed_roots=allowed_root or None,
                              url_hosts=url_host or None, model=model, frames=frames)
    try:
        get_pretrained_cfg(settings.model)
    except FakescopeError as err:
        fail(str(err))
    migrate_service_db(settings.resolved_db_url())  # here, so a bad database is one line, not a server traceback
    try:
        application = create_app(settings)
    except (FakescopeError, OSError) as err:
        fail(str(err))
    auth = "[yellow]no API key needed[/]" if settings.no_auth else "API keys required (`fakescope keys create NAME`)"
    console.print(f"fakescope serving on http://{settings.host}:{settings.port} · data {escape(str(settings.data_dir))} · {auth}",
                  soft_wrap=True, highlight=False)
    uvicorn.run(application, host=settings.host, port=settings.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=30)


keys_app = typer.Typer(no_args_is_help=True, help="Manage the service's API keys (stored hashed: a token is shown only once).")
app.add_typer(keys_app, name="keys")

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="database URL, as `fakescope serve --db` (default: SQLite in the data dir)")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="the service's data folder (default fakescope-data)")]


@contextmanager
def keys_session(db: str | None, data_dir: Path | None) -> Iterator[Session]:
    """A session on the service's database, found and migrated exactly as `fakescope serve` does."""
    from fakescope.serve.db import make_engine, session_factory

    url = serve_settings(db_url=db, data_dir=data_dir).resolved_db_url()
    migrate_service_db(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def utc_minute(value: datetime | None, empty: str = "—") -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else empty


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="who or what the key is for, e.g. ci-pipeline")],
                db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create a key and print its token (on stdout, alone, so scripts can capture it)."""
    from fakescope.errors import FakescopeError
    from fakescope.serve.auth import create_key

    with keys_session(db, data_dir) as session:
        try:
            key, token = create_key(session, name)
        except FakescopeError as err:
            fail(str(err))
    err_console.print(f"created API key {key.id} ({escape(key.name)}). Copy the token now: it will not be shown again.",
                      soft_wrap=True, highlight=False)
    typer.echo(token)


@keys_app.command("list")
def keys_list(db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List keys: id, token prefix, name, created, last used, revoked (times in UTC)."""
    from fakescope.serve.auth import list_keys

    with keys_session(db, data_dir) as session:
        keys = list_keys(session)
    if not keys:
        console.print("no API keys (create one with `fakescope keys create NAME`)", highlight=False, markup=False)
        return
    table = Table(title="API keys (UTC; `keys revoke` takes the id shown or the prefix)", title_justify="left")
    for col in ["id", "prefix", "name", "created", "last used", "revoked"]:
        # Ids and prefixes are copied from here: they never wrap; names fold, dates wrap at their space.
        table.add_column(col, no_wrap=col in ("id", "prefix"), overflow="fold", min_width=len(col))
    for key in keys:
        revoked = f"[red]{utc_minute(key.revoked_at)}[/]" if key.revoked_at else "—"
        table.add_row(key.id[:12], key.prefix, escape(key.name), utc_minute(key.created_at), utc_minute(key.last_used_at, "never"), revoked)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id_or_prefix: Annotated[str, typer.Argument(help="the key's id (or its first 6+ characters) or its token prefix")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a key: requests with its token get 401 from then on."""
    from fakescope.errors import FakescopeError
    from fakescope.serve.auth import find_key, revoke_key

    with keys_session(db, data_dir) as session:
        try:
            already = find_key(session, key_id_or_prefix).revoked_at
            key = revoke_key(session, key_id_or_prefix)
        except FakescopeError as err:
            fail(str(err), 1)
    state = f"was already revoked on {utc_minute(already)}" if already else "revoked"
    console.print(f"API key {key.id} ({escape(key.name)}) {state}", soft_wrap=True, highlight=False)
