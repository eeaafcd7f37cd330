"""How well does the speech detector catch generators and sources it never saw?

Leave-one-out on the speech corpus (configs/audio-*.yaml builds it): for each generator family
(and each speech_synth source), train the recipe with that family's fakes (or that source's
clips) left out of train and calib (`data.exclude`), then score
- a held-out family: all of its fakes (none was trained on) against the val reals of the
  sources its fakes come from (speech_synth reals for a speech_synth family; digit and
  speech_synth reals for a family generated here from both), so the score is about the
  generator, not the recording domain; a family with fakes from both (HiFi-GAN's are
  `gan-vocoder`) is also scored on its published fakes alone (`<unit> published`);
- a held-out source: all of its clips, both classes (its fakes against the val reals of the
  other speech_synth sources when it has no reals of its own).
EER (threshold-free) and AUC are reported per held-out unit and saved as JSON. With
`--stack-with CONFIG`, a logistic-regression stack of this config's run and CONFIG's run of the
same unit (fitted on the unit's calib split, as `fakescope train-ensemble` fits a shipped stack)
is scored too (`<unit> stack`).

    python benchmarks/audio_generalisation.py [--config configs/audio-spec-cnn.yaml] [--families ...]
        [--sources ...] [--epochs 8] [--out runs/audio_generalisation.json] [--stack-with CONFIG]

Runs are resumable: each leave-one-out run keeps its checkpoint under
runs/audio-lofo/<config>/<corpus settings hash>/<unit>/ (a rebuilt corpus starts afresh), and
finished units are read back from the output JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from fakescope.data import Sample, load_samples
from fakescope.data.audio import SpeechClipDataset, pad_batch
from fakescope.data.speech_sources import DIGIT_SOURCE
from fakescope.evaluate import binary_metrics
from fakescope.media.files import AUDIO_EXTENSIONS
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.train.config import TrainConfig, load_config
from fakescope.train.loaders import make_splits
from fakescope.train.loop import predict_logits
from fakescope.train.speech.fakes import GENERATORS
from fakescope.train.speech.tts import TTS_GENERATORS
from fakescope.train.trainer import run_training

log = logging.getLogger(__name__)

SYNTH_FAMILIES = ("gan-vocoder", "autoregressive-flow-vocoder", "tts", "voice-conversion", "neural-codec")
GENERATED_FAMILIES = tuple(family for family, _ in (*GENERATORS.values(), *TTS_GENERATORS.values()))
SYNTH_SOURCES = ("umelgan", "wnv", "lvc", "sgv2", "vocos", "univnet", "espnet", "pwg")


def held_out_set(samples: list[Sample], column: str, value: str) -> list[Sample]:
    """What a model trained without `column=value` is scored on (see the module docstring)."""
    unit = [s for s in samples if s.info.get(column) == value]
    if column == "source" and any(s.label == 0 for s in unit):
        return unit
    fakes = [s for s in unit if s.label == 1]
    sources = {s.info.get("source") for s in fakes}
    digits = DIGIT_SOURCE in sources
    synth = bool(sources - {DIGIT_SOURCE})
    val_reals = [
        s for s in samples if s.label == 0 and s.split == "val" and (digits if s.info.get("source") == DIGIT_SOURCE else synth)
    ]
    return fakes + val_reals


def published_part(held: list[Sample]) -> list[Sample]:
    """The speech_synth fakes of a held-out family that also has fakes made here (HiFi-GAN is a
    `gan-vocoder`), against the speech_synth val reals: comparable with runs before it was added."""
    own = {*GENERATORS, *TTS_GENERATORS}
    fakes = [s for s in held if s.label == 1 and s.info.get("generator") not in own]
    if not fakes or len(fakes) == sum(s.label for s in held):
        return []
    return fakes + [s for s in held if s.label == 0 and s.info.get("source") != DIGIT_SOURCE]


def logits_of(
    weights: Path, model_name: str, clips: SpeechClipDataset, samples: list[Sample], model_args: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of the fp16-rounded weights (as shipped) on `samples`, read from the prepared `clips`."""
    model = create_model(model_name, pretrained=False, **(model_args or {}))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.half().float() for k, v in state.items()})
    index = {s.path: i for i, s in enumerate(clips.samples)}
    subset = torch.utils.data.Subset(clips, [index[s.path] for s in samples if s.path in index])
    loader = torch.utils.data.DataLoader(subset, batch_size=64, collate_fn=pad_batch)
    return predict_logits(model, loader, device=torch.device("cpu"), amp=False)


def metrics_of(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    metrics = binary_metrics(labels, 1 / (1 + np.exp(-logits)))
    return {"eer": metrics["eer"], "auc": metrics["auc"], "fakes": int(labels.sum()), "reals": int((labels == 0).sum())}


def score(
    weights: Path, model_name: str, clips: SpeechClipDataset, samples: list[Sample], model_args: dict | None = None
) -> dict[str, float]:
    """EER / AUC of the fp16-rounded weights (as shipped) on `samples`."""
    return metrics_of(*logits_of(weights, model_name, clips, samples, model_args))


def score_stack(
    members: list[tuple[Path, TrainConfig]], clips: SpeechClipDataset, calib: list[Sample], held: list[Sample]
) -> dict[str, float]:
    """A logistic-regression stack of leave-one-out runs (as `fakescope train-ensemble` fits one),
    fitted on the unit's calib split, which none of the members trained on and which lacks the unit too."""

    def features(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
        outputs = [logits_of(weights, cfg.model, clips, samples, cfg.model_args) for weights, cfg in members]
        return np.stack([logits for logits, _ in outputs], axis=1), outputs[0][1]

    meta = LogisticRegression(C=1.0).fit(*features(calib))
    x_held, y_held = features(held)
    return metrics_of(meta.decision_function(x_held), y_held)


def record(card_path: Path, results: dict[str, dict[str, float]], dataset: str) -> None:
    """Write the leave-one-out figures into a model card as `<dataset>/leave-one-out <unit>` metrics,
    replacing earlier figures of the same units; the card's sha256 is that of the weights, so it stays valid."""
    card = json.loads(card_path.read_text())
    card["metrics"] = card.get("metrics", {}) | {f"{dataset}/leave-one-out {key}": value for key, value in results.items()}
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def corpus_version(root: Path) -> str:
    """The corpus build's settings hash: runs trained on another build of the corpus are not resumed as done."""
    try:
        return str(json.loads((root / "manifest.json").read_text())["settings_hash"])
    except (OSError, ValueError, KeyError) as err:
        raise SystemExit(f"{root}: no finished speech corpus ({err}); train the recipe once to build it") from err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/audio-spec-cnn.yaml"))
    parser.add_argument("--families", nargs="*", default=[*SYNTH_FAMILIES, *GENERATED_FAMILIES])
    parser.add_argument("--sources", nargs="*", default=list(SYNTH_SOURCES))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/audio_generalisation.json"))
    parser.add_argument("--rescore", action="store_true", help="score units whose run already finished again, train nothing new")
    parser.add_argument("--card", type=Path, help="also record the results in this model card (weights JSON) under metrics")
    parser.add_argument(
        "--stack-with",
        type=Path,
        metavar="CONFIG",
        help="also score a stack of this config's run and CONFIG's run of the same unit (run that first)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    units = [("family", f) for f in args.families] + [("source", s) for s in args.sources]
    runs = Path("runs/audio-lofo") / args.config.stem / corpus_version(load_config(args.config).data.root)
    clips: SpeechClipDataset | None = None
    for column, value in units:
        key = f"{column}={value}"
        run_dir = runs / key.replace("=", "-")
        if (key in results and not args.rescore) or (args.rescore and not (run_dir / "best.pt").is_file()):
            continue
        cfg = load_config(
            args.config,
            [
                f"data.exclude=[{key}]",
                f"name=lofo-{value}",
                f"run_dir={run_dir}",
                "tracker=none",
                f"schedule.epochs={args.epochs}",
                f"threads={args.threads}",
            ],
        )
        samples = load_samples(cfg.data.root, extensions=AUDIO_EXTENSIONS)
        held = held_out_set(samples, column, value)
        if not any(s.label == 1 for s in held):
            log.warning("%s: no fakes to score, skipped", key)
            continue
        if not args.rescore:
            run_training(cfg, resume=(run_dir / "checkpoint.pt").is_file())
        if clips is None:
            clips = SpeechClipDataset(samples, create_model(cfg.model, pretrained=False).pretrained_cfg)
        results[key] = score(run_dir / "best.pt", cfg.model, clips, held, cfg.model_args)
        log.info("%s: %s", key, results[key])
        if published := published_part(held):
            results[f"{key} published"] = score(run_dir / "best.pt", cfg.model, clips, published, cfg.model_args)
            log.info("%s published: %s", key, results[f"{key} published"])
        if args.stack_with is not None:
            other = load_config(args.stack_with, [f"data.exclude=[{key}]"])
            other_run = Path("runs/audio-lofo") / args.stack_with.stem / corpus_version(other.data.root) / run_dir.name
            if (other_run / "best.pt").is_file():
                calib = make_splits(cfg, get_pretrained_cfg(cfg.model)).calib
                results[f"{key} stack"] = score_stack(
                    [(run_dir / "best.pt", cfg), (other_run / "best.pt", other)], clips, calib, held
                )
                log.info("%s stack: %s", key, results[f"{key} stack"])
            else:
                log.warning("%s: no %s run to stack with (%s)", key, args.stack_with.stem, other_run)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.card is not None:
        record(args.card, results, load_config(args.config).data.root.name)
    print(f"{'held out':40s} {'EER':>6s} {'AUC':>6s} {'fakes':>6s} {'reals':>6s}")
    for key, r in results.items():
        print(f"{key:40s} {r['eer']:6.3f} {r['auc']:6.3f} {r['fakes']:6d} {r['reals']:6d}")


if __name__ == "__main__":
    main()
