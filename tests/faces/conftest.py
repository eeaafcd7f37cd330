"""Shared fixtures: one real video frame decoded in place from the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLIP = Path("/work/shared/data/videos/004.mp4")


@pytest.fixture(scope="session")
def face_frame() -> np.ndarray:
    """First frame of an FF++ clip (1280x720, one frontal face), RGB uint8."""
    if not CLIP.exists():
        pytest.skip(f"{CLIP} not available")
    import av

    with av.open(str(CLIP)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")
