"""Errors a user sees as one clear line (never a traceback).

Every failure that bad input can cause is a subclass of `FakescopeError`; the CLI prints
`str(err)` and exits non-zero, `scan` stores it as the Result's reason.
"""

from __future__ import annotations


class FakescopeError(Exception):
    """Base class: the message is written for the person who ran the command."""


class MediaError(FakescopeError):
    """The file cannot be used as media (missing, empty, corrupt, unsupported, too large)."""


class MissingFileError(MediaError):
    pass


class EmptyFileError(MediaError):
    pass


class UnsupportedMediaError(MediaError):
    pass


class CorruptMediaError(MediaError):
    pass


class MediaTooLargeError(MediaError):
    pass


class NoAudioError(MediaError):
    """The file holds no audio stream (a video without sound, an image)."""


class ModelError(FakescopeError):
    """A model name or weight file is unknown or does not match its checksum."""
