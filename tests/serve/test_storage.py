"""The content-addressed blob store: streaming, limits, dedup, copy-in and safe paths."""

from __future__ import annotations

import asyncio
import hashlib
import io
import stat

import pytest
from starlette.datastructures import UploadFile

from fakescope.errors import FakescopeError, MissingFileError
from fakescope.media.sniff import HEAD_BYTES, sniff_kind
from fakescope.serve import storage
from fakescope.serve.storage import (
    SNIFF_BYTES,
    BlobStore,
    EmptyUploadError,
    StorageFullError,
    UploadTooLargeError,
    _PendingBlob,
    format_bytes,
)
from tests.conftest import EXAMPLES


@pytest.fixture
def store(tmp_path):
    return BlobStore(tmp_path / "blobs")


def leftovers(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.tmp_dir.iterdir())


def stored_files(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.root.rglob("*") if p.is_file() and p.parent != store.tmp_dir)


def test_save_names_the_file_by_its_sha256_and_makes_it_read_only(store):
    data = b"hello " * 1000
    blob = store.save_iter([data[:100], data[100:]], max_bytes=10_000)
    digest = hashlib.sha256(data).hexdigest()
    assert blob.sha256 == digest and blob.size == len(data)
    assert blob.path == store.root / digest[:2] / digest[2:4] / digest == store.path_for(digest)
    assert blob.path.read_bytes() == data
    assert stat.S_IMODE(blob.path.stat().st_mode) == 0o444
    assert store.exists(digest) and leftovers(store) == []


def test_same_content_is_stored_once(store):
    first = store.save_iter([b"same bytes"], max_bytes=100)
    second = store.save_iter([b"same ", b"bytes"], max_bytes=100)
    assert first == second
    assert stored_files(store) == [first.sha256] and leftovers(store) == []


def test_limit_is_inclusive_and_a_larger_upload_leaves_nothing(store):
    assert store.save_iter([b"x" * 10], max_bytes=10).size == 10
    with pytest.raises(UploadTooLargeError, match="the limit is 10 bytes"):
        store.save_iter([b"y" * 6, b"y" * 5], max_bytes=10)
    assert leftovers(store) == [] and len(stored_files(store)) == 1
    assert issubclass(UploadTooLargeError, FakescopeError)


def test_empty_upload_is_refused(store):
    with pytest.raises(EmptyUploadError, match="^empty upload$"):
        store.save_iter([b"", b""], max_bytes=10)
    assert leftovers(store) == [] and stored_files(store) == []


def test_save_upload_reads_a_starlette_upload_in_chunks(store):
    data = bytes(range(256)) * (3 * 4096 + 7)  # a bit over 3 MiB: several 1 MiB reads
    upload = UploadFile(io.BytesIO(data), filename="clip.mp4")
    blob = asyncio.run(store.save_upload(upload, max_bytes=len(data)))
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and blob.path.read_bytes() == data


def test_save_upload_past_the_limit_stops_and_cleans_up(store):
    upload = UploadFile(io.BytesIO(b"z" * (2 * 1024 * 1024 + 1)), filename="big.bin")
    with pytest.raises(UploadTooLargeError, match="2 MiB"):
        asyncio.run(store.save_upload(upload, max_bytes=2 * 1024 * 1024))
    assert leftovers(store) == [] and stored_files(store) == []


def test_save_stream_accepts_plain_and_async_iterables_and_cleans_up_on_errors(store):
    async def broken():
        yield b"part one"
        raise ConnectionError("client went away")

    assert asyncio.run(store.save_stream([b"a", b"b"], max_bytes=5)).path.read_bytes() == b"ab"
    with pytest.raises(ConnectionError):
        asyncio.run(store.save_stream(broken(), max_bytes=100))
    assert leftovers(store) == [] and len(stored_files(store)) == 1


def test_save_file_copies_in_so_later_changes_do_not_matter(store, tmp_path):
    src = tmp_path / "clip.bin"
    src.write_bytes(b"original content")
    blob = store.save_file(src, max_bytes=1000)
    src.write_bytes(b"changed afterwards")
    assert blob.path.read_bytes() == b"original content" and blob.path != src


def test_save_file_refuses_missing_and_too_large_files(store, tmp_path):
    with pytest.raises(MissingFileError, match="no such file"):
        store.save_file(tmp_path / "nope.mp4", max_bytes=10)
    with pytest.raises(MissingFileError):
        store.save_file(tmp_path, max_bytes=10)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"b" * 2048)
    with pytest.raises(UploadTooLargeError, match=r"big\.mp4 is 2 KiB, the limit is 1 KiB"):
        store.save_file(big, max_bytes=1024)
    assert leftovers(store) == [] and stored_files(store) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "", "a" * 62 + "/.", None])
def test_paths_come_only_from_valid_digests(store, bad):
    with pytest.raises(FakescopeError, match="not a sha256 digest"):
        store.path_for(bad)


def test_head_gives_enough_bytes_to_sniff_the_media_kind(store):
    blob = store.save_file(EXAMPLES / "real_ffpp_866.mp4", max_bytes=50 * 1024 * 1024)
    head = store.head(blob.sha256)
    assert SNIFF_BYTES == HEAD_BYTES and len(head) == HEAD_BYTES
    assert sniff_kind(head)[0] == "video"
    assert store.head(blob.sha256, n=4) == head[:4]


def test_delete_and_exists(store):
    blob = store.save_iter([b"to delete"], max_bytes=100)
    assert store.delete(blob.sha256) is True
    assert not store.exists(blob.sha256) and store.delete(blob.sha256) is False


def test_clean_tmp_removes_what_a_killed_process_left(store):
    (store.tmp_dir / "upload-dead.part").write_bytes(b"half")
    assert store.clean_tmp() == 1 and leftovers(store) == []


def test_format_bytes():
    assert [format_bytes(n) for n in (7, 2048, 500 * 1024**2, 3 * 1024**3)] == ["7 bytes", "2 KiB", "500 MiB", "3 GiB"]


# the disk budget


def test_budget_counts_stored_bytes_and_refuses_what_does_not_fit(tmp_path):
    store = BlobStore(tmp_path / "blobs", budget_bytes=100)
    first = store.save_iter([b"a" * 60], max_bytes=1000)
    assert store.used_bytes == 60
    with pytest.raises(StorageFullError, match="^storage full: .*100 bytes"):
        store.save_iter([b"b" * 30, b"b" * 20], max_bytes=1000)
    assert leftovers(store) == [] and stored_files(store) == [first.sha256] and store.used_bytes == 60
    assert store.save_iter([b"a" * 20, b"a" * 20], max_bytes=1000).size == 40
    assert store.used_bytes == 100
    # content stored already needs no room, even in a full store
    assert store.save_iter([b"a" * 30, b"a" * 30], max_bytes=1000) == first and store.used_bytes == 100
    store.delete(first.sha256)
    assert store.used_bytes == 40
    with pytest.raises(UploadTooLargeError, match="storage budget is 100 bytes"):
        store.save_iter([b"c" * 50, b"c" * 51], max_bytes=1000)  # larger than the whole budget: 413, not 507
    assert leftovers(store) == [] and store._pending == 0 and store.used_bytes == 40


def test_a_declared_size_larger_than_the_budget_is_refused_before_any_byte(tmp_path):
    store = BlobStore(tmp_path / "blobs", budget_bytes=100)

    def never():
        raise AssertionError("nothing should be read")
        yield b""

    with pytest.raises(UploadTooLargeError):
        asyncio.run(store.save_stream(never(), max_bytes=1000, expected_size=101))
    assert leftovers(store) == []


def test_when_the_budget_runs_out_the_temp_file_goes_at_once(tmp_path):
    store = BlobStore(tmp_path / "blobs", budget_bytes=100)
    store.save_iter([b"x" * 90], max_bytes=1000)
    pending = _PendingBlob(store, 1000)
    pending.write(b"y" * 5)
    assert len(leftovers(store)) == 1
    pending.write(b"y" * 10)
    assert leftovers(store) == [] and store._pending == 0
    with pytest.raises(StorageFullError):
        pending.finish()
    assert leftovers(store) == [] and store.used_bytes == 90


def test_concurrent_writes_share_the_budget(tmp_path):
    store = BlobStore(tmp_path / "blobs", budget_bytes=100)
    one, two = _PendingBlob(store, 1000), _PendingBlob(store, 1000)
    one.write(b"1" * 60)
    two.write(b"2" * 60)  # does not fit beside the first: its temp file is dropped
    assert len(leftovers(store)) == 1
    with pytest.raises(StorageFullError):
        two.finish()
    one.finish()
    assert store.used_bytes == 60 and store._pending == 0 and leftovers(store) == []


def test_the_count_is_taken_from_the_disk_at_start(tmp_path):
    BlobStore(tmp_path / "blobs").save_iter([b"k" * 70], max_bytes=1000)
    reopened = BlobStore(tmp_path / "blobs", budget_bytes=100)
    assert reopened.used_bytes == 70
    with pytest.raises(StorageFullError):
        reopened.save_iter([b"m" * 40], max_bytes=1000)


def test_min_free_disk_is_kept(tmp_path, monkeypatch):
    store = BlobStore(tmp_path / "blobs", min_free_bytes=1000)
    monkeypatch.setattr(storage.shutil, "disk_usage", lambda _p: shutil_usage(free=1500))
    assert store.save_iter([b"s" * 400], max_bytes=10_000).size == 400
    with pytest.raises(StorageFullError, match="disk is nearly full"):
        store.save_iter([b"t" * 600], max_bytes=10_000)
    assert leftovers(store) == []


def shutil_usage(free: int):
    import shutil

    return shutil._ntuple_diskusage(10 * free, 9 * free, free)
