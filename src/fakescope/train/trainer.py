"""`fakescope train CONFIG.yaml`: train, calibrate and ship a registered detector.

Three disjoint sets, all split by group (source video / identity), never by crop:
- train: what the weights see;
- calib: a share of the train groups that picks the epoch (early stopping on its LogLoss),
  fits the temperature and chooses the verdict thresholds for the stated FPR;
- val: touched only to report the final numbers written into the model card.

Every epoch writes a checkpoint, the history and the curves, so `--resume` continues a
killed run exactly (optimiser, schedule, RNG, tracker run).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from fakescope.data import Splits
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics, fit_temperature
from fakescope.evaluate.calibration import sigmoid
from fakescope.evaluate.plots import training_curves_png
from fakescope.evaluate.report import write_report
from fakescope.evaluate.thresholds import verdict_thresholds
from fakescope.models import create_model, list_models
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import get_pretrained_cfg
from fakescope.train.augment import cutmix
from fakescope.train.card import export_weights, git_sha, input_contract, subgroup_metrics
from fakescope.train.config import TrainConfig, dump_config
from fakescope.train.distill import Distiller, load_teacher
from fakescope.train.loaders import make_loaders, make_splits
from fakescope.train.loop import OneCycle, predict_logits, train_one_epoch
from fakescope.train.probe import run_probe_training
from fakescope.train.qat import export_int8, folded_norms, prepare_qat, strip_fake_quant
from fakescope.train.sequence import run_sequence_training
from fakescope.train.tracking import Tracker, create_tracker

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig, model_cfg: PretrainedCfg, device: torch.device) -> ClassifierModel:
    imagenet = cfg.init == "imagenet" or (cfg.init == "auto" and not cfg.init_from and model_cfg.input_kind != "audio")
    if imagenet and model_cfg.input_kind == "audio":
        raise FakescopeError(f"{cfg.model}: init imagenet applies to image backbones, not audio models")
    kwargs = {**cfg.model_args, **({"imagenet_init": True} if imagenet else {})}
    try:
        model = create_model(cfg.model, pretrained=cfg.init == "pretrained", **kwargs)
    except TypeError as err:
        raise FakescopeError(f"{cfg.model}: bad model_args ({err})") from None
    if cfg.init_from:
        load_start(model, cfg.init_from)
    if cfg.freeze_backbone:
        backbone = getattr(model, "backbone", None)
        if backbone is None:
            raise FakescopeError(f"{cfg.model}: freeze_backbone needs a model with a `backbone` module")
        backbone.requires_grad_(False)
    if cfg.qat.enabled:
        prepare_qat(model, momentum=cfg.qat.observer_momentum)
    return model.to(device, memory_format=torch.channels_last)


def load_start(model: ClassifierModel, name: str) -> None:
    """Copy the shipped weights of registered model `name` into `model` (the same network under another tag)."""
    if name not in list_models(pretrained=True):
        raise FakescopeError(f"init_from: {name!r} is not a registered model with weights (see `fakescope models`)")
    try:
        model.load_state_dict(create_model(name, pretrained=True).state_dict())
    except RuntimeError as err:
        raise FakescopeError(f"init_from: {name} is another network than the one trained ({str(err).splitlines()[0]})") from None


class Checkpoint:
    """Everything needed to continue a run where it stopped."""

    def __init__(self, run_dir: Path) -> None:
        self.path, self.best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"

    def exists(self) -> bool:
        return self.path.is_file()

    def save(
        self,
        model: ClassifierModel,
        optimizer: torch.optim.Optimizer,
        schedule: OneCycle,
        epoch: int,
        best: float,
        history: list[dict],
        tracker_id: str | None,
    ) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": schedule.step,
                "epoch": epoch,
                "best": best,
                "history": history,
                "rng": torch.get_rng_state(),
                "np_rng": np.random.get_state(),
                "py_rng": random.getstate(),
                "tracker_id": tracker_id,
            },
            tmp,
        )
        tmp.replace(self.path)

    def load(self, model: ClassifierModel, optimizer: torch.optim.Optimizer, schedule: OneCycle, device: torch.device) -> dict:
        ckpt = torch.load(self.path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.step = ckpt["step"]
        torch.set_rng_state(ckpt["rng"])
        np.random.set_state(ckpt["np_rng"])
        random.setstate(ckpt["py_rng"])
        return ckpt


def epochs_without_improvement(history: list[dict]) -> int:
    losses = [row["calib"]["logloss"] for row in history]
    return len(losses) - 1 - int(np.argmin(losses)) if losses else 0


def run_training(cfg: TrainConfig, *, resume: bool = False, recipe: str | None = None) -> dict:
    """Train (or continue with `resume`), calibrate on calib, report on val, export; returns the card.

    `recipe` is the command line that reproduces the run, written into the model card. A recipe with a
    `probe:` section fits a head on a frozen backbone's cached tokens instead (train.probe), one with a `sequence:`
    section a temporal face model on cached frame features (train.sequence).
    """
    if cfg.probe is not None:
        return run_probe_training(cfg, recipe=recipe)
    if cfg.sequence is not None:
        return run_sequence_training(cfg, recipe=recipe)
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    run_dir = cfg.run_path
    ckpt = Checkpoint(run_dir)
    if ckpt.exists() and not resume:
        raise FakescopeError(f"{run_dir}: holds a checkpoint from an earlier run; pass --resume to continue it, or set run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg))

    model_cfg = get_pretrained_cfg(cfg.model)
    model = build_model(cfg, model_cfg, device)
    splits = make_splits(cfg, model_cfg)
    loaders = make_loaders(cfg, model_cfg, splits)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay
    )
    steps_per_epoch = len(loaders["train"])
    schedule = OneCycle(max_lr=cfg.optim.lr, total_steps=cfg.schedule.epochs * steps_per_epoch, warmup=cfg.schedule.warmup)
    history: list[dict] = []
    start_epoch, best, tracker_id = 0, math.inf, None
    if resume and ckpt.exists():
        state = ckpt.load(model, optimizer, schedule, device)
        start_epoch, best, history, tracker_id = state["epoch"] + 1, state["best"], state["history"], state["tracker_id"]
        log.info("resumed %s at epoch %d", run_dir, start_epoch + 1)

    tracker = create_tracker(cfg.tracker, run_dir=run_dir, experiment="fakescope", run_name=cfg.name)
    tags = {"model": cfg.model, "git": git_sha(), "device": str(device)}
    # The tracked run ends FINISHED, FAILED on an error, KILLED on Ctrl-C.
    with tracker.start(params=cfg.model_dump(mode="json"), tags=tags, resume_id=tracker_id):
        train_epochs(cfg, model, loaders, optimizer, schedule, ckpt, tracker, device, start_epoch, best, history)
        strip_fake_quant(model)
        card = finish(cfg, model, loaders, splits, ckpt, tracker, device, history, recipe)
        if cfg.qat.enabled and cfg.qat.export:
            card = export_qat(cfg, model, card, tracker, recipe)
        return card


def train_epochs(
    cfg: TrainConfig,
    model: ClassifierModel,
    loaders: dict[str, DataLoader],
    optimizer: torch.optim.Optimizer,
    schedule: OneCycle,
    ckpt: Checkpoint,
    tracker: Tracker,
    device: torch.device,
    start_epoch: int,
    best: float,
    history: list[dict],
) -> None:
    """Epochs from `start_epoch` on, until the schedule ends or calib LogLoss stops improving."""
    mix = None
    if cfg.augment.cutmix.p > 0:
        gen = torch.Generator().manual_seed(cfg.seed + 1)

        def mix(images, labels):
            return cutmix(images, labels, alpha=cfg.augment.cutmix.alpha, p=cfg.augment.cutmix.p, generator=gen)

    frozen = ([model.backbone] if cfg.freeze_backbone else []) + folded_norms(model)
    loss_fn = None
    if cfg.distill is not None:
        teacher = load_teacher(cfg.distill.teacher, model, weights=cfg.distill.teacher_weights, device=device)
        loss_fn = Distiller(
            teacher,
            alpha=cfg.distill.alpha,
            temperature=cfg.distill.temperature,
            amp=cfg.amp,
            label_smoothing=cfg.optim.label_smoothing,
            student_cfg=model.pretrained_cfg,
        )
    patience = cfg.schedule.early_stop_patience
    for epoch in range(start_epoch, cfg.schedule.epochs):
        if patience and history and epochs_without_improvement(history) >= patience:
            log.info("early stop: calib LogLoss has not improved for %d epochs", patience)
            break
        t0 = time.time()
        loss = train_one_epoch(
            model,
            loaders["train"],
            optimizer,
            schedule,
            device=device,
            description=f"epoch {epoch + 1}/{cfg.schedule.epochs}",
            grad_clip=cfg.optim.grad_clip,
            amp=cfg.amp,
            label_smoothing=cfg.optim.label_smoothing,
            batch_transform=mix,
            frozen=frozen,
            loss_fn=loss_fn,
        )
        row: dict = {"epoch": epoch + 1, "train_loss": loss, "lr": schedule.lr()}
        for split in ("calib", "val"):
            logits, y = predict_logits(model, loaders[split], device=device, amp=cfg.amp)
            row[split] = binary_metrics(y, sigmoid(logits))
        row["seconds"] = time.time() - t0
        history.append(row)
        if row["calib"]["logloss"] < best:
            best = row["calib"]["logloss"]
            torch.save(model.state_dict(), ckpt.best_path)
        ckpt.save(model, optimizer, schedule, epoch, best, history, tracker.run_id)
        (ckpt.path.parent / "history.json").write_text(json.dumps(history, indent=2))
        curves = training_curves_png(history, ckpt.path.parent / "curves.png")
        tracker.log_metrics(
            {
                "train/loss": loss,
                "lr": row["lr"],
                **{f"{s}/{k}": v for s in ("calib", "val") for k, v in row[s].items() if k != "n"},
            },
            step=epoch + 1,
        )
        tracker.log_artifact(curves)
        eta = row["seconds"] * (cfg.schedule.epochs - epoch - 1)
        log.info(
            "epoch %d/%d %.0fs: loss %.4f | calib logloss %.4f auc %.4f | val logloss %.4f auc %.4f | ETA %.0f min",
            epoch + 1,
            cfg.schedule.epochs,
            row["seconds"],
            loss,
            row["calib"]["logloss"],
            row["calib"]["auc"],
            row["val"]["logloss"],
            row["val"]["auc"],
            eta / 60,
        )


def finish(
    cfg: TrainConfig,
    model: ClassifierModel,
    loaders: dict[str, DataLoader],
    splits: Splits,
    ckpt: Checkpoint,
    tracker: Tracker,
    device: torch.device,
    history: list[dict],
    recipe: str | None,
) -> dict:
    """Measure exactly what ships: fp16-rounded best weights computed in fp32, as at inference."""
    run_dir = ckpt.path.parent
    best_state = torch.load(ckpt.best_path, map_location=device, weights_only=True)
    model.load_state_dict({k: v.half().to(v.dtype) if v.is_floating_point() else v for k, v in best_state.items()})
    calib_logits, calib_y = predict_logits(model, loaders["calib"], device=device, amp=False)
    temperature = fit_temperature(calib_logits, calib_y)
    thresholds = verdict_thresholds(calib_y, sigmoid(calib_logits / temperature), fpr=cfg.thresholds.fpr, fnr=cfg.thresholds.fnr)
    val_logits, val_y = predict_logits(model, loaders["val"], device=device, amp=False)
    val_probs = sigmoid(val_logits / temperature)
    dataset = cfg.data.name
    val_metrics = binary_metrics(val_y, val_probs)
    model_cfg = model.pretrained_cfg
    report = write_report(
        run_dir / "report",
        {f"{dataset}/val": (val_y, val_probs)},
        title=f"{cfg.model} on {dataset} val",
        meta={"model": cfg.model, "temperature": round(temperature, 4), "recipe": recipe or "", "git": git_sha()},
    )
    best_epoch = min(history, key=lambda r: r["calib"]["logloss"])["epoch"]
    card = {
        "model": cfg.model,
        "temperature": temperature,
        "thresholds": thresholds,
        **input_contract(model_cfg),
        "metrics": {f"{dataset}/val": val_metrics, **subgroup_metrics(f"{dataset}/val", loaders["val"].dataset, val_probs)},
        "dataset": f"{dataset} ({len(splits.train)} train / {len(splits.calib)} calib / {len(splits.val)} val samples, "
        "split by group)",
        "recipe": recipe or model_cfg.recipe,
        "extra": {
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "git": git_sha(),
            "device": str(device),
            "train_seconds": round(sum(r["seconds"] for r in history), 1),
            "config": cfg.model_dump(mode="json"),
        },
    }
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    tracker.log_metrics(
        {f"final/val/{k}": v for k, v in val_metrics.items() if k != "n"} | {"final/temperature": temperature}, step=len(history)
    )
    for path in (run_dir / "history.json", run_dir / "config.yaml", report):
        tracker.log_artifact(path)
    log.info("val (T=%.3f): %s", temperature, val_metrics)
    if cfg.out is not None:
        card = export_weights(model, card, cfg.out)
        weights = cfg.out / card["file"]
        tracker.log_model(weights, weights.with_suffix(".json"))
    return card


def export_qat(cfg: TrainConfig, model: ClassifierModel, card: dict, tracker: Tracker, recipe: str | None) -> dict:
    """fp32 + int8-static ONNX of the QAT weights into run_dir/onnx; their val metrics go into the card."""
    onnx_metrics = export_int8(
        model, card, cfg.run_path / "onnx", data=cfg.data.root, calib_crops=cfg.qat.calib_crops, recipe=recipe
    )
    card = {**card, "extra": {**card["extra"], "onnx": onnx_metrics}}
    (cfg.run_path / "card.json").write_text(json.dumps(card, indent=2))
    tracker.log_metrics(
        {f"final/onnx-{variant}/{k}": v for variant, m in onnx_metrics.items() for k, v in m.items() if k != "n"},
        step=card["extra"]["epochs_run"],
    )
    return card
