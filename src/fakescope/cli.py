"""`fakescope` command line: thin typer commands over the library API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Detect manipulated faces in images and videos.")


@app.callback()
def main() -> None:
    """fakescope: tells real from manipulated faces in images and videos."""


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="face-crop folder with labels.csv (file,label,original,split)")] = Path("../shared/data/dfdc_faces"),
    model: Annotated[str, typer.Option(help="registered model name")] = "faceswap-effnet-lite0.dfdc",
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    lr: float = 6e-4,
    limit: Annotated[int | None, typer.Option(help="use at most this many train crops (smoke runs)")] = None,
    run_dir: Annotated[Path, typer.Option(help="checkpoints and history; an existing checkpoint is resumed")] = Path("runs/faceswap-effnet-lite0"),
    out: Annotated[Path | None, typer.Option(help="write the shipped fp16 weights + card here (e.g. src/fakescope/weights)")] = None,
    device: str = "auto",
) -> None:
    """Fine-tune a detector on labelled face crops; resumable; writes weights, sha256 and metrics."""
    from fakescope.train.recipe import TrainConfig, run_training

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = TrainConfig(data=data, model=model, epochs=epochs, batch_size=batch_size, lr=lr, limit=limit,
                      run_dir=run_dir, out=out, device=device)
    card = run_training(cfg)
    typer.echo(f"val metrics: {card['metrics']}")
