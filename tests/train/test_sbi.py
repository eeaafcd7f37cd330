"""Self-blended images: the pseudo-fake changes only the face region, reproducibly."""

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.faces import Face, create_face_detector
from fakescope.train import landmarks as landmarks_module
from fakescope.train.landmarks import face_landmarks
from fakescope.train.sbi import SelfBlendedDataset, self_blend
from tests.conftest import shared

# MTCNN's points on a face-centred 224-px DFDC crop (eyes, nose, mouth corners).
POINTS = np.array([[72, 104], [150, 103], [112, 135], [80, 168], [144, 167]], dtype=np.float32)


@pytest.fixture(scope="module")
def crops():
    paths = sorted(shared("dfdc_faces", "real").glob("*.jpg"))[:3]
    return paths, [np.asarray(Image.open(p).convert("RGB")) for p in paths]


@pytest.mark.parametrize("points", [POINTS, None])
def test_blend_changes_only_the_masked_face(crops, points):
    image = crops[1][0]
    for seed in range(8):
        out, mask = self_blend(image, points, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask.max() > 0.2
        core = mask >= 0.5 * mask.max()
        assert 0.1 < core.mean() < 0.9
        assert core[112, 112], "the face centre is inside the mask"
        diff = np.abs(out.astype(int) - image.astype(int))
        assert diff[mask == 0].max(initial=0) <= 1
        assert (mask == 0).any()
        assert diff[core].mean() > 1.0


def test_blend_is_deterministic_per_rng(crops):
    image = crops[1][1]
    a = self_blend(image, POINTS, np.random.default_rng(3))
    b = self_blend(image, POINTS, np.random.default_rng(3))
    c = self_blend(image, POINTS, np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_blend_rejects_bad_inputs(crops):
    with pytest.raises(ValueError, match="uint8"):
        self_blend(crops[1][0].astype(np.float32), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(crops[1][0], POINTS[:3], np.random.default_rng(0))


def test_dataset_turns_reals_into_fakes_and_keeps_fakes(crops):
    images = np.stack(crops[1] + [crops[1][0]])
    labels = [0, 0, 0, 1]
    dataset = SelfBlendedDataset(images, labels, [POINTS, None, POINTS, POINTS], p=1.0, transform=lambda t: t)
    torch.manual_seed(0)
    items = [dataset[i] for i in range(len(dataset))]
    assert [int(label) for _, label in items] == [1, 1, 1, 1]
    assert all(t.shape == (3, 224, 224) and t.dtype == torch.uint8 for t, _ in items)
    assert not torch.equal(items[0][0], torch.from_numpy(images[0]).permute(2, 0, 1))
    assert torch.equal(items[3][0], torch.from_numpy(images[3]).permute(2, 0, 1))

    untouched = SelfBlendedDataset(images, labels, [None] * 4, p=0.0, transform=lambda t: t)
    assert [int(untouched[i][1]) for i in range(4)] == labels
    assert torch.equal(untouched[0][0], torch.from_numpy(images[0]).permute(2, 0, 1))


def test_dataset_is_repeatable_under_a_torch_seed(crops):
    images = np.stack(crops[1])
    dataset = SelfBlendedDataset(images, [0, 0, 0], [POINTS] * 3, p=0.5, transform=lambda t: t)
    torch.manual_seed(5)
    first = [dataset[i][0] for i in range(3)]
    torch.manual_seed(5)
    assert all(torch.equal(a, dataset[i][0]) for i, a in enumerate(first))


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_landmarks_are_cached_and_reused(crops, tmp_path, monkeypatch, suffix):
    torch.set_num_threads(1)
    paths = crops[0]
    cache = tmp_path / f"landmarks{suffix}"
    first = face_landmarks(paths, cache, detector=create_face_detector("mtcnn"))
    assert cache.is_file() and set(first) == {str(p) for p in paths}
    for points in first.values():
        assert points is not None and points.shape == (5, 2) and points.dtype == np.float32
        left_eye, right_eye, nose, mouth_left, mouth_right = points
        assert left_eye[0] < nose[0] < right_eye[0] and nose[1] < (mouth_left[1] + mouth_right[1]) / 2
        assert (np.abs(points - 112) < 112).all()

    def broken(*args, **kwargs):
        raise AssertionError("cached landmarks must not be recomputed")

    monkeypatch.setattr(landmarks_module, "create_face_detector", broken)
    again = face_landmarks(paths, cache)
    assert all(np.array_equal(first[k], again[k]) for k in first)


class CountingFaceDetector:
    """Finds one face (with POINTS) in images that are not flat; counts the images it saw."""

    name = "counting"

    def __init__(self):
        self.seen = 0

    def detect(self, images):
        self.seen += len(images)
        face = Face(box=(40.0, 40.0, 184.0, 200.0), score=0.99, landmarks=tuple(map(tuple, POINTS.tolist())))
        return [[face] if im.std() > 0 else [] for im in images]


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_changed_files_are_recomputed_and_misses_kept(crops, tmp_path, suffix):
    face, flat = tmp_path / "face.png", tmp_path / "flat.png"
    Image.fromarray(crops[1][0]).save(face)
    Image.fromarray(np.full((224, 224, 3), 128, np.uint8)).save(flat)
    cache, detector = tmp_path / f"cache{suffix}", CountingFaceDetector()
    marks = face_landmarks([face, flat], cache, detector=detector)
    assert np.allclose(marks[str(face)], POINTS, atol=0.01) and marks[str(flat)] is None
    assert detector.seen == 3, "the miss is retried once on a padded copy"
    assert face_landmarks([face, flat], cache, detector=detector)[str(flat)] is None and detector.seen == 3
    Image.fromarray(crops[1][1]).save(face)
    face_landmarks([face, flat], cache, detector=detector)
    assert detector.seen == 4


def test_from_face_crops_rescales_landmarks(crops, tmp_path):
    from fakescope.data import Sample
    from fakescope.data.images import FaceCropDataset

    samples = [Sample(path=p, label=0, group=p.name, split="train") for p in crops[0][:2]]
    dataset = FaceCropDataset(samples, 112, transform=lambda t: t)
    wrapped = SelfBlendedDataset.from_face_crops(dataset, {str(crops[0][0]): POINTS}, p=1.0, transform=lambda t: t)
    assert np.allclose(wrapped.landmarks[0], POINTS / 2) and wrapped.landmarks[1] is None
    torch.manual_seed(0)
    image, label = wrapped[0]
    assert int(label) == 1 and image.shape == (3, 112, 112)
