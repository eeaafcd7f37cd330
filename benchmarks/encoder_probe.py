"""How far can a read-out of frozen Whisper statistics reach on generators and sources it never saw?

A check in minutes to hours beside `audio_generalisation.py`, which trains the whole recipe once per
held-out unit: no network is trained here. Each clip's first window (what training scores) goes
through the pretrained Whisper log-mel, convolution stem and every block of the chosen encoder
(`--encoder tiny.en`: 4 blocks of 384; `--encoder base`: 6 blocks of 512); per stage the mean, the
spread and the mean absolute frame-to-frame change over the window's frames are cached
(`runs/encoder_stats/<data>-<encoder>-<conditioning>.npz`, one file per corpus build or labels.csv).
Every feature set is standardised and read out by logistic regressions (and, for the families, a
one-hidden-layer MLP), then judged two ways:

- families: for each held-out generator family of the speech corpus, fitted on the corpus train
  split without that family and scored on the same held-out set as `audio_generalisation.py`
  (the family's fakes against the val reals of their recording domain); "seen" fits on every
  family and scores the corpus val split without digits (unseen utterances and speakers).
- sources (`../shared/data/speech_tts`, modern TTS / voice conversion / vocoders / codecs): leave
  one `source` (demo page) out: fitted on the corpus train split plus the speech_tts train rows
  of the other sources, scored on all of the held-out source's clips plus the speech_tts val reals
  of the other sources (so that fake-only sources are scored too, and every source against the
  same kind of reals). Reported: EER, AUC, and the share of the scored reals at or above the
  threshold that flags 5% of the training reals (the verdict band's target): `false_alarms` with
  the threshold placed on calibration reals held out of the fit (15% of the training groups),
  `false_alarms_train` on the reals the read-out was fitted on (optimistic); `caught` is the share
  of the fakes flagged at the first. `own_*` repeats EER and AUC against the source's own reals
  where it has some. `--data none` leaves the corpus out
  of the fit (speech_tts's other sources only).

Conditioning (`--conditioning conditioned`, the default) reads the clips as `audio-whisper-base` does
(models.whisper.WhisperLogMel(conditioned=True): the band above 7 kHz cut, digital silence filled with
white noise), taking away what speech_tts's README names as shortcuts on both classes alike;
`--conditioning none` reads them as Whisper's own recipe does.

    python benchmarks/encoder_probe.py [--encoder tiny.en|base] [--conditioning conditioned|none]
        [--evaluations families sources] [--data runs/speech_corpus|none] [--tts ../shared/data/speech_tts]
        [--families gan-vocoder tts ...] [--threads 2] [--out runs/encoder_probe-<encoder>-<conditioning>.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from audio_generalisation import SYNTH_FAMILIES, corpus_version, held_out_set, metrics_of
from fakescope.data import Sample, load_samples
from fakescope.data.audio import SpeechClipDataset, pad_batch
from fakescope.data.speech_sources import DIGIT_SOURCE
from fakescope.media.files import AUDIO_EXTENSIONS
from fakescope.models import get_pretrained_cfg
from fakescope.models.audio_features import FRAME_STATISTICS, masked_frame_statistics
from fakescope.models.whisper import WHISPER_VARIANTS, WhisperLogMel, WhisperName, pretrained_whisper_encoder

log = logging.getLogger(__name__)

STATISTICS = FRAME_STATISTICS
CONDITIONINGS = ("conditioned", "none")
FALSE_ALARM_TARGET = 0.05
MIN_FAKES = 10  # a held-out source counts in the `_10_fakes` figures with at least this many fakes
CALIB_SHARE = 0.15  # of the training groups, held out of the fit to place the false-alarm threshold
STATS_DIR = Path("runs/encoder_stats")


def stages_of(encoder: WhisperName) -> tuple[str, ...]:
    return ("log-mel", "stem", *(f"block {i}" for i in range(1, WHISPER_VARIANTS[encoder].layers + 1)))


def feature_sets(encoder: WhisperName) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """name → (stages, statistics). "blocks 1-2" is what `audio-whisper-probe` reads; the others ask
    whether more of the encoder, or other statistics of it, carry what generalises; "block k" reads
    one block at a time."""
    blocks = stages_of(encoder)[2:]
    mean_spread = ("mean", "spread")
    sets = {
        "blocks 1-2": (blocks[:2], mean_spread),
        f"blocks 1-{len(blocks)}": (blocks, mean_spread),
        "blocks 1-2 + change": (blocks[:2], STATISTICS),
        f"blocks 1-{len(blocks)} + change": (blocks, STATISTICS),
        "stem + blocks 1-2": (("stem", *blocks[:2]), mean_spread),
        "log-mel + blocks 1-2": (("log-mel", *blocks[:2]), mean_spread),
    }
    return sets | {block: ((block,), mean_spread) for block in blocks}


def prepared_clips(samples: list[Sample]) -> SpeechClipDataset:
    return SpeechClipDataset(samples, get_pretrained_cfg("audio-whisper-probe.speech"))


@torch.inference_mode()
def encoder_statistics(
    clips: SpeechClipDataset, encoder_name: WhisperName, conditioning: str, batch_size: int = 16
) -> dict[str, np.ndarray]:
    """Every stage's statistics over each clip's first window: {"<stage>/<statistic>": (N, D)}, in
    the clips' order. Batches hold clips of similar length (less padding; masked either way)."""
    stages = stages_of(encoder_name)
    frontend = WhisperLogMel(conditioned=conditioning == "conditioned")
    encoder = pretrained_whisper_encoder(len(stages) - 2, encoder_name)
    order = np.argsort([min(c.size, clips.window) for c in clips.clips], kind="stable")
    out: dict[str, list[np.ndarray]] = {f"{stage}/{stat}": [] for stage in stages for stat in STATISTICS}
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(clips, order.tolist()), batch_size=batch_size, collate_fn=pad_batch
    )
    started = time.monotonic()
    for step, (waves, _) in enumerate(loader):
        mel, mel_mask = frontend(waves)
        stem = encoder.stem(mel, mel_mask)
        blocks, mask = encoder(mel, mel_mask)
        frames = [(mel.transpose(1, 2), mel_mask), (stem, mask), *((h, mask) for h in blocks)]
        for stage, (x, x_mask) in zip(stages, frames, strict=True):
            for stat, value in zip(STATISTICS, masked_frame_statistics(x, x_mask, STATISTICS), strict=True):
                out[f"{stage}/{stat}"].append(value.numpy())
        if step % 25 == 0:
            done = (step + 1) * batch_size
            log.info(
                "%s: encoded %d / %d clips (%.0f s)", encoder_name, min(done, len(clips)), len(clips), time.monotonic() - started
            )
    unsort = np.argsort(order)
    return {key: np.concatenate(values)[unsort] for key, values in out.items()}


def cached_statistics(
    name: str, samples: list[Sample], encoder: WhisperName, conditioning: str
) -> tuple[dict[str, np.ndarray], list[Sample]]:
    """The statistics of `samples`' usable clips, computed once per data version, encoder and conditioning."""
    cache = STATS_DIR / f"{name}-{encoder}-{conditioning}.npz"
    clips = prepared_clips(samples)
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        stats = encoder_statistics(clips, encoder, conditioning)
        np.savez(cache.with_suffix(".part.npz"), **stats)
        cache.with_suffix(".part.npz").replace(cache)
    with np.load(cache) as stored:
        return dict(stored), clips.samples


def read_outs(mlp: bool = True) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {
        "linear C=0.003": lambda: LogisticRegression(C=0.003, max_iter=3000, class_weight="balanced"),
        "linear C=0.03": lambda: LogisticRegression(C=0.03, max_iter=3000, class_weight="balanced"),
    }
    if mlp:
        found["MLP 256"] = lambda: MLPClassifier((256,), alpha=1e-2, early_stopping=True, random_state=0)
    return found


def features(stats: dict[str, np.ndarray], stages: tuple[str, ...], statistics: tuple[str, ...]) -> np.ndarray:
    return np.concatenate([stats[f"{stage}/{stat}"] for stage in stages for stat in statistics], axis=1)


def logits(model: object, x: np.ndarray) -> np.ndarray:
    scores = model.predict_proba(x)[:, 1].clip(1e-6, 1 - 1e-6)
    return np.log(scores / (1 - scores))


def chosen_sets(encoder: WhisperName, names: list[str] | None) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    sets = feature_sets(encoder)
    if unknown := set(names or ()) - set(sets):
        raise SystemExit(f"unknown feature sets {sorted(unknown)}; {encoder} has {list(sets)}")
    return {name: spec for name, spec in sets.items() if names is None or name in names}


def evaluate_families(
    stats: dict[str, np.ndarray], samples: list[Sample], families: list[str], encoder: WhisperName, sets: list[str] | None = None
) -> dict[str, dict[str, float]]:
    labels = np.array([s.label for s in samples])
    row = {s.path: i for i, s in enumerate(samples)}
    results = {}
    for family in [*families, "seen"]:
        if family == "seen":
            held = [s for s in samples if s.split == "val" and s.info.get("source") != DIGIT_SOURCE]
        else:
            held = held_out_set(samples, "family", family)
        train = np.array([s.split == "train" and (family == "seen" or s.info.get("family") != family) for s in samples])
        test = np.array([row[s.path] for s in held])
        for set_name, (stages, statistics) in chosen_sets(encoder, sets).items():
            x = features(stats, stages, statistics)
            for read_out_name, read_out in read_outs().items():
                model = make_pipeline(StandardScaler(), read_out()).fit(x[train], labels[train])
                key = f"{family} | {set_name} | {read_out_name}"
                results[key] = metrics_of(logits(model, x[test]), labels[test])
                log.info("%s: EER %.3f AUC %.3f", key, results[key]["eer"], results[key]["auc"])
    return results


def in_calib(group: str, share: float = CALIB_SHARE) -> bool:
    """Whether a group falls in the calibration share, by a hash: the same rows in every fold and run."""
    return zlib.crc32(group.encode()) % 1000 < share * 1000


def evaluate_sources(
    corpus: tuple[dict[str, np.ndarray], list[Sample]] | None,
    tts: tuple[dict[str, np.ndarray], list[Sample]],
    encoder: WhisperName,
    sets: list[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Leave one speech_tts source out at a time (see the module docstring); without `corpus`, the
    read-outs learn from the other speech_tts sources alone.

    The read-out is fitted on the training rows less a calibration share of their groups; the
    false-alarm threshold is the score that flags 5% of the calibration reals (`false_alarms`, as the
    verdict bands are picked) or of the fitted training reals (`false_alarms_train`, optimistic:
    the read-out has seen them)."""
    (corpus_stats, corpus_samples), (tts_stats, tts_samples) = corpus or ({}, []), tts
    samples = [*corpus_samples, *tts_samples]
    labels = np.array([s.label for s in samples])
    is_tts = np.arange(len(samples)) >= len(corpus_samples)
    source = np.array([s.info.get("source", "") if tts else "" for s, tts in zip(samples, is_tts, strict=True)])
    split = np.array([s.split for s in samples])
    # Groups: the corpus's own; for speech_tts the speaker, else the utterance (it has no group column).
    groups = [s.info.get("speaker") or s.info["utterance"] if tts else s.group for s, tts in zip(samples, is_tts, strict=True)]
    calib = np.array([in_calib(g) for g in groups], dtype=bool)
    reals = labels == 0
    results = {}
    for set_name, (stages, statistics) in chosen_sets(encoder, sets).items():
        x = features(tts_stats, stages, statistics)
        if corpus_samples:
            x = np.concatenate([features(corpus_stats, stages, statistics), x])
        for held in sorted({s.info.get("source", "") for s in tts_samples if s.label == 1}):
            train = (split == "train") & (~is_tts | (source != held))
            own = is_tts & (source == held)
            test = own | (is_tts & (split == "val") & (source != held) & reals)
            for read_out_name, read_out in read_outs(mlp=False).items():
                model = make_pipeline(StandardScaler(), read_out()).fit(x[train & ~calib], labels[train & ~calib])
                scores = logits(model, x[test])
                result = metrics_of(scores, labels[test])
                for name, rows in (("false_alarms", train & calib & reals), ("false_alarms_train", train & ~calib & reals)):
                    threshold = float(np.quantile(logits(model, x[rows]), 1 - FALSE_ALARM_TARGET))
                    result[name] = float((scores[labels[test] == 0] >= threshold).mean())
                    result[name.replace("false_alarms", "caught")] = float((scores[labels[test] == 1] >= threshold).mean())
                if (labels[own] == 0).any():
                    own_metrics = metrics_of(logits(model, x[own]), labels[own])
                    result |= {"own_eer": own_metrics["eer"], "own_auc": own_metrics["auc"], "own_reals": own_metrics["reals"]}
                key = f"{held} | {set_name} | {read_out_name}"
                results[key] = result
                log.info(
                    "%s: EER %.3f AUC %.3f false alarms %.3f (train threshold %.3f) caught %.3f",
                    key,
                    result["eer"],
                    result["auc"],
                    result["false_alarms"],
                    result["false_alarms_train"],
                    result["caught"],
                )
    return results


def summarise(results: dict[str, dict[str, float]], seen: dict[str, dict[str, float]]) -> dict[str, dict[str, object]]:
    """Per feature set and read-out: mean and worst EER over the held-out sources (and over those with
    at least MIN_FAKES fakes: a source of 2 fakes moves its EER in steps of 0.5), mean AUC and false
    alarms, the sources with own reals (own EER), and the seen-split EER of the family evaluation."""
    by_set: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in results.items():
        held, rest = key.split(" | ", 1)
        by_set.setdefault(rest, {})[held] = value
    summary: dict[str, dict[str, object]] = {}
    for rest, per_source in by_set.items():
        values = list(per_source.values())
        big = {held: v["eer"] for held, v in per_source.items() if v["fakes"] >= MIN_FAKES}
        own = [v["own_eer"] for v in values if "own_eer" in v]
        summary[rest] = {
            "sources": len(values),
            "mean_eer": float(np.mean([v["eer"] for v in values])),
            "worst_eer": float(np.max([v["eer"] for v in values])),
            "worst_source": max(per_source, key=lambda held: per_source[held]["eer"]),
            f"mean_eer_{MIN_FAKES}_fakes": float(np.mean(list(big.values()))),
            f"worst_eer_{MIN_FAKES}_fakes": float(np.max(list(big.values()))),
            f"worst_source_{MIN_FAKES}_fakes": max(big, key=big.__getitem__),
            "mean_auc": float(np.mean([v["auc"] for v in values])),
            "mean_false_alarms": float(np.mean([v["false_alarms"] for v in values])),
            "worst_false_alarms": float(np.max([v["false_alarms"] for v in values])),
            "mean_false_alarms_train": float(np.mean([v["false_alarms_train"] for v in values])),
            "mean_caught": float(np.mean([v["caught"] for v in values])),
            "mean_own_eer": float(np.mean(own)) if own else float("nan"),
            "seen_eer": seen.get(f"seen | {rest}", {}).get("eer", float("nan")),
        }
    return summary


def print_summary(results: dict[str, object]) -> None:
    print(f"\n{results['encoder']}, conditioning {results['conditioning']}: leave-one-source-out over speech_tts")
    header = (
        "mean EER",
        "worst",
        f"mean≥{MIN_FAKES}",
        f"wrst≥{MIN_FAKES}",
        "AUC",
        "FA",
        "FA trn",
        "caught",
        "own EER",
        "seen EER",
    )
    print(f"{'features | read-out':40s} " + " ".join(f"{h:>8s}" for h in header))
    for rest, s in results["summary"].items():
        values = ("mean_eer", "worst_eer", f"mean_eer_{MIN_FAKES}_fakes", f"worst_eer_{MIN_FAKES}_fakes", "mean_auc")
        values += ("mean_false_alarms", "mean_false_alarms_train", "mean_caught", "mean_own_eer", "seen_eer")
        print(f"{rest:40s} " + " ".join(f"{s[v]:8.3f}" for v in values))


def data_name(root: Path) -> str:
    """The cache name of a folder: a speech corpus build's settings hash, else labels.csv's sha256."""
    if (root / "manifest.json").is_file():
        return f"corpus-{corpus_version(root)}"
    return f"{root.name}-{hashlib.sha256((root / 'labels.csv').read_bytes()).hexdigest()[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", choices=list(WHISPER_VARIANTS), default="tiny.en")
    parser.add_argument("--conditioning", choices=CONDITIONINGS, default="conditioned")
    parser.add_argument("--evaluations", nargs="+", choices=("families", "sources"), default=["families", "sources"])
    parser.add_argument("--data", type=Path, default=Path("runs/speech_corpus"), help="the speech corpus, or none")
    parser.add_argument("--tts", type=Path, default=Path("../shared/data/speech_tts"))
    parser.add_argument("--families", nargs="*", default=[f for f in SYNTH_FAMILIES if f != "neural-codec"])
    parser.add_argument("--sets", nargs="*", help="feature sets to read out (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    alone = "-tts-only" if args.data == Path("none") else ""
    out = args.out or Path(f"runs/encoder_probe-{args.encoder}-{args.conditioning}{alone}.json")
    corpus = None
    if args.data != Path("none"):
        corpus_samples = load_samples(args.data, extensions=AUDIO_EXTENSIONS)
        corpus = cached_statistics(data_name(args.data), corpus_samples, args.encoder, args.conditioning)
    elif "families" in args.evaluations:
        raise SystemExit("the families evaluation needs the speech corpus (--data)")
    results: dict[str, object] = {"encoder": args.encoder, "conditioning": args.conditioning, "corpus": str(args.data)}
    families: dict[str, dict[str, float]] = {}
    if "families" in args.evaluations:
        families = results["families"] = evaluate_families(*corpus, args.families, args.encoder, args.sets)
    if "sources" in args.evaluations:
        tts = cached_statistics(
            data_name(args.tts), load_samples(args.tts, extensions=AUDIO_EXTENSIONS), args.encoder, args.conditioning
        )
        sources = results["sources"] = evaluate_sources(corpus, tts, args.encoder, args.sets)
        results["summary"] = summarise(sources, families)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"{'held out | features | read-out':62s} {'EER':>6s} {'AUC':>6s} {'fakes':>6s} {'reals':>6s} {'FA':>6s}")
    for key, r in {**families, **results.get("sources", {})}.items():
        false_alarms = r.get("false_alarms", float("nan"))
        print(f"{key:62s} {r['eer']:6.3f} {r['auc']:6.3f} {r['fakes']:6d} {r['reals']:6d} {false_alarms:6.3f}")
    if "summary" in results:
        print_summary(results)


if __name__ == "__main__":
    main()
