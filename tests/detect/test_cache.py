"""ResultCache: LRU order, counters, content keys, thread safety, and the Detector answering from it."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from fakescope.detect import Detector, Result, ResultCache
from fakescope.detect.cache import sha256_file
from fakescope.errors import UnsupportedMediaError
from tests.conftest import shared


def _result(name: str, score: float = 0.5, status: str = "ok") -> Result:
    return Result(file=name, status=status, score=score, media_type="image")


def test_least_recently_used_entry_is_dropped():
    cache = ResultCache(maxsize=2)
    cache.put("a", "f", _result("a", 0.1))
    cache.put("b", "f", _result("b", 0.2))
    assert cache.get("a", "f") is not None  # a is now the most recent
    cache.put("c", "f", _result("c", 0.3))
    assert cache.get("b", "f") is None
    assert cache.get("a", "f").score == 0.1
    assert cache.get("c", "f").score == 0.3
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size, stats.maxsize) == (3, 1, 2, 2)
    assert stats.hit_rate == pytest.approx(0.75)


def test_fingerprint_is_part_of_the_key_and_errors_are_not_kept():
    cache = ResultCache()
    cache.put("a", "frames=32", _result("a"))
    assert cache.get("a", "frames=8") is None
    cache.put("b", "f", _result("b", status="error"))
    assert cache.get("b", "f") is None


def test_get_returns_a_copy():
    cache = ResultCache()
    cache.put("a", "f", _result("a", 0.4))
    cache.get("a", "f").score = 0.9
    assert cache.get("a", "f").score == 0.4


def test_digest_follows_content_changes(tmp_path: Path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"one")
    cache = ResultCache()
    first = cache.digest(path)
    assert first == sha256_file(path)
    path.write_bytes(b"two, longer")
    assert cache.digest(path) == sha256_file(path) != first


@pytest.mark.timeout(30)
def test_digest_reads_only_regular_files(tmp_path: Path):
    """A FIFO would block the read forever and /dev/zero never end: refused from the stat alone."""
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    cache = ResultCache()
    for path in (fifo, Path("/dev/zero")):
        with pytest.raises(UnsupportedMediaError, match="not a regular file"):
            cache.digest(path)


def test_size_must_be_positive():
    with pytest.raises(ValueError):
        ResultCache(0)


def test_concurrent_use_loses_no_count_and_keeps_the_bound():
    cache = ResultCache(maxsize=16)
    rounds, threads = 300, 8

    def hammer(t: int) -> None:
        for i in range(rounds):
            key = f"{(i * 7 + t) % 40}"
            if cache.get(key, "f") is None:
                cache.put(key, "f", _result(key, (i % 10) / 10))

    workers = [threading.Thread(target=hammer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stats = cache.stats()
    assert stats.hits + stats.misses == rounds * threads
    assert stats.size <= 16


def test_detector_answers_a_repeated_file_from_the_cache(random_detector: Detector, tmp_path: Path):
    image = shared("dfdc_faces", "real")
    source = sorted(image.glob("*.jpg"))[0]
    copy = tmp_path / "renamed.jpg"
    shutil.copy(source, copy)
    detector = Detector(
        random_detector.model, model_name="random", face_detector=random_detector.face_detector, num_frames=8, cache=ResultCache()
    )
    first = detector.detect(source)
    again = detector.detect(copy)
    assert not first.cached and again.cached
    assert again.file == str(copy) and again.score == first.score and again.sha256 == first.sha256
    assert detector.cache.stats().hits == 1
    other = Detector(
        random_detector.model,
        model_name="random",
        face_detector=random_detector.face_detector,
        num_frames=4,
        cache=detector.cache,
    )
    assert not other.detect(copy).cached  # different settings, different key
