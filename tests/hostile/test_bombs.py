"""Small files that claim to be huge: decompression bombs for every kind of media.

Each goes through `fakescope detect --json` as a user would run it, in a subprocess whose peak
resident size is measured, beside a good file: the bomb gets an error Result with one line
("too large", "too long"), the good file its score, the exit code is 1, and neither time nor
memory follows what the bomb claims.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.media.conftest import png_bytes

RUN_SECONDS = 120
# Growth of the CLI's peak over the same command on the good file alone (so what the models take
# cancels out): far below what any of the bombs claims (gigabytes).
GROWTH_MIB = 300


def png_bomb(path: Path, side: int) -> Path:
    """A 1-bit PNG of side x side zeros: kilobytes on disk, side² pixels (3 bytes each as RGB) once decoded."""
    rows = (b"\x00" + bytes(side // 8)) * side
    path.write_bytes(png_bytes(side, side, bit_depth=1, color_type=0, idat=zlib.compress(rows, 9)))
    return path


def gif_bomb(path: Path, side: int) -> Path:
    """A GIF whose logical screen is side x side, with one 1x1 image on it."""
    header = b"GIF89a" + struct.pack("<HHBBB", side, side, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    path.write_bytes(header + image + b"\x3b")
    return path


def wav_bomb(path: Path, hours: float) -> Path:
    """A WAV whose header declares `hours` of 8 kHz 16-bit audio, with one second of it present."""
    rate, seconds = 8000, 1
    declared = int(hours * 3600 * rate * 2)
    header = (
        b"RIFF"
        + struct.pack("<I", min(36 + declared, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", min(declared, 0xFFFFFFFF))
    )
    path.write_bytes(header + bytes(rate * 2 * seconds))
    return path


def detect(*paths: Path) -> tuple[int, list[dict], int]:
    """(exit code, Results, peak RSS in MiB) of `fakescope detect --json` on `paths`."""
    code = (
        "import resource, sys\n"
        "from fakescope.cli import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as done:\n"
        "    status = done.code or 0\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, "detect", "--json", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        env=env,
        check=False,
    )
    peak = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK")))
    results = json.loads(done.stdout)
    return done.returncode, results if isinstance(results, list) else [results], peak


@pytest.mark.timeout(RUN_SECONDS * 2)
def test_bombs_are_refused_in_one_line_beside_a_good_file(tmp_path: Path) -> None:
    bombs = {
        "png": png_bomb(tmp_path / "bomb.png", 40_000),  # 1.6 Gpx, 4.8 GB as RGB
        "gif": gif_bomb(tmp_path / "bomb.gif", 65_535),  # 4.3 Gpx logical screen
        "wav": wav_bomb(tmp_path / "bomb.wav", 70.0),  # 70 h declared
    }
    assert all(path.stat().st_size < 300_000 for path in bombs.values())
    good = EXAMPLES / "speech_fake_world_theo.wav"
    _, [good_alone], alone = detect(good)
    status, results, peak = detect(*bombs.values(), good)
    by_name = {Path(r["file"]).name: r for r in results}
    for kind in ("png", "gif"):
        result = by_name[bombs[kind].name]
        assert result["status"] == "error" and "too large" in result["reason"], (kind, result)
    # The WAV's header lies: only its one second of (silent) samples is read, never the 70 h it declares.
    lie = by_name[bombs["wav"].name]
    assert lie["status"] in ("error", "not_applicable") and (lie["duration"] or 0) < 2, lie
    for result in results:
        assert result["reason"] is None or ("\n" not in result["reason"] and "Traceback" not in result["reason"])
    assert by_name[good.name]["status"] == "ok" and by_name[good.name]["score"] == good_alone["score"], "scored as alone"
    assert status == 1
    assert peak - alone < GROWTH_MIB, f"peak {peak} MiB against {alone} MiB for the good file alone"
