"""DFDC-style submission files: one `filename,label` row per video, label = P(fake)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from fakescope.detect.result import Result

# DFDC convention: a file that cannot be scored gets the uninformative prediction (and counts so in eval).
UNSCORED = 0.5


def write_submission(results: Iterable[Result], path: Path) -> int:
    """DFDC-style `filename,label` with label = P(fake); unscored files get 0.5. Returns the row count."""
    rows = sorted((Path(r.file).name, r.score if r.status == "ok" and r.score is not None else UNSCORED) for r in results)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["filename", "label"])
        writer.writerows((name, f"{label:.6f}") for name, label in rows)
    return len(rows)
