"""Cross-dataset protocols (DeepfakeBench-style): a probe recipe's head trained on some folders, tested on another.

`fakescope eval --protocol configs/protocols/<name>.yaml` runs every row of a protocol file. Each row
fits the head of the file's `recipe` (model, layers, head, optimiser, probe settings, seed and split
fractions) on its train datasets with the very function `fakescope train` uses (train.probe.fit_head),
temperature included (on the row's calib), then scores its test set once. A test dataset that is also
trained on is tested on its val split; one that is not is tested whole (train and val): that is the
cross-dataset figure. `hold_out: method=Deepfakes` removes those fakes from train and calib and tests on
the test scope's reals plus those fakes alone, taken from every split of the test dataset since none of
them was trained on: a manipulation never seen in training.

`shipped` models are scored on each distinct test set as extra rows: each file straight into the model
at its input size (model input only, no face detection), leaving out the files the shipped weights were
trained or calibrated on (rebuilt from their card), so that no row scores a model on its own training data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from fakescope.data import LABELS, Sample, Splits, load_samples, three_way_split
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.evaluate.calibration import sigmoid
from fakescope.evaluate.runner import model_input_probs
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.base import ClassifierModel
from fakescope.train.card import git_sha
from fakescope.train.config import Strict, TrainConfig, load_config, read_yaml_mapping, validated
from fakescope.train.features import ProbeModel, cached_inputs
from fakescope.train.loaders import data_extensions, make_splits, tag_dataset
from fakescope.train.probe import Head, fit_head, head_logits
from fakescope.train.tuning import tuned_hidden

log = logging.getLogger(__name__)

THRESHOLD = 0.5  # P(fake) at which a file is called fake in the recall columns
# (key, heading) of the metric columns of the printed and written tables.
COLUMNS = (
    ("n", "n"),
    ("auc", "AUC"),
    ("eer", "EER"),
    ("logloss", "LogLoss"),
    ("real_recall", "real recall"),
    ("fake_recall", "fake recall"),
    ("real_over_half", "real > 0.5"),
    ("real_at_band", "real ≥ band"),
    ("fake_at_band", "fake ≥ band"),
)


class DatasetCfg(Strict):
    root: Path = Field(description="labels.csv folder or real/ + fake/ folders")
    labels: list[Literal["REAL", "FAKE"]] = Field(["REAL", "FAKE"], min_length=1, description="classes taken from it")
    val_fraction: float | None = Field(
        None, ge=0, lt=1, description="its val share when it has no split column (default: the recipe's)"
    )
    calib_fraction: float | None = Field(
        None, ge=0, lt=1, description="share of its train groups held out as calib (default: the recipe's); few groups need more"
    )


class RowCfg(Strict):
    name: str
    train: list[str] = Field(min_length=1, description="dataset names trained on")
    test: str = Field(description="dataset name tested on: its val split if trained on, else all of it")
    hold_out: str | None = Field(
        None,
        description="column=value, or several joined by | (one family named by each folder's own column): "
        "the fakes matching any leave train and calib; test keeps reals + them",
    )

    @field_validator("hold_out")
    @classmethod
    def _column_value(cls, text: str | None) -> str | None:
        for part in text.split("|") if text is not None else ():
            column, sep, value = part.partition("=")
            if not (sep and column.strip() and value.strip()):
                raise ValueError(f"{text!r} is not column=value[ | column=value] (e.g. method=Deepfakes)")
        return text

    @property
    def rules(self) -> list[tuple[str, str]]:
        """The hold-out's (column, value) pairs; a fake is held out when it matches any."""
        pairs = [part.partition("=") for part in (self.hold_out or "").split("|") if part.strip()]
        return [(column.strip(), value.strip()) for column, _, value in pairs]

    def held_out(self, sample: Sample) -> bool:
        return sample.label == 1 and any(sample.info.get(column) == value for column, value in self.rules)


class ProtocolCfg(Strict):
    name: str
    recipe: Path = Field(
        description="probe recipe (configs/*.yaml with probe:) whose model, head, optimiser and seed each row reuses"
    )
    overrides: list[str] = Field(
        [], description="dotted key=value changes to the recipe for every row, e.g. probe.c_grid=[0.003] (a row per fit)"
    )
    datasets: dict[str, DatasetCfg] = Field(min_length=1)
    rows: list[RowCfg] = Field(min_length=1)
    shipped: list[str] = Field([], description="registered models with weights also scored on every distinct test set")

    @model_validator(mode="after")
    def _known_names(self) -> ProtocolCfg:
        for row in self.rows:
            unknown = [name for name in [*row.train, row.test] if name not in self.datasets]
            if unknown:
                raise ValueError(f"row {row.name!r}: unknown dataset {unknown[0]!r} (datasets: {', '.join(self.datasets)})")
        names = [row.name for row in self.rows]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"row name {twice[0]!r} is used twice")
        return self


def load_protocol(path: Path) -> ProtocolCfg:
    """YAML file -> validated protocol; every error is one line naming the file and the key."""
    return validated(ProtocolCfg, read_yaml_mapping(path, "protocol"), path)


def load_datasets(protocol: ProtocolCfg, recipe: TrainConfig) -> dict[str, Splits]:
    """Each named dataset split as `make_splits` splits a recipe's folders (same seed, fractions, label filter), unless
    the protocol sets its own fractions."""
    out = {}
    model_cfg = get_pretrained_cfg(recipe.model)
    for name, ds in protocol.datasets.items():
        val_fraction = recipe.data.val_fraction if ds.val_fraction is None else ds.val_fraction
        samples = load_samples(
            ds.root, val_fraction=val_fraction, seed=recipe.seed, face_cfg=model_cfg, extensions=data_extensions(model_cfg)
        )
        labels = {LABELS[label] for label in ds.labels}
        kept = [s for s in tag_dataset(samples, name) if s.label in labels]
        calib_fraction = recipe.data.calib_fraction if ds.calib_fraction is None else ds.calib_fraction
        out[name] = three_way_split(kept, calib_fraction, seed=recipe.seed)
    return out


def row_samples(row: RowCfg, splits: dict[str, Splits]) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """(train, calib, test) of a row: the protocol's split semantics (module docstring)."""

    def kept(samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if not row.held_out(s)]

    train = kept([s for name in row.train for s in splits[name].train])
    calib = kept([s for name in row.train for s in splits[name].calib])
    part = splits[row.test]
    whole = [*part.train, *part.calib, *part.val]
    test = list(part.val) if row.test in row.train else whole
    if row.rules:  # reals of the test scope + the held-out fakes of every split (none was trained on)
        if not any(column in s.info for s in whole for column, _ in row.rules):
            raise FakescopeError(f"row {row.name!r}: hold_out {row.hold_out}: {row.test} has none of its columns")
        test = [s for s in test if s.label == 0] + [s for s in whole if row.held_out(s)]
        if not any(s.label == 1 for s in test):
            raise FakescopeError(f"row {row.name!r}: hold_out {row.hold_out} matches no FAKE file of {row.test}")
    for side, samples in (("train", train), ("calib", calib)):
        if len({s.label for s in samples}) < 2:
            raise FakescopeError(f"row {row.name!r}: its {side} split needs both REAL and FAKE files (has {len(samples)})")
    if not test:
        raise FakescopeError(f"row {row.name!r}: no files to test in {row.test}")
    return train, calib, test


def describe(row: RowCfg) -> tuple[str, str]:
    """(train, test) as the table shows them."""
    held = " / ".join(value for _, value in row.rules)
    train = " + ".join(row.train) + (f" without {held}" if held else "")
    scope = "val" if row.test in row.train else "all"
    test = f"{row.test} {scope}" + (f" reals + all {held} fakes" if held else "")
    return train, test


def scores(labels: np.ndarray, probs: np.ndarray, band: float | None = None) -> dict[str, float | int | None]:
    """The table's metrics; those that need a class the test set lacks are None (AUC on reals alone). `band`: the
    `manipulated` cut fitted with the head (the recipe's false-alarm target on its calib reals)."""
    real, fake = probs[labels == 0], probs[labels == 1]
    both = bool(real.size and fake.size)
    m = binary_metrics(labels, probs, threshold=THRESHOLD)
    return {
        "n": int(labels.size),
        "n_real": int(real.size),
        "n_fake": int(fake.size),
        "auc": m["auc"] if both else None,
        "eer": m["eer"] if both else None,
        "logloss": m["logloss"],
        "real_recall": float(np.mean(real < THRESHOLD)) if real.size else None,
        "fake_recall": float(np.mean(fake >= THRESHOLD)) if fake.size else None,
        "real_over_half": float(np.mean(real >= THRESHOLD)) if real.size else None,
        "real_at_band": float(np.mean(real >= band)) if real.size and band is not None else None,
        "fake_at_band": float(np.mean(fake >= band)) if fake.size and band is not None else None,
    }


def seen_files(name: str) -> tuple[set[Path] | None, str]:
    """Files a shipped model was trained or calibrated on, rebuilt from its card's recipe, and where they came from
    (None when the card does not say)."""
    cfg = get_pretrained_cfg(name)
    if members := cfg.extra.get("members"):  # a stack: what any member trained on (its meta-model saw their calib)
        found = [seen_files(member) for member in members]
        if any(files is None for files, _ in found):
            return None, "unknown"
        return set().union(*(files for files, _ in found)), " + ".join(dict.fromkeys(source for _, source in found))
    config = cfg.extra.get("config")
    try:
        train_cfg = TrainConfig.model_validate(config)
        splits = make_splits(train_cfg, cfg)
    except (ValidationError, FakescopeError) as err:
        log.warning("%s: cannot rebuild its training split (%s); its rows may include files it trained on", name, err)
        return None, "unknown"
    also = [f"{s.root.name}{' reals' if s.labels == ['REAL'] else ''}" for s in train_cfg.data.also]
    source = " + ".join([train_cfg.data.root.name, *also])
    return {s.path.resolve() for s in [*splits.train, *splits.calib]}, source


def shipped_probs(model: ClassifierModel, samples: list[Sample]) -> np.ndarray:
    """Calibrated P(fake) as the shipped model gives it on each file alone: probe heads from their cached inputs."""
    if isinstance(model, ProbeModel):
        logits = head_logits(model, cached_inputs(model, samples), tuned_hidden(model, samples))
        return sigmoid(logits / model.pretrained_cfg.temperature)
    return model_input_probs(model, samples)


def shipped_rows(name: str, tests: dict[str, list[Sample]]) -> list[dict]:
    """A shipped model on each test set, less the files it trained on; a set that this leaves empty, or equal to
    one already scored, gives no row. Each distinct file is scored once, however many sets hold it."""
    model = create_model(name, pretrained=True).eval()
    seen, source = seen_files(name)
    unseen = {text: [s for s in test if seen is None or s.path.resolve() not in seen] for text, test in tests.items()}
    files = list({s.path: s for test in unseen.values() for s in test}.values())
    prob = dict(zip([s.path for s in files], shipped_probs(model, files) if files else [], strict=True))
    rows, scored = [], set()
    for test_text, kept in unseen.items():
        key = frozenset(s.path for s in kept)
        if not kept or key in scored:
            log.info("shipped %s on %s: no row (%d files left once its training files are out)", name, test_text, len(kept))
            continue
        scored.add(key)
        band = (model.pretrained_cfg.thresholds or {}).get("fake_at_or_above")
        result = scores(np.array([s.label for s in kept]), np.array([prob[s.path] for s in kept]), band)
        left_out = len(tests[test_text]) - len(kept)
        rows.append(
            {"name": f"shipped {name}", "kind": "shipped", "train": source, "test": test_text, "left_out": left_out, **result}
        )
        log.info("shipped %s on %s: %s", name, test_text, result)
    return rows


def run_protocol(protocol: ProtocolCfg, out_dir: Path) -> dict:
    """Every row, then every shipped model on every distinct test set. Every row's data is checked before the
    first fit, and protocol.json / protocol.md are rewritten as rows complete, so a stopped run keeps its rows."""
    recipe = load_config(protocol.recipe, protocol.overrides)
    if recipe.probe is None:
        raise FakescopeError(f"{protocol.recipe}: a protocol needs a probe recipe (one with a probe: section)")
    for name in protocol.shipped:
        path = get_pretrained_cfg(name).weights_path()
        if path is None or not path.is_file():
            raise FakescopeError(f"shipped: {name} has no shipped weights")
    splits = load_datasets(protocol, recipe)
    prepared = [(row, *row_samples(row, splits)) for row in protocol.rows]
    report = {"protocol": protocol.name, "recipe": str(protocol.recipe), "model": recipe.model, "git": git_sha(), "rows": []}
    heads: dict[tuple[tuple[str, ...], str | None], Head] = {}
    tests: dict[str, list[Sample]] = {}
    for row, train, calib, test in prepared:
        key = (tuple(row.train), row.hold_out)
        if key not in heads:
            log.info("%s: fitting on %d train / %d calib files", row.name, len(train), len(calib))
            heads[key] = fit_head(recipe, train, calib)
        head = heads[key]
        train_text, test_text = describe(row)
        probs = head.probs(cached_inputs(head.model, test), tuned_hidden(head.model, test))
        result = scores(np.array([s.label for s in test]), probs, head.verdict_thresholds(recipe)["fake_at_or_above"])
        log.info("%s: %s", row.name, result)
        report["rows"].append({"name": row.name, "kind": "protocol", "train": train_text, "test": test_text, **result})
        report["rows"][-1]["temperature"] = round(head.temperature, 4)
        tests.setdefault(test_text, test)
        write_report(report, out_dir)
    for name in protocol.shipped:
        report["rows"] += shipped_rows(name, tests)
        write_report(report, out_dir)
    return report


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "protocol.json").write_text(json.dumps(report, indent=2))
    (out_dir / "protocol.md").write_text(markdown(report))


def cell(row: dict, key: str) -> str:
    """A metric as the tables print it: counts whole, rates to 3 decimals, a missing one as —."""
    value = row.get(key)
    if value is None:
        return "—"
    return str(value) if key == "n" else f"{value:.3f}"


def test_cell(row: dict) -> str:
    """The test column: a shipped row says how many of the set's files it left out as its own training files."""
    left_out = row.get("left_out")
    return row["test"] + (f" less {left_out} it trained on" if left_out else "")


def markdown(report: dict) -> str:
    """The protocol's table as GitHub Markdown, with the notes that say how each kind of row was scored."""
    head = ["row", "train", "test", *(title for _, title in COLUMNS)]
    lines = [
        f"### {report['protocol']} ({report['model']}, recipe {report['recipe']}, git {report['git']})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * len(COLUMNS)) + "|",
    ]
    for row in report["rows"]:
        lines.append("| " + " | ".join([row["name"], row["train"], test_cell(row), *(cell(row, k) for k, _ in COLUMNS)]) + " |")
    lines += [
        "",
        f"Recalls and real > 0.5 at P(fake) = {THRESHOLD}; ≥ band: at the `manipulated` cut (protocol rows: fitted "
        "with the head for the recipe's false-alarm target on its calib reals; shipped rows: the model card's). "
        "AUC and EER are — where the test set holds one class only. "
        "Protocol rows: head fitted on the train column (temperature on its calib split); shipped rows: each file "
        "straight into the model at its input size (model input only, no face detection), less the files it was "
        "trained or calibrated on (rebuilt from its card).",
        "",
    ]
    return "\n".join(lines)
