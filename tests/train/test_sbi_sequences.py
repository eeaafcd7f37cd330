"""Self-blended sequences: one blend configuration per sequence, a little per-frame jitter, files made once."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fakescope.data import Sample, SequenceSample
from fakescope.data.images import load_rgb
from fakescope.data.sequences import face_sequences
from fakescope.errors import FakescopeError
from fakescope.train import sbi_sequences
from fakescope.train.sbi import FAKE, REAL, self_blend_parts
from fakescope.train.sbi_sequences import self_blend_sequence, self_blended_sequences, sequence_seed

SIZE, T = 128, 6
TEXTURE = np.random.default_rng(7).integers(0, 60, size=(SIZE, SIZE + T, 3)).astype(np.uint8)


def face_frame(t: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A textured ellipse face with eyes and mouth on a textured background, moved t pixels right,
    and its five landmarks (eyes, nose, mouth corners). Texture makes blur and sharpening visible."""
    scale = size / SIZE
    cx, cy = round((64 + t) * scale), round(66 * scale)
    image = cv2.add(np.full((size, size, 3), (60, 90, 130), np.uint8), cv2.resize(TEXTURE[:, :SIZE], (size, size)) // 2)
    face = np.zeros((size, size), np.uint8)
    cv2.ellipse(face, (cx, cy), (round(24 * scale), round(32 * scale)), 0, 0, 360, 1, -1)
    skin = cv2.add(np.full_like(image, (200, 150, 120)), cv2.resize(TEXTURE[:, t : t + SIZE], (size, size)))
    image = np.where(face[..., None] > 0, skin, image)
    points = np.array([[cx - 9, cy - 8], [cx + 9, cy - 8], [cx, cy + 2], [cx - 7, cy + 14], [cx + 7, cy + 14]], np.float32)
    for x, y in points[:2]:
        cv2.circle(image, (int(x), int(y)), round(3 * scale), (40, 30, 30), -1)
    cv2.ellipse(image, (cx, cy + round(14 * scale)), (round(8 * scale), round(3 * scale)), 0, 0, 360, (150, 60, 60), -1)
    return image, points


@pytest.fixture(scope="module")
def faces():
    pairs = [face_frame(t) for t in range(T)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int32) - b.astype(np.int32)).sum(axis=2)


@pytest.mark.parametrize("with_points", [True, False])
def test_blend_draws_do_not_depend_on_pixels(faces, with_points):
    """Why one seed gives one configuration for every frame: the mask never depends on the pixels."""
    images, points = faces
    flat = np.full_like(images[0], 128)
    for seed in range(6):
        lm = points[0] if with_points else None
        a = self_blend_parts(images[0], lm, np.random.default_rng(seed))[1]
        b = self_blend_parts(flat, lm, np.random.default_rng(seed))[1]
        c = self_blend_parts(images[3], lm, np.random.default_rng(seed))[1]
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_same_seed_same_sequence(faces):
    images, points = faces
    a = self_blend_sequence(images, points, 5)
    b = self_blend_sequence(images, points, 5)
    c = self_blend_sequence(images, points, 6)
    assert len(a) == T and all(x.shape == images[0].shape and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_face_changes_and_far_background_does_not(faces):
    images, points = faces
    for seed in range(6):
        for frame, out in zip(images, self_blend_sequence(images, points, seed), strict=True):
            diff = _diff(out, frame)
            assert diff[50:82, 55:80].mean() > 3, f"seed {seed}: the face centre is blended"
            border = np.ones_like(diff, dtype=bool)
            border[12:-12, 12:-12] = False
            assert diff[border].max() == 0, f"seed {seed}: pixels far outside the face are untouched"


def _centroid(weights: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(weights.shape)
    return np.array([(weights * rows).sum(), (weights * cols).sum()]) / weights.sum()


def _mask_track(outputs: list[np.ndarray]) -> tuple[float, float]:
    """On flat grey frames the change is the mask times one colour shift: return the largest
    frame-to-frame centroid motion beyond the landmarks' 1 px/frame, and the smallest overlap."""
    weights = [np.abs(o.astype(np.float64) - 128).sum(axis=2) for o in outputs]
    centres = [_centroid(w) for w in weights]
    motion = max(np.linalg.norm(centres[i + 1] - centres[i] - (0, 1)) for i in range(T - 1))
    support = [w > 0 for w in weights]
    overlap = min((support[i] & support[i + 1]).sum() / (support[i] | support[i + 1]).sum() for i in range(T - 1))
    return float(motion), float(overlap)


def test_mask_follows_the_face_and_moves_only_by_the_jitter():
    flat = [np.full((96, 96, 3), 128, np.uint8)] * T
    cx = [48 + t for t in range(T)]  # the face moves 1 px per frame
    points = [np.array([[x - 14, 38], [x + 14, 38], [x, 52], [x - 11, 70], [x + 11, 70]], np.float32) for x in cx]
    checked = 0
    for seed in range(8):
        outputs = self_blend_sequence(flat, points, seed, jitter_px=1.5)
        if min(np.abs(o.astype(int) - 128).sum() for o in outputs) < 5000:
            continue  # a frequency-only blend leaves a flat frame flat: nothing to measure
        motion, overlap = _mask_track(outputs)
        assert motion <= 2 * 1.5 + 0.5, f"seed {seed}: two frames' shifts differ by at most twice jitter_px"
        assert overlap > 0.8, f"seed {seed}: the same mask shape in every frame"
        still, _ = _mask_track(self_blend_sequence(flat, points, seed, jitter_px=0.0, ratio_jitter=0.0))
        assert still < 0.3, f"seed {seed}: without jitter the mask moves exactly with the landmarks"
        shifted, _ = _mask_track(self_blend_sequence(flat, points, seed, jitter_px=1.5, ratio_jitter=0.0))
        assert 0.5 < shifted <= 2 * 1.5 + 0.5, f"seed {seed}: the shift jitter moves the blended region"
        # Independent blends per frame (what one configuration per sequence avoids) jump much more.
        apart = [self_blend_sequence([flat[t]], [points[t]], 1000 * seed + t + 1)[0] for t in range(T)]
        if min(np.abs(o.astype(int) - 128).sum() for o in apart) >= 5000:
            assert _mask_track(apart)[1] < overlap
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize(("jitter_px", "ratio_jitter"), [(1.5, 0.1), (1.5, 0.0), (0.0, 0.1)])
def test_jitter_makes_the_blend_flicker(faces, jitter_px, ratio_jitter):
    images, points = faces
    static, static_points = [images[0]] * T, [points[0]] * T
    steady = self_blend_sequence(static, static_points, 3, jitter_px=0.0, ratio_jitter=0.0)
    assert all(np.array_equal(steady[0], s) for s in steady), "one configuration: still frames blend identically"
    flicker = self_blend_sequence(static, static_points, 3, jitter_px=jitter_px, ratio_jitter=ratio_jitter)
    changes = [_diff(flicker[i + 1], flicker[i]) for i in range(T - 1)]
    assert all(c.any() for c in changes), "every frame's jitter differs"
    assert len({c.tobytes() for c in changes}) == T - 1
    assert max(c.mean() for c in changes) < _diff(flicker[0], static[0]).mean(), "jitter is small next to the blend"


def test_missing_landmarks_borrow_the_nearest_frame(faces):
    images, points = faces
    gap = [*points[:2], None, *points[3:]]
    filled = [*points[:2], points[1], *points[3:]]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(self_blend_sequence(images, gap, 2), self_blend_sequence(images, filled, 2), strict=True)
    )


def test_a_frame_whose_hull_misses_the_image_sends_all_frames_to_the_ellipse(faces):
    images, points = faces
    off = [*points[:3], points[3] - 1000, *points[4:]]  # an empty hull: self_blend_parts draws an ellipse
    ellipse = self_blend_sequence(images, [None] * T, 4)
    assert all(np.array_equal(a, b) for a, b in zip(self_blend_sequence(images, off, 4), ellipse, strict=True))


def test_bad_sequences_are_refused(faces):
    images, points = faces
    with pytest.raises(FakescopeError, match="no frames"):
        self_blend_sequence([], [], 0)
    with pytest.raises(FakescopeError, match="landmark entries"):
        self_blend_sequence(images, points[:2], 0)
    with pytest.raises(FakescopeError, match="share a size"):
        self_blend_sequence([images[0], images[1][:64]], [None, None], 0)
    with pytest.raises(FakescopeError, match="uint8"):
        self_blend_sequence([images[0].astype(np.float32)], [None], 0)
    with pytest.raises(FakescopeError, match="jitter"):
        self_blend_sequence(images, points, 0, ratio_jitter=1.5)


# --- written sequences -------------------------------------------------------------------------


def _cache(root: Path) -> list[SequenceSample]:
    """A crop cache of two real videos (8 and 3 crops of 64 px) and one fake, as sequences of 4."""
    crops = []
    for video, n, label, split in (("real_a", 8, REAL, "train"), ("real_b", 3, REAL, "val"), ("fake_a", 4, FAKE, "train")):
        (root / video).mkdir(parents=True)
        for t in range(n):
            path = root / video / f"{3 * t}.jpg"
            Image.fromarray(face_frame(t, 64)[0]).save(path, format="JPEG", quality=95)
            crops.append(Sample(path, label, "src-a" if video != "real_b" else "src-b", split, {"dataset": "toy"}))
    return face_sequences(crops, length=4, stride=4)


@pytest.fixture
def reals(tmp_path):
    return [s for s in _cache(tmp_path / "crops") if s.label == REAL]


def test_writes_fake_sequences_beside_their_reals(tmp_path, reals):
    fakes = self_blended_sequences(reals, tmp_path / "sbi", seed=1)
    assert [(f.video, f.start, f.group, f.split) for f in fakes] == [(r.video, r.start, r.group, r.split) for r in reals]
    assert all(f.label == FAKE and f.info == {"dataset": "toy", "method": "sbi"} for f in fakes)
    for real, fake in zip(reals, fakes, strict=True):
        assert fake.frames == tuple(
            tmp_path / "sbi" / "1" / f"{real.video}-{real.start}" / f"{i}.jpg" for i in range(len(real.frames))
        )
        frames = np.stack([load_rgb(p, 64) for p in fake.frames])
        originals = np.stack([load_rgb(p, 64) for p in real.frames])
        assert frames.shape == originals.shape
        assert _diff(frames[0], originals[0])[24:40, 24:40].mean() > 3, "the face is blended"
    assert not list((tmp_path / "sbi").rglob("*.tmp"))


def test_files_are_written_once_and_rebuilt_identically(tmp_path, reals, monkeypatch):
    first = self_blended_sequences(reals, tmp_path / "sbi", seed=1)
    contents = {p: p.read_bytes() for f in first for p in f.frames}
    writes = []
    write = sbi_sequences._write_jpeg
    monkeypatch.setattr(sbi_sequences, "_write_jpeg", lambda path, image: (writes.append(path), write(path, image)))
    assert self_blended_sequences(reals, tmp_path / "sbi", seed=1) == first
    assert writes == [], "a finished run is reused, not rewritten"
    lost = first[1].frames[2]
    lost.unlink()
    self_blended_sequences(reals, tmp_path / "sbi", seed=1)
    assert writes == [lost], "a resumed run writes only what is missing"
    assert all(p.read_bytes() == data for p, data in contents.items()), "a rerun gives identical files"
    elsewhere = self_blended_sequences(reals, tmp_path / "again", seed=1)
    assert all(
        a.read_bytes() == contents[b]
        for f, g in zip(elsewhere, first, strict=True)
        for a, b in zip(f.frames, g.frames, strict=True)
    )
    other = self_blended_sequences(reals, tmp_path / "sbi", seed=2)
    assert other[0].frames[0].parent.parent.name == "2"
    assert other[0].frames[0].read_bytes() != first[0].frames[0].read_bytes()


def test_sequence_seed_depends_on_the_run_and_the_sequence(reals):
    seeds = {sequence_seed(1, r) for r in reals} | {sequence_seed(2, r) for r in reals}
    assert len(seeds) == 2 * len(reals)
    assert sequence_seed(1, reals[0]) == sequence_seed(1, reals[0])


def test_landmarks_are_read_per_sequence_and_rescaled(tmp_path, reals, monkeypatch):
    seen, given = [], []

    def landmarks(paths):
        seen.append(tuple(paths))
        return [face_frame(int(p.stem) // 3, 64)[1] for p in paths]

    def spy(frames, points, seed, **kwargs):
        given.append((frames[0].shape, points))
        return list(frames)

    monkeypatch.setattr(sbi_sequences, "self_blend_sequence", spy)
    self_blended_sequences(reals[:1], tmp_path / "sbi", seed=0, landmarks=landmarks, size=32)
    assert seen == [reals[0].frames]
    shape, points = given[0]
    assert shape == (32, 32, 3)
    assert np.allclose(points[0], face_frame(0, 64)[1] / 2), "points follow the crops from 64 to 32 px"


def test_landmark_count_must_match(tmp_path, reals):
    with pytest.raises(FakescopeError, match="landmarks gave 1 entries for 4 frames"):
        self_blended_sequences(reals, tmp_path / "sbi", seed=0, landmarks=lambda paths: [None])


def test_fake_sequences_are_refused(tmp_path):
    sequences = _cache(tmp_path / "crops")
    with pytest.raises(FakescopeError, match="only REAL sequences.*fake_a-0"):
        self_blended_sequences(sequences, tmp_path / "sbi", seed=0)
    assert not (tmp_path / "sbi").exists()
