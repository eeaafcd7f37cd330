"""Fine-tune a registered detector on a face-crop folder and ship it into the package.

Data: `labels.csv` with a `split` column (train/val) grouped by source video. A further 10%
of the train groups is held out as a calibration set: it picks the best epoch and fits the
temperature, so the val split is touched only to report the final numbers.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch.utils.data import DataLoader

from fakescope.evaluate import binary_metrics, fit_temperature
from fakescope.models import DEFAULT_MODEL, create_model, sha256_file
from fakescope.models.registry import get_pretrained_cfg, split_model_name
from fakescope.train.augment import eval_transform, train_transform
from fakescope.train.data import FaceCropDataset, read_labels_csv, split_groups
from fakescope.train.loop import OneCycle, predict_logits, train_one_epoch

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Everything a run depends on; saved into the run directory and the model card."""

    data: Path
    model: str = DEFAULT_MODEL
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = 6e-4
    weight_decay: float = 0.02
    calib_fraction: float = 0.1
    seed: int = 20261123
    threads: int = 2
    device: str = "auto"
    limit: int | None = Field(None, description="use at most this many train crops (smoke runs)")
    run_dir: Path = Path("runs/faceswap-effnet-lite0")
    out: Path | None = Field(None, description="folder to write the shipped fp16 weights + JSON card into")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_loaders(cfg: TrainConfig, model_cfg) -> dict[str, DataLoader]:
    samples = read_labels_csv(cfg.data)
    train = [s for s in samples if s.split == "train"]
    val = [s for s in samples if s.split == "val"]
    train, calib = split_groups(train, cfg.calib_fraction, seed=cfg.seed)
    if cfg.limit:
        rng = np.random.default_rng(cfg.seed)

        def subset(items: list, n: int) -> list:
            return [items[i] for i in sorted(rng.choice(len(items), min(n, len(items)), replace=False))]

        train, calib, val = subset(train, cfg.limit), subset(calib, cfg.limit // 4), subset(val, cfg.limit // 4)
    size = model_cfg.image_size
    generator = torch.Generator().manual_seed(cfg.seed)
    train_ds = FaceCropDataset(train, size, train_transform(model_cfg))
    log.info("train %d, calib %d, val %d crops", len(train), len(calib), len(val))
    return {
        "train": DataLoader(train_ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True, generator=generator),
        "calib": DataLoader(FaceCropDataset(calib, size, eval_transform(model_cfg)), batch_size=64),
        "val": DataLoader(FaceCropDataset(val, size, eval_transform(model_cfg)), batch_size=64),
    }


def run_training(cfg: TrainConfig) -> dict:
    """Train (resuming from `run_dir/checkpoint.pt` if present), calibrate, export; returns the card."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "config.json").write_text(cfg.model_dump_json(indent=2))

    model_cfg = get_pretrained_cfg(cfg.model)
    model = create_model(cfg.model, pretrained=False, imagenet_init=True).to(device, memory_format=torch.channels_last)
    loaders = make_loaders(cfg, model_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(loaders["train"])
    schedule = OneCycle(max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    history: list[dict] = []
    start_epoch, best = 0, math.inf
    ckpt_path, best_path = cfg.run_dir / "checkpoint.pt", cfg.run_dir / "best.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, best, history = ckpt["epoch"] + 1, ckpt["best"], ckpt["history"]
        schedule.step = ckpt.get("step", start_epoch * steps_per_epoch)
        torch.set_rng_state(ckpt["rng"])
        log.info("resumed from %s at epoch %d", ckpt_path, start_epoch)

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        loss = train_one_epoch(
            model, loaders["train"], optimizer, schedule, device=device, description=f"epoch {epoch + 1}/{cfg.epochs}"
        )
        calib_logits, calib_y = predict_logits(model, loaders["calib"], device=device)
        val_logits, val_y = predict_logits(model, loaders["val"], device=device)
        calib_m = binary_metrics(calib_y, 1 / (1 + np.exp(-calib_logits)))
        val_m = binary_metrics(val_y, 1 / (1 + np.exp(-val_logits)))
        row = {"epoch": epoch + 1, "train_loss": loss, "calib": calib_m, "val": val_m, "seconds": time.time() - t0}
        history.append(row)
        log.info("epoch %d: loss %.4f calib logloss %.4f auc %.4f | val logloss %.4f auc %.4f",
                 epoch + 1, loss, calib_m["logloss"], calib_m["auc"], val_m["logloss"], val_m["auc"])
        if calib_m["logloss"] < best:
            best = calib_m["logloss"]
            torch.save(model.state_dict(), best_path)
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": schedule.step,
             "epoch": epoch, "best": best, "history": history, "rng": torch.get_rng_state(), "config": cfg.model_dump(mode="json")},
            ckpt_path,
        )
        (cfg.run_dir / "history.json").write_text(json.dumps(history, indent=2))

    # Measure exactly what ships: fp16-rounded weights, fp32 compute (as at inference).
    best_state = torch.load(best_path, map_location=device, weights_only=True)
    model.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in best_state.items()})
    calib_logits, calib_y = predict_logits(model, loaders["calib"], device=device, amp=False)
    temperature = fit_temperature(calib_logits, calib_y)
    val_logits, val_y = predict_logits(model, loaders["val"], device=device, amp=False)
    val_metrics = binary_metrics(val_y, 1 / (1 + np.exp(-val_logits / temperature)))
    best_epoch = min(history, key=lambda r: r["calib"]["logloss"])["epoch"]
    card = {
        "model": cfg.model,
        "temperature": temperature,
        "metrics": {"dfdc_faces/val": val_metrics},
        "dataset": str(model_cfg.dataset),
        "recipe": model_cfg.recipe,
        "extra": {"best_epoch": best_epoch, "epochs": cfg.epochs, "git": git_sha(), "device": str(device),
                  "train_seconds": sum(r["seconds"] for r in history), "config": cfg.model_dump(mode="json")},
    }
    (cfg.run_dir / "card.json").write_text(json.dumps(card, indent=2))
    log.info("val (T=%.3f): %s", temperature, val_metrics)
    if cfg.out is not None:
        card = export_weights(model, card, cfg.out)
    return card


def export_weights(model: torch.nn.Module, card: dict, out_dir: Path) -> dict:
    """Write fp16 weights as `<file>` and the card with their sha256 as `<file stem>.json`."""
    arch, _ = split_model_name(card["model"])
    file_name = get_pretrained_cfg(card["model"]).file or f"{arch}.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / file_name
    tmp = weights_path.with_suffix(".tmp")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, tmp)
    shutil.move(tmp, weights_path)
    card = {**card, "file": file_name, "sha256": sha256_file(weights_path), "size_bytes": weights_path.stat().st_size}
    weights_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
