"""Shared fixtures: one real video frame decoded in place from the shared data folder."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared


@pytest.fixture(scope="session")
def face_frame() -> np.ndarray:
    """First frame of an FF++ clip (1280x720, one frontal face), RGB uint8."""
    import av

    with av.open(str(shared("videos", "004.mp4"))) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")
