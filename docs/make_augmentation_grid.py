"""Regenerate docs/img/augmentations.png: each training augmentation on a few DFDC real crops.

    .venv/bin/python docs/make_augmentation_grid.py [--data ../shared/data] [--out docs/img/augmentations.png]

Rows are augmentations, columns are crops; everything is seeded, so a rerun on the same data
gives the same picture. Landmarks for SBI are detected with MTCNN (cached in a temp folder).
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.transforms import v2

from fakescope.train.augment import RandomDownscale, RandomJpeg, cutmix
from fakescope.train.landmarks import face_landmarks
from fakescope.train.sbi import self_blend

ROOT = Path(__file__).resolve().parents[1]
SEED = 7
N_CROPS = 4
TILE = 150
LABEL_W = 150


def pick_crops(data: Path, seed: int) -> tuple[list[Path], list[Path]]:
    """`N_CROPS` real and as many fake crops from the train split, drawn with `seed`."""
    root = data / "dfdc_faces"
    with (root / "labels.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    pick = random.Random(seed)
    reals = sorted(root / r["file"] for r in rows if r["label"] == "REAL")
    fakes = sorted(root / r["file"] for r in rows if r["label"] == "FAKE")
    return pick.sample(reals, N_CROPS), pick.sample(fakes, N_CROPS)


def load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def on_tensor(transform: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    """Run a CHW uint8 tensor transform on an HWC array."""
    return lambda image: transform(torch.from_numpy(image.copy()).permute(2, 0, 1)).permute(1, 2, 0).numpy()


def mask_tile(mask: np.ndarray, points: np.ndarray | None) -> np.ndarray:
    """The SBI mask in grey, with the five landmarks it was built from in red."""
    tile = Image.fromarray(np.rint(mask * 255).astype(np.uint8)).convert("RGB")
    if points is not None:
        draw = ImageDraw.Draw(tile)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(230, 40, 40))
    return np.asarray(tile)


def build_rows(reals: list[Path], fakes: list[Path], cache: Path) -> list[tuple[str, list[np.ndarray], list[str]]]:
    images = [load(p) for p in reals]
    points = face_landmarks(reals, cache)
    rng = np.random.default_rng(SEED)
    blends = [self_blend(im, points[str(p)], rng) for im, p in zip(images, reals, strict=True)]

    batch = torch.from_numpy(np.stack(images + [load(p) for p in fakes])).permute(0, 3, 1, 2)
    labels = torch.tensor([0] * len(reals) + [1] * len(fakes))
    mixed, soft = cutmix(batch, labels, p=1.0, generator=torch.Generator().manual_seed(SEED))

    torch.manual_seed(SEED)
    random.seed(SEED)
    per_image = {
        "JPEG q30": on_tensor(RandomJpeg((30, 30), p=1.0)),
        "blur, sigma 1.5": on_tensor(v2.GaussianBlur(5, sigma=(1.5, 1.5))),
        "downscale 0.5x": on_tensor(RandomDownscale((0.5, 0.5), p=1.0)),
        "colour jitter": on_tensor(v2.ColorJitter(0.2, 0.2, 0.15)),
        "hflip": on_tensor(v2.RandomHorizontalFlip(p=1.0)),
    }
    rows = [
        ("original", images, [""] * len(images)),
        ("SBI", [b[0] for b in blends], [""] * len(images)),
        (
            "SBI mask",
            [mask_tile(m, points[str(p)]) for (_, m), p in zip(blends, reals, strict=True)],
            [f"max {m.max():.2f}" for _, m in blends],
        ),
        (
            "CutMix (p=1)",
            list(mixed[: len(reals)].permute(0, 2, 3, 1).numpy()),
            [f"label {v:.2f}" for v in soft[: len(reals)].tolist()],
        ),
    ]
    rows += [(name, [fn(im) for im in images], [""] * len(images)) for name, fn in per_image.items()]
    return rows


def render(rows: list[tuple[str, list[np.ndarray], list[str]]]) -> Image.Image:
    cols = len(rows[0][1])
    sheet = Image.new("RGB", (LABEL_W + cols * TILE, len(rows) * TILE), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    small = ImageFont.load_default(size=13)
    for r, (name, tiles, notes) in enumerate(rows):
        top = r * TILE
        draw.text((8, top + TILE // 2 - 8), name, fill="black", font=font)
        for c, (tile, note) in enumerate(zip(tiles, notes, strict=True)):
            left = LABEL_W + c * TILE
            sheet.paste(
                Image.fromarray(np.ascontiguousarray(tile)).resize((TILE - 4, TILE - 4), Image.Resampling.LANCZOS),
                (left + 2, top + 2),
            )
            if note:
                draw.rectangle((left + 4, top + 4, left + 8 + draw.textlength(note, font=small), top + 21), fill="white")
                draw.text((left + 6, top + 5), note, fill="black", font=small)
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "augmentations.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reals, fakes = pick_crops(args.data, SEED)
    with tempfile.TemporaryDirectory() as tmp:
        rows = build_rows(reals, fakes, Path(tmp) / "landmarks.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours keep the sheet small enough for the repo; dithering hides the banding.
    render(rows).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
