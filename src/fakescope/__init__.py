"""fakescope: tells real from manipulated faces in images and videos.

from fakescope import Detector
result = Detector.from_pretrained().detect("clip.mp4")
print(result.verdict, result.score)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakescope.constants import __version__

__all__ = ["Detector", "Result", "Thresholds", "__version__"]

if TYPE_CHECKING:
    from fakescope.detect import Detector, Result, Thresholds


def __getattr__(name: str) -> Any:
    # Lazy: `import fakescope.errors` (or `fakescope --help`) should not pay for importing torch.
    if name in {"Detector", "Result", "Thresholds"}:
        from fakescope import detect

        return getattr(detect, name)
    raise AttributeError(f"module 'fakescope' has no attribute {name!r}")
