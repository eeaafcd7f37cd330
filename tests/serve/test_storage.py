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
from fakescope.serve.storage import SNIFF_BYTES, BlobStore, EmptyUploadError, UploadTooLargeError, format_bytes
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
