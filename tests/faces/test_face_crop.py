from __future__ import annotations

import numpy as np
import pytest

from fakescope.faces import center_crop, crop_face
from fakescope.faces.crop import FACE_CROP_FILL, fills_picture, square_region


def coordinate_image(height: int = 200, width: int = 300) -> np.ndarray:
    """R = x, G = y, B = x + y (mod 256): every pixel says where it came from."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, (xs + ys) % 256], axis=-1).astype(np.uint8)


def test_box_in_the_middle_is_an_exact_cut() -> None:
    image = coordinate_image()
    out = crop_face(image, (100, 50, 140, 90), margin=0.0, size=40)
    np.testing.assert_array_equal(out, image[50:90, 100:140])


def test_margin_grows_the_square_around_the_centre() -> None:
    image = coordinate_image()
    out = crop_face(image, (100, 50, 140, 90), margin=0.5, size=60)
    np.testing.assert_array_equal(out, image[40:100, 90:150])


def test_margin_arithmetic() -> None:
    assert square_region((0, 0, 100, 100), 0.3) == (-15, -15, 130)
    assert square_region((10, 10, 30, 50), 0.0) == (0, 10, 40)


def test_non_square_box_uses_its_long_side() -> None:
    image = coordinate_image()
    out = crop_face(image, (100, 20, 120, 100), margin=0.0, size=80)
    np.testing.assert_array_equal(out, image[20:100, 70:150])


def test_box_at_the_border_replicates_edge_pixels() -> None:
    image = coordinate_image()
    out = crop_face(image, (0, 0, 40, 40), margin=0.5, size=60)
    np.testing.assert_array_equal(out[10:, 10:], image[0:50, 0:50])
    np.testing.assert_array_equal(out[:10, 10:], np.broadcast_to(image[0, 0:50], (10, 50, 3)))
    np.testing.assert_array_equal(out[10:, :10], np.broadcast_to(image[0:50, :1], (50, 10, 3)))
    assert (out[:10, :10] == image[0, 0]).all()


def test_box_at_bottom_right_corner() -> None:
    image = coordinate_image()
    out = crop_face(image, (280, 180, 300, 200), margin=1.0, size=40)
    np.testing.assert_array_equal(out[:30, :30], image[170:200, 270:300])
    assert (out[30:, 30:] == image[199, 299]).all()


def test_box_outside_the_image_gives_edge_colour() -> None:
    image = coordinate_image()
    out = crop_face(image, (400, 50, 440, 90), margin=0.0, size=40)
    np.testing.assert_array_equal(out, np.broadcast_to(image[50:90, 299:300], (40, 40, 3)))


@pytest.mark.parametrize("box, size", [((100, 50, 140, 90), 224), ((10, 10, 190, 190), 64)])
def test_output_size_dtype_and_layout(box: tuple[int, int, int, int], size: int) -> None:
    out = crop_face(coordinate_image(), box, margin=0.3, size=size)
    assert out.shape == (size, size, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_resizing_keeps_a_flat_colour_flat() -> None:
    image = np.full((100, 100, 3), (10, 200, 30), np.uint8)
    for size in (16, 299):
        out = crop_face(image, (20, 20, 80, 80), margin=0.3, size=size)
        assert (out == (10, 200, 30)).all()


def test_fractional_box_is_accepted() -> None:
    out = crop_face(coordinate_image(), (100.4, 50.6, 139.7, 90.2), margin=0.0, size=40)
    assert out.shape == (40, 40, 3)


def test_bad_inputs_are_rejected() -> None:
    image = coordinate_image()
    with pytest.raises(ValueError):
        crop_face(image.astype(np.float32), (0, 0, 10, 10), margin=0.0, size=8)
    with pytest.raises(ValueError):
        crop_face(image[..., 0], (0, 0, 10, 10), margin=0.0, size=8)
    with pytest.raises(ValueError):
        crop_face(image, (10, 10, 10, 10), margin=0.0, size=8)
    with pytest.raises(ValueError):
        crop_face(image, (0, 0, 10, 10), margin=0.0, size=0)


def test_center_crop_landscape_and_portrait() -> None:
    landscape = coordinate_image(200, 300)
    np.testing.assert_array_equal(center_crop(landscape, 200), landscape[:, 50:250])
    portrait = coordinate_image(300, 200)
    np.testing.assert_array_equal(center_crop(portrait, 200), portrait[50:250, :])


def test_center_crop_resizes_and_is_contiguous() -> None:
    mirrored = coordinate_image()[:, ::-1]
    out = center_crop(mirrored, 64)
    assert out.shape == (64, 64, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_shift_moves_the_square_down_by_a_fraction_of_the_long_side():
    assert square_region((0, 0, 100, 100), 0.0, 0.1) == (0, 10, 100)
    assert square_region((10, 10, 30, 50), -0.5, 0.25) == (10, 30, 20)


@pytest.mark.parametrize(
    ("box", "fills"),
    [
        ((20, 10, 220, 190), True),  # a face crop: the box spans 200 of the 200 px shorter side
        ((50, 50, 150, 130), True),  # exactly half the shorter side: the bound is inclusive
        ((50, 50, 149, 149), False),  # just under half
        ((100, 60, 140, 110), False),  # a face in a wider scene
        ((0, 0, 120, 40), True),  # the box's long side counts, whichever way it lies
    ],
)
def test_fills_picture_when_the_face_spans_half_the_shorter_side(box, fills) -> None:
    assert fills_picture(box, 200, 300) is fills  # height 200, width 300: the shorter side is 200
    assert fills_picture(box, 300, 200) is fills  # the same, on its side


def test_fills_picture_share_is_adjustable() -> None:
    assert FACE_CROP_FILL == 0.5
    assert not fills_picture((0, 0, 100, 100), 200, 200, fill=0.6)
    assert fills_picture((0, 0, 60, 60), 200, 200, fill=0.3)
