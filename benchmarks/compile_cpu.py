"""torch.compile vs eager (NCHW and channels_last) for the default face model on CPU.

    OMP_NUM_THREADS=1 python benchmarks/compile_cpu.py --threads 1 [--batches 1 8 32] [--amp] [--onnx-dir DIR] [--json out.json]

Inference: crops/s at each batch size (median of `--reps` timed forwards after warm-up), and the
one-off compile time. Training: seconds per step (forward + backward + AdamW) at `--train-batch`,
under bf16 autocast with `--amp` (the trainer's default). `--batches` with no sizes skips inference.
`--onnx-dir` (a `fakescope export` folder) adds ONNX Runtime rows for its fp32 and int8-static
exports, timed the same way, as the bar torch.compile would have to clear.
Figures are printed, never asserted; compare them with `fakescope bench` (ONNX Runtime).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fakescope.models import create_model


def timed(fn: Callable[[], object], reps: int) -> float:
    """Median seconds of `reps` calls."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def inference_row(model: torch.nn.Module, batch: int, *, channels_last: bool, compiled: bool, reps: int) -> dict:
    x = torch.randn(batch, 3, 224, 224)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=layout)
    net = model.to(memory_format=layout)
    fn = torch.compile(net, dynamic=False) if compiled else net
    with torch.inference_mode():
        t0 = time.perf_counter()
        fn(x)
        first = time.perf_counter() - t0
        seconds = timed(lambda: fn(x), reps)
    return {
        "mode": "compile" if compiled else "eager",
        "layout": "channels_last" if channels_last else "nchw",
        "batch": batch,
        "crops_per_s": round(batch / seconds, 1),
        "first_call_s": round(first, 1),
    }


def onnx_row(path: Path, batch: int, *, threads: int, reps: int) -> dict:
    from fakescope.models.onnx import OnnxModel

    model = OnnxModel(path, threads=threads)
    x = torch.randn(batch, 3, 224, 224)
    model(x)
    seconds = timed(lambda: model(x), reps)
    return {"mode": f"onnx {model.metadata['variant']}", "batch": batch, "crops_per_s": round(batch / seconds, 1)}


def training_row(name: str, batch: int, *, compiled: bool, steps: int, amp: bool) -> dict:
    model = create_model(name, pretrained=True).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randn(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,)).float()
    forward = torch.compile(model, dynamic=False) if compiled else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = forward(x)["logits"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    seconds = timed(step, steps)
    return {
        "mode": "compile" if compiled else "eager",
        "layout": "channels_last",
        "amp": amp,
        "train_batch": batch,
        "s_per_step": round(seconds, 2),
        "crops_per_s": round(batch / seconds, 1),
        "first_call_s": round(first, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="faceswap-effnet-lite0.dfdc")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="train under bf16 autocast")
    parser.add_argument("--onnx-dir", type=Path, help="also time <model>.fp32/.int8-static.onnx exports found here")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    model = create_model(args.model, pretrained=True).eval()
    for compiled in (False, True):
        for channels_last in (False, True):
            for batch in args.batches:
                rows.append(inference_row(model, batch, channels_last=channels_last, compiled=compiled, reps=args.reps))
                print(json.dumps(rows[-1]), flush=True)
    for variant in ("fp32", "int8-static") if args.onnx_dir else ():
        path = args.onnx_dir / f"{args.model}.{variant}.onnx"
        for batch in args.batches if path.is_file() else ():
            rows.append(onnx_row(path, batch, threads=args.threads, reps=args.reps))
            print(json.dumps(rows[-1]), flush=True)
    if args.train_steps:
        for compiled in (False, True):
            rows.append(training_row(args.model, args.train_batch, compiled=compiled, steps=args.train_steps, amp=args.amp))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
