"""Cross-dataset protocols (train.protocol): config errors, split semantics, and a whole run on tiny folders.

CLIP tokens are replaced by deterministic random tokens per file (no tower forward): with a label signal in
one coordinate the head separates every test set perfectly, without it the AUC stays near chance.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.data import Sample
from fakescope.errors import FakescopeError
from fakescope.models import get_pretrained_cfg
from fakescope.train import probe, protocol
from fakescope.train.config import load_config
from fakescope.train.protocol import load_datasets, load_protocol, row_samples, run_protocol

runner = CliRunner()
PER_CLASS = 16
SHIPPED = ("aigen-clip-b16.faces_flux", "faceswap-effnet-lite0.dfdc")  # a CLIP head on tokens, a CNN on pixels


def make_folder(root: Path, seed: int) -> Path:
    """A labels.csv folder of 32x32 pictures: PER_CLASS reals and PER_CLASS fakes of methods m1/m2."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, method in [("REAL", "original")] * PER_CLASS + [("FAKE", f"m{i % 2 + 1}") for i in range(PER_CLASS)]:
        name = f"{label.lower()}/{len(rows):03d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / name)
        rows.append({"file": name, "label": label, "method": method})
    with (root / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "method"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Folders A and B and a linear-head probe recipe (seed and fractions picked so that calib holds both classes)."""
    base = tmp_path_factory.mktemp("protocol")
    a, b = make_folder(base / "A", 1), make_folder(base / "B", 2)
    recipe = base / "recipe.yaml"
    recipe.write_text(
        f"name: tiny\nmodel: aigen-clip-b16.faces_flux\ndata: {{root: {a}, val_fraction: 0.25, calib_fraction: 0.25}}\n"
        "probe: {c_grid: [0.1, 1.0]}\nseed: 3\nthreads: 1\ntracker: none\n"
    )
    return a, b, recipe


def write_protocol(path: Path, recipe: Path, a: Path, b: Path, rows: str, shipped: str = "[]") -> Path:
    path.write_text(
        f"name: tiny-cross\nrecipe: {recipe}\ndatasets:\n  A: {{root: {a}}}\n  B: {{root: {b}, val_fraction: 0.5}}\n"
        f"rows:\n{rows}shipped: {shipped}\n"
    )
    return path


def tokens_of(separable: bool):
    """cached_inputs stand-in: N(0, 1) tokens seeded by file name, fakes shifted by +2 in 100 coordinates if separable."""

    def fake_cached_tokens(model: object, samples: Sequence[Sample], view: str = "clean", **_: object) -> np.ndarray:
        out = []
        for s in samples:
            t = np.random.default_rng(zlib.crc32(f"{s.path}|{view}".encode())).normal(size=(13, 768)).astype(np.float32)
            if separable and s.label == 1:
                t[:, :100] += 2.0
            out.append(t)
        return np.stack(out)

    return fake_cached_tokens


def test_unknown_dataset_in_a_row_is_one_line(tmp_path, folders):
    a, b, recipe = folders
    path = write_protocol(tmp_path / "p.yaml", recipe, a, b, "  - {name: r, train: [A], test: C}\n")
    with pytest.raises(FakescopeError) as err:
        load_protocol(path)
    assert "row 'r': unknown dataset 'C' (datasets: A, B)" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("hold_out", ["method", "=m1", "method="])
def test_bad_hold_out_is_one_line(tmp_path, folders, hold_out):
    a, b, recipe = folders
    path = write_protocol(tmp_path / "p.yaml", recipe, a, b, f"  - {{name: r, train: [A], test: B, hold_out: '{hold_out}'}}\n")
    with pytest.raises(FakescopeError, match=r"rows\.0\.hold_out: .* is not column=value") as err:
        load_protocol(path)
    assert "\n" not in str(err.value)


def test_split_semantics(tmp_path, folders):
    a, b, recipe = folders
    rows = (
        "  - {name: in, train: [A], test: A}\n  - {name: cross, train: [A], test: B}\n"
        "  - {name: held, train: [A, B], test: B, hold_out: method=m1}\n"
        "  - {name: none, train: [A], test: B, hold_out: method=m9}\n"
        "  - {name: either, train: [A, B], test: B, hold_out: 'family=vc | method=m1'}\n"
    )
    cfg = load_protocol(write_protocol(tmp_path / "p.yaml", recipe, a, b, rows))
    splits = load_datasets(cfg, load_config(recipe))
    paths = lambda samples: {s.path for s in samples}  # noqa: E731

    train, calib, test = row_samples(cfg.rows[0], splits)
    assert paths(test) == paths(splits["A"].val) and not paths(test) & paths(train + calib)
    _, _, test = row_samples(cfg.rows[1], splits)
    assert len(test) == 2 * PER_CLASS, "a dataset not trained on is tested whole"

    train, calib, test = row_samples(cfg.rows[2], splits)
    assert not [s for s in train + calib if s.info["method"] == "m1"], "held-out fakes never reach train or calib"
    assert [s for s in train if s.info["method"] == "m2"], "the other fakes still train"
    assert {s.info["method"] for s in test} == {"original", "m1"}
    assert {s.path for s in test if s.label == 0} == {s.path for s in splits["B"].val if s.label == 0}, "reals: B val only"
    assert len([s for s in test if s.label == 1]) == PER_CLASS // 2, "every held-out fake of B, from any split"
    with pytest.raises(FakescopeError, match="hold_out method=m9 matches no FAKE file of B"):
        row_samples(cfg.rows[3], splits)
    # One family named by each folder's own column: a fake matching any pair is held out.
    assert [paths(side) for side in row_samples(cfg.rows[4], splits)] == [paths(side) for side in (train, calib, test)]


@pytest.mark.parametrize("separable", [True, False])
def test_run_writes_a_table_with_computed_auc(tmp_path, folders, monkeypatch, separable):
    a, b, recipe = folders
    monkeypatch.setattr(probe, "cached_inputs", tokens_of(separable))
    monkeypatch.setattr(protocol, "cached_inputs", tokens_of(separable))
    rows = "  - {name: A → B, train: [A], test: B}\n  - {name: A+B → unseen m1, train: [A, B], test: B, hold_out: method=m1}\n"
    path = write_protocol(tmp_path / "p.yaml", recipe, a, b, rows, shipped=f"[{', '.join(SHIPPED)}]")
    out = tmp_path / "out"
    report = run_protocol(load_protocol(path), out)

    by_name = {r["name"]: r for r in report["rows"]}
    cross = by_name["A → B"]
    assert (cross["n"], cross["n_real"], cross["n_fake"]) == (2 * PER_CLASS, PER_CLASS, PER_CLASS)
    if separable:
        assert cross["auc"] == 1.0 and cross["fake_recall"] == 1.0 and cross["real_over_half"] == 0.0
        assert by_name["A+B → unseen m1"]["auc"] == 1.0
        assert cross["eer"] == 0.0 and cross["fake_at_band"] >= cross["real_at_band"]  # a band set on a few calib reals
    else:
        assert cross["auc"] < 0.85, "noise tokens carry no signal"
    assert cross["real_over_half"] == pytest.approx(1 - cross["real_recall"])
    shipped = [r for r in report["rows"] if r["kind"] == "shipped"]
    assert [(r["name"], r["test"]) for r in shipped] == [
        (f"shipped {name}", test) for name in SHIPPED for test in ("B all", "B val reals + all m1 fakes")
    ], "each shipped model on each distinct test set"
    assert all(r["n"] == r["n_real"] + r["n_fake"] > 0 and r["logloss"] > 0 for r in shipped)
    assert json.loads((out / "protocol.json").read_text())["rows"] == json.loads(json.dumps(report["rows"]))
    md = (out / "protocol.md").read_text()
    assert f"| A → B | A | B all | 32 | {cross['auc']:.3f} |" in md


def test_reals_only_test_set_has_no_auc(tmp_path, folders, monkeypatch):
    a, b, recipe = folders
    monkeypatch.setattr(probe, "cached_inputs", tokens_of(True))
    monkeypatch.setattr(protocol, "cached_inputs", tokens_of(True))
    path = tmp_path / "p.yaml"
    path.write_text(
        f"name: reals\nrecipe: {recipe}\ndatasets:\n  A: {{root: {a}}}\n  B reals: {{root: {b}, labels: [REAL]}}\n"
        "rows:\n  - {name: A → B reals, train: [A], test: B reals}\n"
    )
    (row,) = run_protocol(load_protocol(path), tmp_path / "out")["rows"]
    assert (row["n"], row["auc"], row["fake_recall"]) == (PER_CLASS, None, None)
    assert row["real_recall"] == 1.0 and row["real_over_half"] == 0.0
    assert "| A → B reals | A | B reals all | 16 | — |" in (tmp_path / "out" / "protocol.md").read_text()


@pytest.mark.parametrize("args", [[], ["some/folder", "--protocol", "p.yaml"]])
def test_eval_needs_a_dataset_or_a_protocol_not_both(args):
    res = runner.invoke(app, ["eval", *args])
    assert res.exit_code == 2
    assert "give either a DATASET folder or --protocol PATH" in res.output and "Traceback" not in res.output


def test_eval_protocol_prints_the_table(tmp_path, folders, monkeypatch):
    a, b, recipe = folders
    monkeypatch.setattr(probe, "cached_inputs", tokens_of(True))
    monkeypatch.setattr(protocol, "cached_inputs", tokens_of(True))
    path = write_protocol(tmp_path / "p.yaml", recipe, a, b, "  - {name: A → B, train: [A], test: B}\n")
    res = runner.invoke(app, ["eval", "--protocol", str(path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "A → B" in res.output and "1.000" in res.output and "real > 0.5" in res.output
    assert (tmp_path / "out" / "protocol.md").is_file()


def test_shipped_rows_leave_out_the_files_the_model_trained_on(tmp_path, folders, monkeypatch):
    a, b, recipe = folders
    monkeypatch.setattr(probe, "cached_inputs", tokens_of(True))
    monkeypatch.setattr(protocol, "cached_inputs", tokens_of(True))
    rows = "  - {name: A → B, train: [A], test: B}\n  - {name: A+B → B val, train: [A, B], test: B}\n"
    cfg = load_protocol(write_protocol(tmp_path / "p.yaml", recipe, a, b, rows, shipped=f"[{SHIPPED[0]}]"))
    b_split = load_datasets(cfg, load_config(recipe))["B"]
    seen = {s.path.resolve() for s in b_split.train + b_split.calib}
    monkeypatch.setattr(protocol, "seen_files", lambda name: (seen, "B"))
    report = run_protocol(cfg, tmp_path / "out")
    shipped = [r for r in report["rows"] if r["kind"] == "shipped"]
    assert len(shipped) == 1, "B all less its training files is B val: scored once"
    assert (shipped[0]["test"], shipped[0]["n"], shipped[0]["train"]) == ("B all", len(b_split.val), "B")
    assert shipped[0]["left_out"] == len(seen)
    row = f"| shipped {SHIPPED[0]} | B | B all less {len(seen)} it trained on | {len(b_split.val)} |"
    assert row in (tmp_path / "out" / "protocol.md").read_text()


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "configs" / "protocols").glob("*.yaml")), ids=str)
def test_shipped_protocols_validate_and_name_a_probe_recipe(path, monkeypatch):
    monkeypatch.chdir(path.parents[2])  # their paths are relative to the repository root
    cfg = load_protocol(path)
    assert load_config(cfg.recipe, cfg.overrides).probe is not None and cfg.rows


def test_a_stack_has_seen_the_files_its_members_trained_on(folders, monkeypatch):
    _, _, recipe = folders
    shipped = get_pretrained_cfg("aigen-clip-b16.faces_flux")
    member = replace(shipped, extra={"config": load_config(recipe).model_dump(mode="json")})
    stack = replace(shipped, extra={"members": ["m1", "m2"]})
    monkeypatch.setattr(protocol, "get_pretrained_cfg", lambda name: stack if name == "stack" else member)
    files, source = protocol.seen_files("stack")
    assert files and files == protocol.seen_files("m1")[0] and source == "A"
    unknown = replace(shipped, extra={})
    monkeypatch.setattr(protocol, "get_pretrained_cfg", lambda name: stack if name == "stack" else unknown)
    assert protocol.seen_files("stack") == (None, "unknown")


def test_rates_at_the_band_are_the_shares_at_or_above_it():
    labels, probs = np.array([0, 0, 0, 0, 1, 1]), np.array([0.1, 0.5, 0.7, 0.9, 0.6, 0.95])
    row = protocol.scores(labels, probs, band=0.7)
    assert (row["real_at_band"], row["fake_at_band"], row["real_over_half"]) == (0.5, 0.5, 0.75)
    assert protocol.scores(labels, probs)["real_at_band"] is None
    assert protocol.scores(labels[:4], probs[:4], band=0.7)["eer"] is None
