"""The one progress bar of long jobs (crop extraction, training epochs, corpus building).

On a terminal it is rich's live bar. Elsewhere (a job's log file, CI) a live bar draws nothing
until the end, so a long run looked hung: there each task logs one line every LOG_EVERY seconds
and one when it completes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

log = logging.getLogger(__name__)
LOG_EVERY = 30.0


class LoggedProgress(Progress):
    """rich's Progress that also logs its tasks' counts when its console is not a terminal."""

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._last_logged: dict[TaskID, float] = {}

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log(task_id)

    def _log(self, task_id: TaskID) -> None:
        if self.console.is_terminal:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        finished = task.total is not None and task.completed >= task.total
        last = self._last_logged.setdefault(task_id, now)
        if (now - last < LOG_EVERY and not finished) or last == float("inf"):
            return
        self._last_logged[task_id] = float("inf") if finished else now
        left = task.time_remaining
        log.info(
            "%s %d/%s %s (%.0f s%s)",
            task.description,
            task.completed,
            "?" if task.total is None else int(task.total),
            task.fields.get("info", ""),
            task.elapsed or 0.0,
            "" if finished or left is None else f", ~{left:.0f} s left",
        )


def progress(console: Console | None = None) -> Progress:
    """A bar with the task's description, count, a free `info` field and elapsed/remaining time."""
    return LoggedProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
