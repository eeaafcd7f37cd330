"""Where the commands write: the consoles, and one way to fail."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def wide_console() -> Console:
    """The console, or a wide one when output goes to a file or pipe, where wide tables would be cut to 80 columns."""
    return console if console.is_terminal else Console(width=220)


def fail(message: str, code: int = 2) -> NoReturn:
    """One red line on stderr and a non-zero exit: never a traceback."""
    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code)
