from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.errors import CorruptMediaError, MediaTooLargeError, MissingFileError, UnsupportedMediaError
from fakescope.media import MediaLimits, load_image, probe


def _check_rgb(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("name", ["png", "bmp", "gif", "tiff", "webp", "jpeg"])
def test_load_image_formats(media: dict[str, Path], name: str) -> None:
    image = load_image(media[name])
    _check_rgb(image, (20, 40))
    red, black = image[2, 2].astype(int), image[15, 30].astype(int)
    assert red[0] > 200 and red[1] < 60 and red[2] < 60
    assert black.max() < 40


def test_exif_orientation_6_is_turned_clockwise(media: dict[str, Path]) -> None:
    image = load_image(media["jpeg_exif6"])
    _check_rgb(image, (40, 20))
    # The red block stored top-left shows top-right once turned 90 degrees clockwise.
    assert image[2, 17, 0] > 200 and image[2, 17, 1] < 60
    assert image[2, 2].max() < 40


def test_exif_orientation_8_in_png(media: dict[str, Path]) -> None:
    image = load_image(media["png_exif8"])
    _check_rgb(image, (40, 20))
    assert tuple(image[37, 2]) == (255, 0, 0)


def test_alpha_is_composited_on_white(media: dict[str, Path]) -> None:
    image = load_image(media["png_alpha"])
    _check_rgb(image, (4, 4))
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[3, 3]) == (255, 255, 255)
    assert abs(int(image[0, 1, 0]) - 127) <= 1


def test_16_bit_png_is_scaled_not_clipped(media: dict[str, Path]) -> None:
    with Image.open(media["png16"]) as raw:
        assert raw.mode.startswith("I")
    image = load_image(media["png16"])
    _check_rgb(image, (1, 3))
    assert image[0, :, 0].tolist() == [0, 128, 255]


def test_cmyk_becomes_rgb(media: dict[str, Path]) -> None:
    image = load_image(media["cmyk"])
    _check_rgb(image, (8, 8))
    assert image[4, 4, 0] > 200 and image[4, 4, 1] < 60 and image[4, 4, 2] < 60


def test_palette_and_gray_become_rgb(media: dict[str, Path]) -> None:
    with Image.open(media["palette"]) as raw:
        expected = raw.convert("RGB").getpixel((0, 0))
    palette = load_image(media["palette"])
    _check_rgb(palette, (8, 8))
    assert tuple(palette[0, 0]) == expected
    gray = load_image(media["gray"])
    _check_rgb(gray, (6, 8))
    assert tuple(gray[5, 7]) == (77, 77, 77)


def test_truncated_jpeg(tmp_path: Path) -> None:
    source = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(source)
    path = tmp_path / "cut.jpg"
    path.write_bytes(source.read_bytes()[:1500])
    with pytest.raises(CorruptMediaError, match=r"cut\.jpg: corrupt or truncated image \(image file is truncated"):
        load_image(path)


def test_pixel_limit_checked_before_decoding(media: dict[str, Path]) -> None:
    with pytest.raises(MediaTooLargeError, match="image is too large"):
        load_image(media["png"], MediaLimits(max_image_pixels=799))
    assert load_image(media["png"], MediaLimits(max_image_pixels=800)).shape == (20, 40, 3)


def test_video_is_not_an_image(media: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedMediaError, match=r"clip\.mp4: not an image \(video file\)"):
        load_image(media["mp4"])


def test_missing_image(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        load_image(tmp_path / "missing.jpg")


@pytest.mark.parametrize("name", ["jpeg_exif6", "png_alpha", "webp"])
def test_probed_image_is_decoded_without_sniffing_it_again(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The Detector probes first and hands the MediaInfo on: loading must not check or sniff the file
    # again, and must give exactly the pixels a fresh load gives (EXIF orientation and alpha included).
    path = media[name]
    info, fresh = probe(path), load_image(path)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a probed image was checked or sniffed again")

    monkeypatch.setattr(sys.modules["fakescope.media.image"], "sniff_kind", refuse)
    monkeypatch.setattr(sys.modules["fakescope.media.image"], "check_file", refuse)
    np.testing.assert_array_equal(load_image(path, info=info), fresh)
