"""The progress bar of long jobs logs its counts when nobody watches a terminal (a job's log file, CI)."""

from __future__ import annotations

import io
import logging

from rich.console import Console

from fakescope import progress as progress_module
from fakescope.progress import progress


def test_off_a_terminal_every_task_logs_its_count_and_its_end(caplog, monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.0)
    bar = progress(Console(file=io.StringIO(), force_terminal=False))
    with caplog.at_level(logging.INFO, logger="fakescope.progress"), bar:
        task = bar.add_task("epoch 1/3", total=3, info="")
        bar.advance(task)
        bar.update(task, advance=2, info="loss 0.41")
        bar.advance(task)  # past the end: nothing more
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("epoch 1/3 1/3")
    assert lines[-1].startswith("epoch 1/3 3/3 loss 0.41") and len(lines) == 2


def test_on_a_terminal_only_the_bar_draws(caplog):
    bar = progress(Console(file=io.StringIO(), force_terminal=True))
    with caplog.at_level(logging.INFO, logger="fakescope.progress"), bar:
        task = bar.add_task("clips", total=2, info="")
        bar.advance(task, 2)
    assert not caplog.records
