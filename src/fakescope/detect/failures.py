"""How a failed analysis is answered: an error Result with a one-line reason, never an exception.

This is the one never-raise net of fakescope. `Detector.detect` applies it, so the CLI, batch
scans and the service's workers all get the same Result for the same failure: the message of
an expected error (bad input, a missing model: FakescopeError) as it is, anything else (a bug)
as "internal error: <type>: <message>", logged with its traceback. The service reads that prefix
to keep such Results out of its result cache: a fixed bug must not keep answering from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fakescope.detect.result import Result
from fakescope.errors import FakescopeError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "internal error"


def failure_reason(err: BaseException) -> str:
    """The Result's `reason` for a failure: an expected error says it itself, a bug says what raised."""
    if isinstance(err, FakescopeError):
        return str(err)
    return internal_error(err)


def internal_error(err: BaseException) -> str:
    """How a bug is reported, in a Result's reason or a failed job's error: "internal error: <type>: <message>"."""
    return f"{INTERNAL_ERROR}: {type(err).__name__}: {err}"


def is_internal_error(reason: str | None) -> bool:
    """Whether a Result's reason says the analysis hit a bug rather than bad input."""
    return str(reason or "").startswith(INTERNAL_ERROR)


def failed_result(path: str | Path, err: BaseException) -> Result:
    """The error Result of a file whose analysis raised; a bug is logged with its traceback."""
    if not isinstance(err, FakescopeError):
        log.error("unexpected failure on %s", path, exc_info=err)
    return Result(file=str(path), status="error", reason=failure_reason(err))
