"""The platform's commands: `train`, `train-ensemble`, `eval`, `bench` and `export`, each a call into its package."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fakescope.cli.console import console, fail, wide_console
from fakescope.cli.options import AudioModelOpt, BackendOpt, FaceOpt, FramesOpt, ModelOpt, ThreadsOpt
from fakescope.detect.options import AUTO, DEFAULT_OPTIONS, NO_MODEL
from fakescope.errors import FakescopeError

commands = typer.Typer()


@commands.command()
def train(
    config: Annotated[Path, typer.Argument(help="recipe YAML, e.g. configs/faceswap-effnet-lite0.yaml")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value overrides, e.g. optim.lr=3e-4 schedule.epochs=2")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in run_dir from its last checkpoint")] = False,
    tracker: Annotated[str | None, typer.Option(help="mlflow (default, runs/mlflow.db), clearml (offline) or none")] = None,
) -> None:
    """Train a detector from a YAML recipe; checkpoints every epoch; writes weights, sha256 and metrics."""
    from fakescope.train.config import load_config
    from fakescope.train.trainer import run_training

    logging.getLogger().setLevel(logging.INFO)
    extra = [*(overrides or []), *([f"tracker={tracker}"] if tracker else [])]
    try:
        cfg = load_config(config, extra)
        card = run_training(cfg, resume=resume, recipe=" ".join(["fakescope train", str(config), *extra]))
    except FakescopeError as err:
        fail(str(err))
    typer.echo(
        json.dumps(
            {
                "metrics": card["metrics"],
                "temperature": card["temperature"],
                "thresholds": card["thresholds"],
                "run_dir": str(cfg.run_path),
            },
            indent=2,
        )
    )


@commands.command("fit-fusion")
def fit_fusion_cmd(
    config: Annotated[Path, typer.Argument(help="fusion YAML: configs/fusion/picture.yaml or configs/fusion/video.yaml")],
    out: Annotated[Path | None, typer.Option(help="weights folder to write the fit into (src/fakescope/weights)")] = None,
) -> None:
    """Fit a picture's face + AI-picture fusion, or a face model's video-level calibration; prints its out-of-fold metrics."""
    from fakescope.train import picture_fusion, video_calibration
    from fakescope.train.config import read_yaml_mapping

    logging.getLogger().setLevel(logging.INFO)
    recipe = f"fakescope fit-fusion {config}"
    try:
        if read_yaml_mapping(config, "fusion config").get("kind") == "video":
            cfg = video_calibration.load_video_calibration_config(config)
            entry = video_calibration.fit_video_calibration(cfg, out=out, recipe=recipe)
        else:
            entry = picture_fusion.fit_picture_fusion(picture_fusion.load_fusion_config(config), out=out, recipe=recipe)
    except FakescopeError as err:
        fail(str(err))
    typer.echo(json.dumps(entry, indent=2))


@commands.command("train-ensemble")
def train_ensemble_cmd(
    name: Annotated[str, typer.Argument(help="registered stack, e.g. stack-faceswap.dfdc (its members come from the registry)")],
    data: Annotated[Path, typer.Option(help="the dataset the members were trained on")] = Path("../shared/data/dfdc_faces"),
    out: Annotated[
        Path | None, typer.Option(help="write the meta-model weights + card here (e.g. src/fakescope/weights)")
    ] = None,
) -> None:
    """Fit a logistic-regression meta-model over several detectors' outputs (stacking)."""
    from fakescope.train.ensemble import train_ensemble

    logging.getLogger().setLevel(logging.INFO)
    try:
        card = train_ensemble(name, data, out=out)
    except FakescopeError as err:
        fail(str(err))
    typer.echo(
        json.dumps(
            {"metrics": card["metrics"], "members": card["extra"]["member_metrics"], "coef": card["extra"]["coef"]}, indent=2
        )
    )


@commands.command("eval")
def eval_cmd(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="DFDC video folder (metadata.json), labels.csv folder, or real/ + fake/ folders"),
    ] = None,
    model: ModelOpt = DEFAULT_OPTIONS.model,
    split: Annotated[str, typer.Option(help="val (the model's held-out split), train, or all")] = "val",
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder: report.html, metrics.json, plots")] = Path("runs/eval"),
    submission: Annotated[Path | None, typer.Option(help="also write a DFDC submission CSV (video folders)")] = None,
    frames: FramesOpt = DEFAULT_OPTIONS.frames,
    face_detector: FaceOpt = DEFAULT_OPTIONS.face_detector,
    perturb: Annotated[
        list[str] | None,
        typer.Option(
            help="also score after a perturbation, repeatable: jpeg70, resize0.5, blur1.5 (images); mp3_32k, opus_12k, "
            "aac_32k, narrowband ... (audio)"
        ),
    ] = None,
    crops: Annotated[
        bool,
        typer.Option(
            "--crops",
            help="image folders: feed each file straight into the model at its input size (model input only) instead "
            "of the detect path (face detection, crop geometry, fusion)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print metrics.json")] = False,
    protocol: Annotated[
        Path | None,
        typer.Option(
            help="instead of DATASET: a cross-dataset protocol (configs/protocols/*.yaml): train on one source, test on "
            "another, one table (OUT/protocol.json, OUT/protocol.md)"
        ),
    ] = None,
) -> None:
    """Score a labelled dataset as `fakescope detect` scores it: LogLoss, AUC, EER, ECE, ..., plots, HTML report; or,
    with --protocol, fit a probe head (CLIP or Whisper) per row of a cross-dataset protocol and print its table."""
    from fakescope.evaluate.runner import evaluate_dataset

    if (dataset is None) == (protocol is None):
        fail("give either a DATASET folder or --protocol PATH" + (", not both" if dataset else ""))
    if protocol is not None:
        _eval_protocol(protocol, out, as_json=as_json)
        return
    assert dataset is not None
    if split not in ("val", "train", "all"):
        fail(f"--split must be val, train or all, got {split!r}")
    try:
        summary, html = evaluate_dataset(
            dataset,
            model,
            out_dir=out,
            split=split,
            frames=frames,
            face_detector=face_detector,
            submission=submission,
            perturbations=perturb or [],
            crops=crops,
        )
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


def _eval_protocol(path: Path, out: Path, *, as_json: bool) -> None:
    """`eval --protocol`: fit and score every row, print the table, point at the files written."""
    from fakescope.train.protocol import COLUMNS, cell, load_protocol, run_protocol, test_cell

    logging.getLogger().setLevel(logging.INFO)
    try:
        report = run_protocol(load_protocol(path), out)
    except FakescopeError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title=f"{report['protocol']}: {report['model']} ({report['recipe']})", title_justify="left")
    for heading in ("row", "train", "test"):
        table.add_column(heading)
    for _, heading in COLUMNS:
        table.add_column(heading, justify="right")
    for row in report["rows"]:
        table.add_row(escape(row["name"]), escape(row["train"]), escape(test_cell(row)), *(cell(row, key) for key, _ in COLUMNS))
    wide_console().print(table)
    console.print(f"table: {out / 'protocol.md'}, {out / 'protocol.json'}", soft_wrap=True, highlight=False)


BENCH_KINDS = ("video", "image", "audio", "cache", "memory", "backends", "all")


@commands.command()
def bench(
    kind: Annotated[
        str,
        typer.Argument(
            help="video, image, audio, cache (repeated files), memory (peak memory per file kind, an 8K video among "
            "them), backends (crops/s per inference backend, val AUC) or all"
        ),
    ] = "all",
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="files (default: the bundled clips, a frame of each as images; for audio, 4 s / 30 s / 2 min speech)"
        ),
    ] = None,
    frames: FramesOpt = DEFAULT_OPTIONS.frames,
    seconds: Annotated[
        float | None, typer.Option(min=0.5, help="video: time the first SECONDS of each clip (packets copied, no sound), e.g. 10")
    ] = None,
    repeat: Annotated[int, typer.Option(min=1, help="runs per file; the median is reported")] = 3,
    model: ModelOpt = DEFAULT_OPTIONS.model,
    backend: BackendOpt = DEFAULT_OPTIONS.backend,
    threads: ThreadsOpt = DEFAULT_OPTIONS.threads,
    audio_model: AudioModelOpt = AUTO,
    quick: Annotated[bool, typer.Option("--quick", help="smoke mode: one run per file, backends on a few crops")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure in one run: per-stage time, processing time ÷ media duration, peak memory (per file kind, an 8K video
    included), cache hits, and per inference backend crops/s at batch 1/8/32, size on disk and val AUC (so that speed
    never hides an accuracy loss)."""
    from fakescope import bench as b

    if kind not in BENCH_KINDS:
        fail(f"unknown benchmark {kind!r} (available: {', '.join(BENCH_KINDS)})")
    if audio_model == NO_MODEL and kind in ("audio", "all"):
        fail("--audio-model none: the audio benchmark needs a speech model (auto or a name)")
    repeat = 1 if quick else repeat
    wanted = {"video", "image", "audio", "cache", "memory", "backends"} if kind == "all" else {kind}
    engine = {"backend": backend, "threads": threads}
    report: dict[str, Any] = {}
    try:
        clips = (files if kind == "video" else None) or b.default_clips()
        if "video" in wanted:
            report["video"] = b.bench_video(clips, num_frames=frames, repeat=repeat, seconds=seconds, model=model, **engine)
        if "image" in wanted:
            report["image"] = b.bench_image(files if kind == "image" else None, repeat=repeat, **engine)
        if "audio" in wanted:
            model = None if audio_model == AUTO else audio_model
            report["audio"] = b.bench_audio(files if kind == "audio" else None, repeat=repeat, model=model, threads=threads)
        if "cache" in wanted:
            cached = (files if kind == "cache" else None) or clips[:1]
            report["cache"] = b.bench_cache(cached, repeat=5 if quick else 20, **engine)
        if "memory" in wanted:
            report["memory"] = b.bench_memory(clips, **engine)
        if "backends" in wanted:
            from fakescope.models.onnx import default_threads
            from fakescope.optimize.bench import QUICK, bench_backends

            report["backends"] = bench_backends(
                out_dir="runs/onnx-quick" if quick else "runs/onnx",
                reuse=True,
                threads=threads or default_threads(),
                **(QUICK if quick else {}),
            )
    except FakescopeError as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    print_bench_report(report, threads)


def print_bench_report(report: dict[str, Any], threads: int | None) -> None:
    from fakescope import bench as b
    from fakescope.models.onnx import default_threads

    out = wide_console()
    tables = {
        "video": lambda rows: b.bench_table(rows, b.VIDEO_STAGES),
        "image": lambda rows: b.bench_table(rows, b.IMAGE_STAGES, unit="faces"),
        "audio": lambda rows: b.bench_table(rows, b.AUDIO_STAGES, unit="windows"),
        "cache": b.cache_table,
        "memory": b.memory_table,
    }
    for section, rows in report.items():
        if section == "backends":
            from fakescope.optimize.bench import backends_table

            out.print(backends_table(rows, threads=threads or default_threads()))
        else:
            out.print(f"[bold]{section}[/]")
            out.print(tables[section](rows))


@commands.command()
def export(
    model: Annotated[str, typer.Argument(help="registered model name (see `fakescope models`)")],
    fmt: Annotated[str, typer.Option("--format", help="export format: onnx")] = "onnx",
    quantize: Annotated[
        str | None,
        typer.Option(help="int8-static (calibrated on real crops, the fastest), int8-dynamic or fp16; fp32 if not given"),
    ] = None,
    prune: Annotated[float | None, typer.Option(min=0.01, max=0.95, help="share of weights zeroed before export")] = None,
    prune_method: Annotated[str, typer.Option(help="l1 (unstructured magnitude) or channels (structured, L2 norm)")] = "l1",
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for <model>.<variant>.onnx and its .json card")] = Path(
        "runs/onnx"
    ),
    calib_crops: Annotated[int, typer.Option(min=1, help="crops of the calibration split for int8-static")] = 300,
    data: Annotated[Path | None, typer.Option(help="labelled data folder (default: the one the model was trained on)")] = None,
    evaluate: Annotated[bool, typer.Option(help="score the export on the model's val split into its card")] = True,
) -> None:
    """Export a model for ONNX Runtime (`--backend onnx`), with a card: input contract, calibration, sha256, val metrics."""
    from fakescope.optimize import export_model

    try:
        exported = export_model(
            model,
            out,
            fmt,
            quantize=quantize,
            prune=prune,
            prune_method=prune_method,
            calib_crops=calib_crops,
            data=data,
            evaluate=evaluate,
        )
    except FakescopeError as err:
        fail(str(err))
    size = exported.onnx.stat().st_size / 1e6
    console.print(
        f"{escape(str(exported.onnx))} ({exported.variant}, {size:.1f} MB) · card {escape(str(exported.metadata))}",
        soft_wrap=True,
        highlight=False,
    )
    for split, m in exported.metrics.items():
        console.print(f"{split}: AUC {m['auc']:.4f} · LogLoss {m['logloss']:.4f} · n {m['n']}", highlight=False)
    console.print(f"use it: fakescope detect FILE --backend onnx --onnx-dir {escape(str(out))}", soft_wrap=True, highlight=False)
