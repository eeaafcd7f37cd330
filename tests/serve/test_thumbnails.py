"""Face thumbnails come from the frames the analysis decoded: a video is decoded once per job."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from fakescope.detect.result import FaceTrack
from fakescope.media import video
from fakescope.serve import workers
from fakescope.serve.thumbnails import JPEG_QUALITY, best_frame, face_thumbnail
from tests.serve.service_helpers import FAKE_CLIP


def _jpeg(pixels) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def test_a_video_job_decodes_the_video_once_and_cuts_thumbnails_from_its_frames(
    random_detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = video.open_container

    def counting_open(name, path, kind):
        opened.append(name)
        return real_open(name, path, kind)

    monkeypatch.setattr(video, "open_container", counting_open)
    monkeypatch.setattr(workers, "_detector", random_detector)
    thumbs = tmp_path / "thumbs"

    result = workers.run_detect(str(FAKE_CLIP), "clip.mp4", str(thumbs))

    assert result["status"] == "ok" and result["faces"], result.get("reason")
    assert len(opened) == 1, f"the video was decoded {len(opened)} times"
    # The same thumbnails as cutting them from a fresh decode of the same frames.
    monkeypatch.setattr(video, "open_container", real_open)
    frames = video.sample_frames(FAKE_CLIP, random_detector.num_frames)
    for face in result["faces"]:
        track = FaceTrack.model_validate(face)
        timestamp, _, box = best_frame(track)
        picture = min(frames, key=lambda f: abs(f.timestamp - timestamp)).image
        written = thumbs / f"{track.track_id}.jpg"
        assert written.read_bytes() == _jpeg(face_thumbnail(picture, box)), f"thumbnail of track {track.track_id} differs"
