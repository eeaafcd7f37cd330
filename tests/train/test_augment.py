"""CutMix label mixing and the configurable training transform."""

import pytest
import torch

from fakescope.errors import FakescopeError
from fakescope.models.config import PretrainedCfg
from fakescope.train.augment import RandomDownscale, build_train_transform, cutmix, train_transform

CFG = PretrainedCfg(input_size=(3, 64, 64))


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([torch.full((3, 32, 32), i, dtype=torch.uint8) for i in range(n)])
    return images, torch.tensor([i % 2 for i in range(n)])


def test_cutmix_mixes_labels_by_pasted_area():
    images, labels = batch()
    mixed, soft = cutmix(images, labels, p=1.0, generator=torch.Generator().manual_seed(0))
    assert mixed.shape == images.shape and mixed.dtype == images.dtype
    assert soft.shape == labels.shape and soft.dtype == torch.float32
    assert ((soft >= 0) & (soft <= 1)).all()
    for i in range(len(images)):
        # Every pixel is either the image's own value or the one value of its partner.
        values = mixed[i].unique()
        own = (mixed[i] == i).float().mean().item()
        assert len(values) <= 2
        partner = next((int(v) for v in values if int(v) != i), i)
        expected = labels[i] * own + labels[partner] * (1 - own)
        assert soft[i].item() == pytest.approx(float(expected), abs=1e-6)
    assert soft.sum().item() == pytest.approx(labels.float().sum().item(), abs=1e-4), "a permutation keeps the total label mass"
    assert not torch.equal(mixed, images)


def test_cutmix_is_deterministic_and_skips_with_p0():
    images, labels = batch()
    a = cutmix(images, labels, p=1.0, generator=torch.Generator().manual_seed(1))
    b = cutmix(images, labels, p=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    same, soft = cutmix(images, labels, p=0.0)
    assert torch.equal(same, images) and torch.equal(soft, labels.float())


def test_build_train_transform_rejects_unknown_and_bad_keys():
    with pytest.raises(FakescopeError, match="unknown augmentation 'mixup'"):
        build_train_transform(CFG, {"mixup": 0.5})
    with pytest.raises(FakescopeError, match="jpeg: unknown key 'q'"):
        build_train_transform(CFG, {"jpeg": {"q": [30, 60]}})
    with pytest.raises(FakescopeError, match="hflip"):
        build_train_transform(CFG, {"hflip": 1.5})
    with pytest.raises(FakescopeError, match="resized_crop_scale"):
        build_train_transform(CFG, {"resized_crop_scale": [0.9, 0.5]})


def test_build_train_transform_defaults_and_options():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 80, 80), dtype=torch.uint8)
    default = build_train_transform(CFG, {})
    assert [type(t).__name__ for t in default.transforms] == [type(t).__name__ for t in train_transform(CFG).transforms]
    assert "RandomDownscale" not in [type(t).__name__ for t in default.transforms]
    aug = {
        "hflip": 0,
        "color_jitter": 0,
        "blur": 0,
        "jpeg": {"p": 1.0, "quality": [30, 40]},
        "downscale": {"p": 1.0, "scale": [0.5, 0.5]},
        "resized_crop_scale": [1.0, 1.0],
    }
    transform = build_train_transform(CFG, aug)
    names = [type(t).__name__ for t in transform.transforms]
    assert names == ["RandomResizedCrop", "RandomDownscale", "RandomJpeg", "Normalize"]
    out = transform(image)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32


def test_downscale_blurs_but_keeps_size():
    image = torch.zeros((3, 32, 32), dtype=torch.uint8)
    image[:, :, ::2] = 255
    out = RandomDownscale((0.5, 0.5), p=1.0)(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert out.float().std() < image.float().std() / 2
