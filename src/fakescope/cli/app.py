"""The `fakescope` typer app: the global options, and each module's commands in the order `--help` lists them."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from fakescope.cli import detect, models, platform, serve

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Detect manipulated faces in images and videos, and synthetic speech in audio and videos' sound.",
)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log progress details")] = False) -> None:
    """fakescope: tells real from manipulated faces in images and videos, and real from synthetic speech."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


for group in (detect.commands, models.commands, platform.commands, serve.commands):
    app.add_typer(group)
