"""OpenMP thread counts for native face detectors, set in every libgomp their calls may bind to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def openmp_threads(threads: int, runtimes: Sequence[Any]) -> Iterator[None]:
    """`threads` OpenMP threads for this thread's parallel regions in each of `runtimes` (`openmp_runtimes`), restored after.

    The wheel bundles its own libgomp, but when torch was imported first its libgomp (loaded
    globally) is the one the wheel's OpenMP calls bind to. Setting only the bundled runtime
    then changes nothing: with the other core busy, two threads spun waiting for each other
    and yuface ran several times slower (see docs/RESULTS.md, face detectors). The setting is
    per calling thread, so torch's own thread count is given back afterwards.
    """
    before = [runtime.omp_get_max_threads() for runtime in runtimes]
    for runtime in runtimes:
        runtime.omp_set_num_threads(threads)
    try:
        yield
    finally:
        for runtime, n in zip(runtimes, before, strict=True):
            runtime.omp_set_num_threads(n)


def openmp_runtimes(module: Any) -> list[Any]:
    """libgomp copies mapped into this process (Linux), and the one bundled with `module`'s wheel.

    Read once per face detector: reading the memory map costs a noticeable share of a photo's analysis."""
    import ctypes

    package = Path(module.__file__).parent
    paths = {str(p) for p in package.parent.glob(f"{package.name}.libs/libgomp*.so*")}
    try:
        with open("/proc/self/maps") as maps:
            paths |= {fields[5] for fields in map(str.split, maps) if len(fields) == 6 and "libgomp" in Path(fields[5]).name}
    except OSError:
        pass
    runtimes = []
    for path in sorted(paths):
        try:
            runtime = ctypes.CDLL(path)
            runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
            runtime.omp_get_max_threads.restype = ctypes.c_int
        except (OSError, AttributeError):
            continue
        runtimes.append(runtime)
    return runtimes
