"""DetectorOptions: one description of a Detector for the CLI, scans, the service settings and `from_pretrained`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

from fakescope.detect import Detector
from fakescope.detect.options import DEFAULT_OPTIONS, DetectorOptions, model_choice
from fakescope.serve.settings import ServeSettings


def test_options_and_service_settings_load_without_the_model_code():
    code = "import sys, fakescope.serve.settings; print(sorted(m for m in ('torch', 'cv2', 'scipy') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_service_settings_describe_their_detector_as_options():
    options = ServeSettings(model="m.tag", frames=8, image_model="none", audio_model="NONE", audio_weight=0.3).detector_options()
    assert options == DetectorOptions(model="m.tag", frames=8, image_model=None, audio_model=None, audio_weight=0.3)
    assert ServeSettings().detector_options() == DEFAULT_OPTIONS
    assert model_choice("auto") == "auto" and model_choice("None") is None


def test_from_pretrained_is_from_options_by_keywords():
    keywords = Detector.from_pretrained(
        face_detector="haar",
        image_model=None,
        audio_model=None,
        backend="torch",
        num_frames=8,
        detect_every=3,
        batch_size=16,
        cache_size=0,
    )
    options = Detector.from_options(
        DetectorOptions(
            face_detector="haar",
            image_model=None,
            audio_model=None,
            backend="torch",
            frames=8,
            face_every=3,
            batch=16,
            cache_size=0,
            audio_weight=0.5,
        )
    )
    for d in (keywords, options):
        assert (d.num_frames, d.detect_every, d.batch_size, d.cache, d.image_model) == (8, 3, 16, None, None)
        assert asdict(d.weights) == {"video": 0.5, "audio": 0.5, "confident": 0.9}
    assert keywords.fingerprint == options.fingerprint
    assert (
        Detector.from_options(
            DetectorOptions(face_detector="haar", image_model=None, audio_model=None, backend="torch", audio_weight=0.3)
        ).weights.audio
        == 0.3
    )
