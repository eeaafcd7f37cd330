"""Prune the default face model, fine-tune it on the training platform's loaders, then export and score it.

    python benchmarks/prune_finetune.py --amount 0.3 --method l1 --epochs 1

Writes `<model>.pruned-<method>-<pct>-ft.{fp32,int8-static}.onnx` (+ .json with val metrics) into --out and
prints val AUC / LogLoss next to the unpruned exports' when those are in --out too.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.onnx_artifact import artifact_stem, read_metadata
from fakescope.optimize.export import export_variants
from fakescope.optimize.prune import prune_model, sparsity
from fakescope.train.config import load_config
from fakescope.train.loaders import make_loaders, make_splits
from fakescope.train.prune_finetune import fine_tune
from fakescope.train.trainer import seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/faceswap-effnet-lite0.yaml"), help="the model's recipe")
    parser.add_argument("--amount", type=float, default=0.3)
    parser.add_argument("--method", choices=("l1", "channels"), default="l1")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--out", type=Path, default=Path("runs/onnx"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = load_config(args.config)
    seed_everything(cfg.seed)
    torch.set_num_threads(cfg.threads)
    model_cfg = get_pretrained_cfg(cfg.model)
    loaders = make_loaders(cfg, model_cfg, make_splits(cfg, model_cfg))
    model = prune_model(create_model(cfg.model, pretrained=True), args.amount, method=args.method, permanent=False)
    history = fine_tune(model, {"train": loaders["train"], "calib": loaders["calib"]}, args.epochs, lr=args.lr, amp=cfg.amp)
    print(json.dumps(history, indent=2))
    print(f"sparsity after fine-tuning: {sparsity(model):.4f}, temperature {model.pretrained_cfg.temperature:.4f}")
    exports = export_variants(
        cfg.model,
        args.out,
        ["fp32", "int8-static"],
        model=model.to(memory_format=torch.contiguous_format),
        prune=args.amount,
        prune_method=args.method,
        fine_tuned=True,
    )
    rows = (("shipped", None, False), ("pruned", args.amount, False), ("pruned + fine-tuned", args.amount, True))
    for label, prune, tuned in rows:
        for variant in ("fp32", "int8-static"):
            path = args.out / f"{artifact_stem(cfg.model, variant, prune=prune, prune_method=args.method, fine_tuned=tuned)}.onnx"
            if path.is_file():
                metrics = next(iter(read_metadata(path)["metrics"].values()), {})
                print(
                    f"{label:>20} {variant:>12}: val AUC {metrics.get('auc', float('nan')):.4f} "
                    f"LogLoss {metrics.get('logloss', float('nan')):.4f} (n={metrics.get('n')})"
                )
    print("written:", ", ".join(e.onnx.name for e in exports))


if __name__ == "__main__":
    main()
