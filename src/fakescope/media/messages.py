"""The wording of media error messages: short causes and sizes a person reads at a glance."""

from __future__ import annotations

import re

_QUOTED_PATH = re.compile(r":?\s*'[^']*[/\\][^']*'")


def error_reason(err: BaseException) -> str:
    """A short lower-case cause from an exception, without file paths repeated."""
    text = getattr(err, "strerror", None) or _QUOTED_PATH.sub("", str(err)) or type(err).__name__
    text = str(text).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def fmt_mpx(pixels: int) -> str:
    """Megapixels with three significant digits."""
    return f"{pixels / 1e6:.3g}"


def fmt_bytes(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def fmt_seconds(seconds: float) -> str:
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"
