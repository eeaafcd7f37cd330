"""`fakescope detect` and `fakescope scan`: score files, print a verdict per file or write one Result per line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fakescope.cli.console import console, err_console, fail
from fakescope.cli.options import with_engine_options
from fakescope.detect.options import DEFAULT_OPTIONS, DetectorOptions
from fakescope.errors import FakescopeError

if TYPE_CHECKING:
    from fakescope.detect import Detector, Result

commands = typer.Typer()

VERDICT_STYLE = {"authentic": "green", "suspicious": "yellow", "manipulated": "bold red"}


def load_detector(options: DetectorOptions) -> Detector:
    from fakescope.detect import Detector

    try:
        return Detector.from_options(options)
    except FakescopeError as err:
        fail(str(err))


def results_table(results: list[Result]) -> Table:
    table = Table(title="fakescope", title_justify="left")
    for col, justify in [
        ("file", "left"),
        ("type", "left"),
        ("verdict", "left"),
        ("P(fake)", "right"),
        ("faces", "right"),
        ("frames", "right"),
        ("time", "right"),
    ]:
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


@commands.command()
@with_engine_options
def detect(
    files: Annotated[
        list[Path],
        # readable=False: an unreadable file is an error Result like any bad file, not a usage error.
        typer.Argument(
            help="images (jpg/png/webp/bmp), videos (mp4/mov/avi/mkv/webm) or audio (wav/flac/mp3/ogg/opus/m4a)",
            readable=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print the Result object(s) as JSON")] = False,
    options: DetectorOptions = DEFAULT_OPTIONS,
) -> None:
    """Score files and print a verdict per file. Exit code 1 if any file could not be read."""
    from fakescope.scan import dumps

    detector = load_detector(options)
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


@commands.command()
@with_engine_options
def scan(
    inputs: Annotated[list[Path], typer.Argument(help="folders (walked recursively) and/or files", readable=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file; files already in it are skipped")],
    submission: Annotated[Path | None, typer.Option(help="also write a DFDC-style filename,label CSV")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
    options: DetectorOptions = DEFAULT_OPTIONS,
) -> None:
    """Scan folders: one Result per line, resumable; one bad file never stops the scan.

    An unreadable folder, a broken link or a link loop is an error Result too, and the walk goes on.
    Files with the same content are analysed once (the result cache, per worker process)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fakescope.evaluate.submission import write_submission
    from fakescope.media import collect_media_files
    from fakescope.scan import read_done, scan_files, summarize, unreadable_results

    try:
        found = collect_media_files(inputs)
    except FakescopeError as err:
        fail(str(err), 1)
    files = found.files
    done = read_done(output)
    todo = [f for f in files if str(f) not in done]
    failed = unreadable_results(u for u in found.unreadable if str(u.path) not in done)
    for r in failed:
        print_reason(r)
    console.print(f"{len(files)} files, {len(files) - len(todo)} already in {output}, {len(todo)} to scan")
    with Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console
    ) as bar:
        task = bar.add_task("scan", total=len(todo) + len(failed))
        new = scan_files(
            todo,
            output,
            options=options,
            workers=workers,
            detector_factory=lambda: load_detector(options),
            on_result=lambda r: bar.advance(task),
            failed=failed,
        )
    wanted = {str(f) for f in files} | {str(u.path) for u in found.unreadable}
    everything = [r for f, r in done.items() if f in wanted] + new
    counts = summarize(everything)
    console.print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" → {output}")
    if submission is not None:
        n = write_submission(everything, submission)
        console.print(f"submission: {n} rows → {submission}")
