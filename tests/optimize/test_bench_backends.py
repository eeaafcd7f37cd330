"""The backend benchmark runs in its quick smoke mode; figures are printed, never asserted as times."""

from __future__ import annotations

from fakescope.models import DEFAULT_MODEL
from fakescope.optimize.bench import backends_table, bench_backends
from tests.optimize.conftest import EVAL_CROPS


def test_bench_backends_quick(exported, dfdc_faces, capsys):
    out_dir = exported["fp32"].onnx.parent
    rows = bench_backends(
        DEFAULT_MODEL,
        out_dir=out_dir,
        threads=1,
        batches=(1, 4),
        crops=8,
        repeat=1,
        seconds=0.1,
        eval_limit=EVAL_CROPS,
        data=dfdc_faces,
        variants=("fp32", "int8-static"),
        reuse=True,
    )
    assert [r["backend"] for r in rows] == [
        "torch fp32",
        "torch fp32 channels_last",
        "torch fp32 channels_last, conv-bn folded",
        "onnx fp32",
        "onnx int8-static",
    ]
    assert all(set(r["crops_per_s"]) == {1, 4} and min(r["crops_per_s"].values()) > 0 for r in rows)
    assert rows[0]["speedup"] == {1: 1.0, 4: 1.0}
    assert rows[3]["metrics"] == exported["fp32"].metrics["dfdc_faces/val"], "reused exports keep their scored metrics"
    assert rows[0]["metrics"]["n"] == EVAL_CROPS and abs(rows[0]["metrics"]["auc"] - rows[3]["metrics"]["auc"]) < 0.005
    assert rows[4]["size_bytes"] < rows[3]["size_bytes"]
    print(rows)
    assert backends_table(rows, threads=1).row_count == 5
