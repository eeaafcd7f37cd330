"""`fakescope` command line: thin typer commands over the library API (entry point `fakescope.cli:app`)."""

from fakescope.cli.app import app

__all__ = ["app"]
