"""Benchmark inference backends for the default face model: torch fp32 (NCHW, channels_last, conv-bn folded),
ONNX Runtime fp32, int8-dynamic and int8-static: crops/s at batch 1/8/32, size on disk, val AUC, in one run.

    python benchmarks/bench_backends.py                 # full: exports into runs/onnx, scores all 1,200 val crops
    python benchmarks/bench_backends.py --quick         # smoke test: 32 crops, one 0.2-s run per cell, 64 val crops
    python benchmarks/bench_backends.py --reuse --json  # reuse exports already scored on the same val crops
"""

from __future__ import annotations

import argparse
import json
import logging

from rich.console import Console

from fakescope.models import DEFAULT_MODEL
from fakescope.optimize.bench import QUICK, backends_table, bench_backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", default=None, help="where the ONNX exports go (default runs/onnx, runs/onnx-quick with --quick)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--crops", type=int, default=64, help="real val crops the timing cycles through")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per cell (the median is shown)")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum length of one timed run")
    parser.add_argument("--eval-limit", type=int, default=None, help="score this many val crops (default: all)")
    parser.add_argument("--data", default=None, help="labelled data folder (default: the model card's)")
    parser.add_argument("--quick", action="store_true", help="CI smoke mode: few crops, one short run per cell")
    parser.add_argument("--reuse", action="store_true", help="reuse exports already scored on the same val crops")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = {"crops": args.crops, "repeat": args.repeat, "seconds": args.seconds, "eval_limit": args.eval_limit}
    if args.quick:
        settings = {**settings, **QUICK}
    out = args.out or ("runs/onnx-quick" if args.quick else "runs/onnx")
    rows = bench_backends(args.model, out_dir=out, threads=args.threads, data=args.data, reuse=args.reuse, **settings)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        Console(width=200).print(backends_table(rows, threads=args.threads))


if __name__ == "__main__":
    main()
