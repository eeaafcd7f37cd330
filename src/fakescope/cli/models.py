"""`fakescope models`: the registered models with their input, weights checksum, measured metrics and recipe."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fakescope.cli.console import console, wide_console

commands = typer.Typer()


def input_summary(cfg: Any) -> str:
    if cfg.input_kind == "audio":
        return f"audio {cfg.sample_rate // 1000}kHz {cfg.window_seconds:g}s"
    return f"{cfg.input_kind} {cfg.input_size[1]}x{cfg.input_size[2]}"


@commands.command("models")
def models_cmd(
    pattern: Annotated[str, typer.Argument(help="glob over model names")] = "*",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List registered detectors with input size, weights sha256 and measured metrics."""
    from fakescope.models import get_pretrained_cfg, list_models
    from fakescope.models.info import model_info

    rows = [model_info(name) for name in list_models(pattern)]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(
        title="registered detectors (metrics measured on held-out data)",
        title_justify="left",
        caption="full cards: fakescope models --json",
    )
    for col in ["name", "input", "sha256", "size", "evaluated on", "AUC", "LogLoss", "ECE", "EER", "ONNX (AUC)"]:
        table.add_column(col, no_wrap=True, justify="left" if col in ("name", "input", "sha256", "evaluated on") else "right")
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else "—"  # noqa: E731
    for r in rows:
        val = r["metrics"].get(r["evaluated_on"], {})
        table.add_row(
            r["name"],
            input_summary(get_pretrained_cfg(r["name"])),
            (r["sha256"] or "—")[:12] if r["installed"] else "[red]not trained[/]",
            f"{r['size_mb']:.1f}MB" if r["size_mb"] else "—",
            r["evaluated_on"] or "—",
            fmt(val.get("auc")),
            fmt(val.get("logloss")),
            fmt(val.get("ece")),
            fmt(val.get("eer")),
            " ".join(f"{v} {fmt(e['metrics'].get(r['evaluated_on'], {}).get('auc'))}" for v, e in r["onnx"].items()) or "—",
        )
    wide_console().print(table)
    console.print("reproduce:")
    for r in rows:
        console.print(f"  {r['name']}: {r['recipe'] or '—'}", soft_wrap=True, highlight=False, markup=False)
