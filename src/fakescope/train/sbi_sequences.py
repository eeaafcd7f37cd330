"""Self-blended pseudo-fake sequences: temporal training data made from real videos alone.

A face swap is applied frame by frame with one set of settings, so its traces persist along
the video (the same colour mismatch and boundary) while the boundary and blend strength
wobble a little from frame to frame as the per-frame alignment errs. `self_blend_sequence`
mimics that: one SBI configuration (`sbi.self_blend_parts` drawn from the same seed, whose
draws never depend on the pixels) for every frame, plus a small per-frame shift of the blended
region and blend-ratio wobble, so a temporal model learns the flicker and boundary motion of a
swap rather than a single-image artefact.

Files are laid out as `<out_dir>/<seed>/<video>-<start>/<i>.jpg`, written once (via a temporary
file) and reused, so an interrupted run resumes and a rerun gives identical files.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fakescope.data.crop_cache import JPEG_QUALITY
from fakescope.data.images import load_rgb
from fakescope.data.samples import SequenceSample
from fakescope.errors import FakescopeError
from fakescope.progress import progress
from fakescope.train.sbi import FAKE, REAL, resized_landmarks, self_blend_parts

Landmarks = Callable[[Sequence[Path]], list[np.ndarray | None]]


def self_blend_sequence(
    frames: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray | None],
    seed: int,
    *,
    jitter_px: float = 1.5,
    ratio_jitter: float = 0.1,
) -> list[np.ndarray]:
    """One self-blended pseudo-fake of a face sequence: one blend configuration, per-frame jitter.

    `frames` are (H, W, 3) uint8 RGB crops of one size, `landmarks` MTCNN's five points per frame
    in its pixels (None: not found). A frame without points borrows its nearest neighbour's, so
    the mask does not jump to the ellipse fallback mid-sequence; with none at all every frame uses
    the ellipse. Each frame's blended region is then shifted by up to `jitter_px` pixels and its
    mask scaled by 1 ± `ratio_jitter`, both drawn from a second generator seeded from `seed`.
    Pixels where the (shifted) mask is 0 are returned unchanged.
    """
    _check_sequence(frames, landmarks, seed, jitter_px, ratio_jitter)
    blend_seed, jitter_seed = np.random.SeedSequence(seed).spawn(2)
    try:
        parts = _blend_parts(frames, _filled(landmarks), blend_seed)
    except ValueError as err:  # not uint8 RGB frames, or not five points
        raise FakescopeError(f"self_blend_sequence: {err}") from None
    jitter = np.random.default_rng(jitter_seed)
    return [_jittered(frame, *part, jitter, jitter_px, ratio_jitter) for frame, part in zip(frames, parts, strict=True)]


def _check_sequence(
    frames: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None], seed: int, jitter_px: float, ratio_jitter: float
) -> None:
    if not frames:
        raise FakescopeError("self_blend_sequence: the sequence has no frames")
    if len(frames) != len(landmarks):
        raise FakescopeError(f"self_blend_sequence: {len(frames)} frames but {len(landmarks)} landmark entries")
    shapes = {np.shape(frame) for frame in frames}
    if len(shapes) > 1:
        raise FakescopeError(f"self_blend_sequence: frames of one sequence must share a size, got {sorted(shapes)}")
    if seed < 0:
        raise FakescopeError(f"self_blend_sequence: seed must be >= 0, got {seed}")
    if jitter_px < 0 or not 0 <= ratio_jitter < 1:
        raise FakescopeError(f"self_blend_sequence: need jitter_px >= 0, 0 <= ratio_jitter < 1: got {jitter_px}, {ratio_jitter}")


def _filled(landmarks: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    """Each missing entry replaced by the nearest found one (the earlier on a tie); all None if none is."""
    found = [i for i, points in enumerate(landmarks) if points is not None]
    if not found:
        return [None] * len(landmarks)
    return [landmarks[min(found, key=lambda j: (abs(j - i), j))] for i in range(len(landmarks))]


def _blend_parts(
    frames: Sequence[np.ndarray], landmarks: Sequence[np.ndarray | None], seed: np.random.SeedSequence
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Source and mask per frame, every frame from the same generator state.

    The draws are the same only if every frame takes the same path through `self_blend_parts`;
    a degenerate landmark hull sends one frame to the ellipse fallback, which draws more. The
    generators' end states tell; if they differ, the whole sequence falls back to the ellipse.
    """
    parts, states = [], set()
    for frame, points in zip(frames, landmarks, strict=True):
        rng = np.random.default_rng(seed)
        parts.append(self_blend_parts(frame, points, rng))
        states.add(repr(rng.bit_generator.state))
    if len(states) > 1:
        return [self_blend_parts(frame, None, np.random.default_rng(seed)) for frame in frames]
    return parts


def _jittered(
    frame: np.ndarray, source: np.ndarray, mask: np.ndarray, rng: np.random.Generator, jitter_px: float, ratio_jitter: float
) -> np.ndarray:
    """Blend with the source and mask shifted by a random sub-pixel offset (uniform in a disc of
    radius `jitter_px`) and the mask scaled by a random gain; always three draws per frame."""
    radius, angle = jitter_px * np.sqrt(rng.random()), rng.uniform(0.0, 2 * np.pi)
    gain = 1.0 + rng.uniform(-ratio_jitter, ratio_jitter)
    height, width = frame.shape[:2]
    shift = np.array([[1.0, 0.0, radius * np.cos(angle)], [0.0, 1.0, radius * np.sin(angle)]])
    source = cv2.warpAffine(source, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = cv2.warpAffine(mask, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.clip(mask * np.float32(gain), 0.0, 1.0).astype(np.float32)
    return cv2.blendLinear(source, np.ascontiguousarray(frame), mask, 1.0 - mask)


def self_blended_sequences(
    reals: Sequence[SequenceSample],
    out_dir: Path,
    *,
    seed: int,
    landmarks: Landmarks | None = None,
    size: int | None = None,
) -> list[SequenceSample]:
    """A FAKE pseudo-fake sequence for every REAL sequence, written as JPEGs and reused after.

    Each keeps its real's group, split and video, so a pseudo-fake never straddles the split from
    its source, and `info` gains `method: sbi`. `landmarks` maps a sequence's crop files to their
    points in the files' pixels (e.g. from `landmarks.face_landmarks`); without it the ellipse
    stands in. `size` resizes the crops first (as `load_rgb`); None keeps theirs.
    The per-sequence seed comes from `seed` and `<video>-<start>`, so a rerun gives the same files.
    Existing files are reused as they are: use a new `out_dir` or `seed` after changing `size`.
    """
    fakes = [f"{s.video}-{s.start}" for s in reals if s.label != REAL]
    if fakes:
        raise FakescopeError(f"only REAL sequences are self-blended; {len(fakes)} are not, e.g. {fakes[0]}")
    if seed < 0:
        raise FakescopeError(f"seed must be >= 0, got {seed}")
    out: list[SequenceSample] = []
    with progress() as bar:
        task = bar.add_task("self-blended sequences", total=len(reals), info="")
        for real in reals:
            folder = Path(out_dir) / str(seed) / f"{real.video}-{real.start}"
            paths = tuple(folder / f"{i}.jpg" for i in range(len(real.frames)))
            missing = [path for path in paths if not path.is_file()]
            if missing:
                frames = _read_frames(real, size)
                points = _landmarks(real, landmarks, frames)
                blended = self_blend_sequence(frames, points, sequence_seed(seed, real))
                folder.mkdir(parents=True, exist_ok=True)
                for path, image in zip(paths, blended, strict=True):
                    if path in missing:
                        _write_jpeg(path, image)
            info = {**real.info, "method": "sbi"}
            out.append(SequenceSample(paths, FAKE, real.group, real.split, real.video, real.start, info))
            bar.advance(task)
    return out


def sequence_seed(seed: int, sample: SequenceSample) -> int:
    """The seed of one sequence's blend: fixed by the run's seed and the sequence's identity."""
    identity = zlib.crc32(f"{sample.video}-{sample.start}".encode())
    return int(np.random.SeedSequence([seed, identity]).generate_state(1)[0])


def _read_frames(sample: SequenceSample, size: int | None) -> list[np.ndarray]:
    if size is not None:
        return [load_rgb(path, size) for path in sample.frames]
    frames = []
    for path in sample.frames:
        with Image.open(path) as im:
            frames.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return frames


def _landmarks(sample: SequenceSample, landmarks: Landmarks | None, frames: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """Points per frame in the frames' pixels: rescaled from each file's size when it was resized."""
    if landmarks is None:
        return [None] * len(frames)
    points = list(landmarks(sample.frames))
    if len(points) != len(frames):
        raise FakescopeError(f"{sample.video}-{sample.start}: landmarks gave {len(points)} entries for {len(frames)} frames")
    return [
        resized_landmarks(None if p is None else np.asarray(p, dtype=np.float32), path, frame.shape[:2])
        for path, frame, p in zip(sample.frames, frames, points, strict=True)
    ]


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    """JPEG at the crop cache's quality, via a temporary file so a killed run leaves no torn file."""
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    os.replace(tmp, path)
