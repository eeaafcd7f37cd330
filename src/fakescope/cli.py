"""`fakescope` command line: thin typer commands over the library API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from fakescope.detect import Result

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Detect manipulated faces in images and videos.")
console = Console()
err_console = Console(stderr=True)

# Same as fakescope.models.DEFAULT_MODEL (a test keeps them equal), spelled out so that
# `fakescope --help` does not import torch.
DEFAULT_MODEL = "faceswap-effnet-lite0.dfdc"
VERDICT_STYLE = {"authentic": "green", "suspicious": "yellow", "manipulated": "bold red"}

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="registered model name (see `fakescope models`)")]
FramesOpt = Annotated[int, typer.Option("--frames", "-n", min=1, max=512, help="frames sampled per video")]
FaceOpt = Annotated[str, typer.Option("--face-detector", help="mtcnn (default, Haar fallback) or haar")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")] = False) -> None:
    """fakescope: tells real from manipulated faces in images and videos."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def load_detector(model: str, frames: int, face_detector: str = "mtcnn"):
    from fakescope.detect import Detector
    from fakescope.errors import FakescopeError

    try:
        return Detector.from_pretrained(model, num_frames=frames, face_detector=face_detector)
    except FakescopeError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None


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
        table.add_row(name, r.media_type or "?", verdict, score, str(r.faces_found), frames, f"{r.processing_time:.2f}s")
    return table


def print_reason(r: Result) -> None:
    """One unwrapped line per file that was not scored normally, naming the file once."""
    name = Path(r.file).name
    line = escape(r.reason if r.reason and name in r.reason else f"{name}: {r.reason}")
    if r.status == "error":
        err_console.print(f"[red]error:[/] {line}", soft_wrap=True, markup=True, highlight=False)
    else:
        console.print(f"[dim]{line}[/]", soft_wrap=True, highlight=False)


@app.command()
def detect(
    files: Annotated[list[Path], typer.Argument(help="images (jpg/png/webp/bmp) or videos (mp4/mov/avi/mkv/webm)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the Result object(s) as JSON")] = False,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = 32,
    face_detector: FaceOpt = "mtcnn",
) -> None:
    """Score files and print a verdict per file. Exit code 1 if any file could not be read."""
    from fakescope.scan import dumps

    detector = load_detector(model, frames, face_detector)
    results = [detector.detect(f) for f in files]
    if as_json:
        typer.echo(dumps(results))
    else:
        console.print(results_table(results))
        for r in results:
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
) -> None:
    """Scan folders: one Result per line, resumable; one bad file never stops the scan."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fakescope.errors import FakescopeError
    from fakescope.media import collect_media_files
    from fakescope.scan import read_done, scan_files, summarize, write_submission

    try:
        files = collect_media_files(inputs)
    except FakescopeError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    done = read_done(output)
    todo = [f for f in files if str(f) not in done]
    console.print(f"{len(files)} files, {len(files) - len(todo)} already in {output}, {len(todo)} to scan")
    with Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task("scan", total=len(todo))
        new = scan_files(
            todo, output, model=model, num_frames=frames, workers=workers,
            detector_factory=lambda: load_detector(model, frames),
            on_result=lambda r: bar.advance(task),
        )
    wanted = {str(f) for f in files}
    everything = [r for f, r in done.items() if f in wanted] + new
    counts = summarize(everything)
    console.print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {output}")
    if submission is not None:
        n = write_submission(everything, submission)
        console.print(f"submission: {n} rows → {submission}")


@app.command("models")
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="glob over model names")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List registered detectors with input size, weights sha256 and measured metrics."""
    from fakescope.models import get_pretrained_cfg, list_models

    rows = []
    for name in list_models(pattern):
        cfg = get_pretrained_cfg(name)
        path = cfg.weights_path()
        val = next(iter(cfg.metrics.values()), {})
        rows.append({
            "name": name, "input_size": list(cfg.input_size), "weights": cfg.file,
            "installed": bool(path and path.is_file()), "sha256": cfg.sha256,
            "size_mb": round(path.stat().st_size / 1e6, 2) if path and path.is_file() else None,
            "metrics": cfg.metrics, "dataset": cfg.dataset, "recipe": cfg.recipe, "temperature": cfg.temperature,
            "auc": val.get("auc"), "logloss": val.get("logloss"),
        })
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="registered detectors (metrics measured on held-out data)", title_justify="left")
    for col in ["name", "input", "sha256", "size", "AUC", "LogLoss", "ECE"]:
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "sha256") else "right")
    evalsets = sorted({k for r in rows for k in r["metrics"]})
    table.caption = f"metrics on {', '.join(evalsets)}; full card: fakescope models --json" if evalsets else None
    for r in rows:
        fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else "—"  # noqa: E731
        val = next(iter(r["metrics"].values()), {})
        table.add_row(
            r["name"], "x".join(map(str, r["input_size"][1:])),
            (r["sha256"] or "—")[:12] if r["installed"] else "[red]missing[/]",
            f"{r['size_mb']:.1f}MB" if r["size_mb"] else "—",
            fmt(val.get("auc")), fmt(val.get("logloss")), fmt(val.get("ece")),
        )
    console.print(table)


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="face-crop folder with labels.csv (file,label,original,split)")] = Path("../shared/data/dfdc_faces"),
    model: ModelOpt = DEFAULT_MODEL,
    epochs: Annotated[int, typer.Option(min=1)] = 6,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: float = 6e-4,
    limit: Annotated[int | None, typer.Option(help="use at most this many train crops (smoke runs)")] = None,
    run_dir: Annotated[Path, typer.Option(help="checkpoints and history; an existing checkpoint is resumed")] = Path("runs/faceswap-effnet-lite0"),
    out: Annotated[Path | None, typer.Option(help="write the shipped fp16 weights + card here (e.g. src/fakescope/weights)")] = None,
    device: str = "auto",
) -> None:
    """Fine-tune a detector on labelled face crops; resumable; writes weights, sha256 and metrics."""
    from fakescope.train.recipe import TrainConfig, run_training

    logging.getLogger().setLevel(logging.INFO)
    cfg = TrainConfig(data=data, model=model, epochs=epochs, batch_size=batch_size, lr=lr, limit=limit,
                      run_dir=run_dir, out=out, device=device)
    card = run_training(cfg)
    typer.echo(json.dumps(card["metrics"], indent=2))


@app.command()
def bench(
    kind: Annotated[str, typer.Argument(help="what to benchmark: video")] = "video",
    files: Annotated[list[Path] | None, typer.Argument(help="clips (default: the bundled examples)")] = None,
    frames: FramesOpt = 32,
    repeat: Annotated[int, typer.Option(min=1, help="runs per clip; the median is reported")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Time the video pipeline per stage and print time ÷ clip duration."""
    from fakescope.bench import bench_video, bench_table, default_clips

    if kind != "video":
        err_console.print(f"[red]error:[/] unknown benchmark {kind!r} (available: video)")
        raise typer.Exit(2)
    rows = bench_video(files or default_clips(), num_frames=frames, repeat=repeat)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        console.print(bench_table(rows))
