"""Backend benchmark: crops/s of one face model per backend and batch size, file size and val AUC, in one run.

Every variant is exported, timed on the same real val crops and scored on the same val
split within the run, so a faster row can never hide an accuracy loss. Figures are printed,
never asserted: the machine is shared and noisy, so speed-ups against torch fp32 (measured
seconds apart) say more than the absolute numbers.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from fakescope.data.model_data import data_root, labelled_samples
from fakescope.models import DEFAULT_MODEL, create_model, get_pretrained_cfg
from fakescope.models.onnx import OnnxModel
from fakescope.models.onnx_artifact import artifact_stem, read_metadata
from fakescope.models.registry import resolve_name
from fakescope.models.transforms import crops_to_tensor
from fakescope.optimize.evaluation import evaluate_model, load_crops
from fakescope.optimize.export import DEFAULT_CALIBRATION_CROPS, export_variants
from fakescope.optimize.fuse import fuse_conv_bn

BATCHES = (1, 8, 32)
ONNX_VARIANTS = ("fp32", "int8-dynamic", "int8-static")
QUICK = {"crops": 32, "repeat": 1, "seconds": 0.2, "eval_limit": 64, "calib_crops": 32}


def crops_per_second(
    call: Callable[[torch.Tensor], Any], inputs: torch.Tensor, batch: int, *, repeat: int, seconds: float
) -> float:
    """Median over `repeat` runs of crops/s, each run cycling through the whole batches of `inputs` for at least
    `seconds`, after two warm-up batches (the first call at a new shape builds kernels and thread pools)."""
    if len(inputs) < batch:
        raise ValueError(f"need at least {batch} crops to time batch {batch}, got {len(inputs)}")
    batches = [inputs[i : i + batch] for i in range(0, len(inputs) - batch + 1, batch)]
    for _ in range(2):
        call(batches[0])
    rates = []
    for _ in range(repeat):
        done, start = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - start < seconds:
            call(batches[(done // batch) % len(batches)])
            done += batch
        rates.append(done / (time.perf_counter() - start))
    return statistics.median(rates)


def _exports(name: str, variants: Sequence[str], out_dir: Path, *, reuse: bool, **kwargs: Any) -> dict[str, Path]:
    """Each variant's export: one trace for all, re-made unless `reuse` finds it already scored on the same val crops."""
    paths = {v: out_dir / f"{artifact_stem(name, v)}.onnx" for v in variants}
    wanted = kwargs.get("eval_limit") or len(labelled_samples(name, "val", root=kwargs.get("data")))

    def scored(path: Path) -> bool:
        metrics = next(iter(read_metadata(path).get("metrics", {}).values()), {}) if path.is_file() else {}
        return metrics.get("n") == wanted

    missing = [v for v, path in paths.items() if not (reuse and scored(path))]
    if missing:
        export_variants(name, out_dir, missing, **kwargs)
    return paths


def bench_backends(
    name: str = DEFAULT_MODEL,
    *,
    out_dir: str | Path = "runs/onnx",
    threads: int = 2,
    batches: Sequence[int] = BATCHES,
    crops: int = 64,
    repeat: int = 3,
    seconds: float = 2.0,
    eval_limit: int | None = None,
    calib_crops: int = DEFAULT_CALIBRATION_CROPS,
    data: str | Path | None = None,
    variants: Sequence[str] = ONNX_VARIANTS,
    reuse: bool = False,
) -> list[dict[str, Any]]:
    """One row per backend: crops/s per batch size (`threads` threads), size on disk, val metrics.

    Each cell is the median of `repeat` runs of at least `seconds` over `crops` real val crops.
    Torch rows time the shipped model (NCHW input, then channels_last weights and input, then
    channels_last with conv-bn folded); ONNX rows time `OnnxModel` on the exports written to
    `out_dir` (re-exported unless `reuse`). `eval_limit` scores a class-balanced subset of val.
    """
    name = resolve_name(name)
    out_dir = Path(out_dir)
    cfg = get_pretrained_cfg(name)
    data_root(cfg, data)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        paths = _exports(name, variants, out_dir, reuse=reuse, calib_crops=calib_crops, data=data, eval_limit=eval_limit)
        inputs = crops_to_tensor(load_crops(labelled_samples(name, "val", root=data, limit=crops), cfg), cfg)
        rows = _torch_rows(name, inputs, batches, repeat=repeat, seconds=seconds, eval_limit=eval_limit, data=data)
        nchw = inputs.contiguous()
        for variant, path in paths.items():
            model = OnnxModel(path, threads=threads)
            rates = {b: crops_per_second(model, nchw, b, repeat=repeat, seconds=seconds) for b in batches}
            rows.append(
                {
                    "backend": f"onnx {variant}",
                    "crops_per_s": rates,
                    "size_bytes": path.stat().st_size,
                    "metrics": next(iter(model.metadata["metrics"].values()), {}),
                }
            )
    finally:
        torch.set_num_threads(previous_threads)
    reference = rows[0]["crops_per_s"]
    for row in rows:
        row["speedup"] = {b: row["crops_per_s"][b] / reference[b] for b in batches}
    return rows


def _torch_rows(
    name: str,
    inputs: torch.Tensor,
    batches: Sequence[int],
    *,
    repeat: int,
    seconds: float,
    eval_limit: int | None,
    data: str | Path | None,
) -> list[dict[str, Any]]:
    model = create_model(name, pretrained=True).eval()
    weights = model.pretrained_cfg.weights_path()
    size = weights.stat().st_size if weights is not None else 0
    metrics = evaluate_model(model, name, root=data, limit=eval_limit)
    nchw, channels_last = inputs.contiguous(), inputs.contiguous(memory_format=torch.channels_last)
    candidates = {
        "torch fp32": (model, nchw),
        "torch fp32 channels_last": (copy.deepcopy(model).to(memory_format=torch.channels_last), channels_last),
        "torch fp32 channels_last, conv-bn folded": (fuse_conv_bn(model).to(memory_format=torch.channels_last), channels_last),
    }
    rows = []
    with torch.inference_mode():
        for label, (net, x) in candidates.items():
            rates = {b: crops_per_second(net, x, b, repeat=repeat, seconds=seconds) for b in batches}
            rows.append({"backend": label, "crops_per_s": rates, "size_bytes": size, "metrics": metrics})
    return rows


def backends_table(rows: list[dict[str, Any]], *, threads: int) -> Table:
    batches = list(rows[0]["crops_per_s"])
    table = Table(
        title=f"crops/s per backend ({threads} threads; × = speed-up over torch fp32 in this run), size, val metrics",
        title_justify="left",
    )
    table.add_column("backend", no_wrap=True)
    for b in batches:
        table.add_column(f"batch {b}", justify="right", no_wrap=True)
    for col in ("size", "val AUC", "val LogLoss", "n"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        metrics = row["metrics"]
        table.add_row(
            row["backend"],
            *[f"{row['crops_per_s'][b]:.1f} ({row['speedup'][b]:.1f}×)" for b in batches],
            f"{row['size_bytes'] / 1e6:.1f} MB",
            f"{metrics.get('auc', float('nan')):.4f}",
            f"{metrics.get('logloss', float('nan')):.4f}",
            str(metrics.get("n", "")),
        )
    return table
