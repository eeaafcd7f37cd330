"""A tiny upload of huge frames: an 8K video of about a hundred kilobytes.

It took `fakescope detect` to gigabytes (every sampled frame held as full-size RGB, the crops cut
from them), and two at once in a service worker twice that. Now frames are scaled in the decoder
(`MediaLimits.max_decode_side`), the decoded pixels one analysis keeps are bounded and those all
the analyses of a process keep are held from one ledger (`media.budget.DECODE_BUDGET`), and a
video with too many pixels per second is refused at probe with one line.

Memory is measured on subprocesses: the peak resident size (`ru_maxrss` of that child) of an 8K
analysis against the same command on a tiny clip, so what the models take cancels out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from fakescope.errors import MediaTooLargeError

UHD_8K = (7680, 4320)
# Growth of the peak over the same command on a tiny clip. The old code grew by 1.2 GiB for one
# 10-frame 8K clip and by 2.5 GiB for two at once.
ONE_CLIP_GROWTH_MIB = 600
TWO_CLIPS_GROWTH_MIB = 900
RUN_SECONDS = 150

TWO_AT_ONCE = """
import json, sys
from fakescope.detect import Detector
detector = Detector.from_pretrained(cache_size=0)
print(json.dumps([[r.status, r.reason, r.frames_sampled] for r in detector.detect_concurrently(sys.argv[1:])]))
"""


def write_clip(path: Path, size: tuple[int, int], *, frames: int = 10, fps: int = 10) -> Path:
    """Flat grey with a moving bar, at a low bitrate: a few hundred kilobytes at most, whatever the size."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "40", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            planes = np.full((height * 3 // 2, width), 128, np.uint8)
            planes[:height] = 110
            planes[height // 3 : height // 2, i * width // frames : (i + 1) * width // frames] = 235
            for packet in stream.encode(av.VideoFrame.from_ndarray(planes, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("huge")
    uhd = write_clip(folder / "uhd_a.mp4", UHD_8K)
    assert uhd.stat().st_size < 300_000
    second = folder / "uhd_b.mp4"
    second.write_bytes(uhd.read_bytes())
    return {"tiny": write_clip(folder / "tiny.mp4", (64, 48)), "uhd_a": uhd, "uhd_b": second}


def peak_mib(args: list[str]) -> tuple[float, str]:
    """Run `args`; (its peak resident memory in MiB, its stdout). Fails the test past RUN_SECONDS."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(os.devnull, "wb") as devnull, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=devnull, env=env) as proc:
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + RUN_SECONDS
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"{args[3:]} ran for more than {RUN_SECONDS} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join()
    return usage.ru_maxrss / 1024, out[0].decode()


def detect_cli(*files: Path) -> list[str]:
    return [sys.executable, "-c", "from fakescope.cli import app; app()", "detect", *map(str, files), "--json"]


@pytest.mark.timeout(400)
def test_cli_analyses_an_8k_clip_within_bounded_memory(clips: dict[str, Path]) -> None:
    base, _ = peak_mib(detect_cli(clips["tiny"]))
    peak, out = peak_mib(detect_cli(clips["uhd_a"]))
    result = json.loads(out)
    assert result["status"] in ("ok", "not_applicable") and result["frames_sampled"] == 10, result
    assert peak - base < ONE_CLIP_GROWTH_MIB, f"8K clip: peak {peak:.0f} MiB, tiny clip {base:.0f} MiB"


@pytest.mark.timeout(400)
def test_two_8k_clips_at_once_in_one_detector_stay_bounded(clips: dict[str, Path]) -> None:
    base, _ = peak_mib([sys.executable, "-c", TWO_AT_ONCE, str(clips["tiny"]), str(clips["tiny"])])
    peak, out = peak_mib([sys.executable, "-c", TWO_AT_ONCE, str(clips["uhd_a"]), str(clips["uhd_b"])])
    results = json.loads(out)
    assert {r[0] for r in results} <= {"ok", "not_applicable"} and [r[2] for r in results] == [10, 10], results
    assert peak - base < TWO_CLIPS_GROWTH_MIB, f"two 8K clips: peak {peak:.0f} MiB, two tiny clips {base:.0f} MiB"


@pytest.mark.timeout(60)
def test_8k_at_120_fps_is_refused_at_probe_in_one_line(tmp_path: Path) -> None:
    from fakescope.media import probe

    path = write_clip(tmp_path / "fast.mp4", UHD_8K, frames=3, fps=120)
    with pytest.raises(MediaTooLargeError) as err:
        probe(path)
    message = str(err.value)
    assert "\n" not in message
    assert message == f"{path}: video has too many pixels per second (7680x4320 at 120 fps = 3.98 Gpx/s, limit 1.99 Gpx/s)"


@pytest.mark.timeout(60)
def test_budget_is_shared_first_come_first_served() -> None:
    from fakescope.media.budget import DecodeBudget

    budget = DecodeBudget(10)
    order: list[int] = []

    def analysis(i: int, pixels: int) -> None:
        with budget.hold(pixels) as granted:
            assert granted == min(pixels, 10)
            order.append(i)
            time.sleep(0.05)

    threads = [threading.Thread(target=analysis, args=(i, p)) for i, p in enumerate([6, 6, 25, 3, 6])]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    for thread in threads:
        thread.join(10)
    assert budget.peak <= 10 and budget.held == 0
    assert order[:3] == [0, 1, 2]  # the oversized request runs alone, and is not overtaken by smaller ones


@pytest.mark.timeout(300)
def test_concurrent_analyses_hold_their_frames_from_the_process_budget(
    random_detector, clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fakescope.detect.pipeline as pipeline
    from fakescope.media.budget import DecodeBudget

    frames_pixels = random_detector.num_frames * 64 * 48  # what one tiny clip's frames hold
    budget = DecodeBudget(frames_pixels * 3 // 2)  # room for one analysis at a time
    monkeypatch.setattr(pipeline, "DECODE_BUDGET", budget)
    copies = []
    for i in range(3):
        copies.append(tmp_path / f"clip{i}.mp4")
        copies[-1].write_bytes(clips["tiny"].read_bytes())
    results = random_detector.detect_concurrently(copies)
    assert [r.status for r in results] == ["not_applicable"] * 3
    assert budget.peak == frames_pixels and budget.held == 0


@pytest.mark.timeout(300)
def test_faces_in_a_scaled_video_are_boxed_in_its_own_pixels(random_detector, tmp_path: Path) -> None:
    from fakescope.serve.thumbnails import write_thumbnails
    from tests.detect.test_pipeline import two_people, write_video

    people = two_people()  # 480 x 960
    big = np.repeat(np.repeat(people, 4, axis=0), 4, axis=1)  # 1920 x 3840: decoded at 960 x 1920
    write_video(tmp_path / "big.mp4", [big] * 8)
    write_video(tmp_path / "half.mp4", [np.repeat(np.repeat(people, 2, axis=0), 2, axis=1)] * 8)
    analysis = random_detector.analyse(tmp_path / "big.mp4")
    half = random_detector.detect(tmp_path / "half.mp4")
    assert analysis.result.status == half.status == "ok" and len(analysis.result.faces) == len(half.faces) == 2
    assert analysis.picture_scale == 0.5 and {p.shape for p in analysis.pictures.values()} == {(960, 1920, 3)}
    by_x = lambda faces: sorted(faces, key=lambda f: f.frames[0][2][0])  # noqa: E731 - local sort key
    for face, small in zip(by_x(analysis.result.faces), by_x(half.faces), strict=True):
        # Found again on other pixels (scaled by the decoder, not the encoder): close, not equal.
        assert face.frames[0][2] == pytest.approx([2 * v for v in small.frames[0][2]], rel=0.1)
    written = write_thumbnails(analysis.result.faces, analysis.pictures, tmp_path / "thumbs", "big.mp4", analysis.picture_scale)
    assert written == [0, 1]
