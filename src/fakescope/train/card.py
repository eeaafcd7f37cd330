"""What a training run writes next to its weights: fp16 weights and the JSON card (sha256, input contract,
metrics per subgroup, provenance), shared by `fakescope train` and `fakescope train-ensemble`."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fakescope.data import Sample
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.breakdown import subgroups
from fakescope.models import sha256_file
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import get_pretrained_cfg, split_model_name


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def input_contract(cfg: PretrainedCfg) -> dict:
    """What the card records about the model's input."""
    if cfg.input_kind == "audio":
        return {
            "input_kind": "audio",
            "sample_rate": cfg.sample_rate,
            "window_seconds": cfg.window_seconds,
            "hop_seconds": cfg.hop_seconds,
        }
    return {"input_size": list(cfg.input_size), "mean": list(cfg.mean), "std": list(cfg.std)}


MIN_REALS = 5  # a group of fewer real val samples gets no false-alarm row


def subgroup_metrics(prefix: str, dataset: object, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """Val metrics per generator family, method and source when the data names them, and, for a run on
    several folders, per folder (`info["dataset"]`) with each folder's own subgroups inside it (an FF++
    method is scored against FF++ reals, not every real of the run).

    `dataset` is a Dataset with `.samples` or the list of samples itself."""
    samples = dataset if isinstance(dataset, list) else getattr(dataset, "samples", [])
    labels, probs = np.array([s.label for s in samples]), np.asarray(probs)
    folders = np.array([s.info.get("dataset", "") for s in samples])
    if len(set(folders)) < 2:
        sections = subgroups([s.info for s in samples], labels, probs)
        return {f"{prefix} {name}": binary_metrics(y, p) for name, (y, p) in sections.items()}
    out: dict[str, dict[str, float]] = {}
    for folder in sorted(set(folders)):
        own = folders == folder
        if len(set(labels[own])) == 2:
            out[f"{prefix} {folder}"] = binary_metrics(labels[own], probs[own])
            members = [s for s, keep in zip(samples, own, strict=True) if keep]
            out.update(subgroup_metrics(f"{prefix} {folder}", members, probs[own]))
        elif not labels[own].any():  # extra negatives (genuine portraits): how many it leaves real
            out[f"{prefix} {folder} reals"] = {"n": int(own.sum()), "real_recall": float(np.mean(probs[own] < 0.5))}
    return out


FALSE_ALARM_COLUMNS = ("dataset", "source", "language")


def false_alarm_metrics(prefix: str, samples: Sequence[Sample], probs: np.ndarray, band: float) -> dict[str, dict[str, float]]:
    """The share of each group of real val samples (per folder, source and language, where named and at least
    MIN_REALS) called manipulated at the shipped `band`: what a user of that kind of genuine media would see."""
    out: dict[str, dict[str, float]] = {}
    real = [(s, p) for s, p in zip(samples, np.asarray(probs), strict=True) if s.label == 0]
    for column in FALSE_ALARM_COLUMNS:
        groups: dict[str, list[float]] = {}
        for s, p in real:
            if value := s.info.get(column):
                groups.setdefault(value, []).append(p)
        if len(groups) < 2 and column != "dataset":
            continue
        for value, scores in sorted(groups.items()):
            if len(scores) >= MIN_REALS:
                out[f"{prefix} reals {column}={value}"] = {
                    "n": len(scores),
                    "manipulated": float(np.mean(np.array(scores) >= band)),
                }
    return out


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


def write_fit(path: Path, entry: dict, *, keys: tuple[str, ...]) -> None:
    """Add `entry` to a shipped fits file ({"fits": [...]}, detect.fusion), replacing the one with the same `keys`."""
    shipped = json.loads(path.read_text()) if path.is_file() else {"fits": []}
    others = [f for f in shipped["fits"] if any(f.get(k) != entry[k] for k in keys)]
    path.write_text(json.dumps({"fits": [*others, entry]}, indent=2) + "\n")
