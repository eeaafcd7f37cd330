"""How far can a read-out of frozen Whisper statistics reach on generator families it never saw?

A check in minutes beside `audio_generalisation.py`, which trains the whole recipe once per held-out
unit (hours): no network is trained here. Each clip's first window (what training scores) goes
through the pretrained Whisper tiny.en log-mel, convolution stem and four blocks; per stage the
mean, the spread and the mean absolute frame-to-frame change over the window's frames are cached
(`runs/encoder_stats/<corpus hash>.npz`). Then, for each held-out family, every feature set is
standardised and read out by a logistic regression (two strengths) and a one-hidden-layer MLP,
fitted on the corpus train split without that family and scored on the same held-out set as
`audio_generalisation.py` (the family's fakes against the val reals of their recording domain).
"seen" fits on every family and scores the speech_synth val split (unseen utterances).

`audio-whisper-probe` is the "blocks 1-2" set read out linearly; the other sets ask whether more
of the encoder, or other statistics of it, carry what generalises.

    python benchmarks/encoder_probe.py [--data runs/speech_corpus] [--families gan-vocoder tts ...]
        [--threads 2] [--out runs/encoder_probe.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
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
from fakescope.models.audio_features import masked_mean_spread
from fakescope.models.whisper import WhisperLogMel, pretrained_whisper_encoder

log = logging.getLogger(__name__)

STAGES = ("log-mel", "stem", "block 1", "block 2", "block 3", "block 4")
STATISTICS = ("mean", "spread", "change")
FEATURE_SETS = {  # name → (stages, statistics)
    "blocks 1-2": (("block 1", "block 2"), ("mean", "spread")),
    "blocks 1-4": (("block 1", "block 2", "block 3", "block 4"), ("mean", "spread")),
    "blocks 1-2 + change": (("block 1", "block 2"), STATISTICS),
    "stem + blocks 1-2": (("stem", "block 1", "block 2"), ("mean", "spread")),
    "log-mel + blocks 1-2": (("log-mel", "block 1", "block 2"), ("mean", "spread")),
}


def masked_statistics(frames: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """(B, T, D) frames with a (B, T) mask → their mean, spread (as the shipped probe reads them) and mean
    |frame-to-frame change|, each (B, D)."""
    pairs = (mask[:, 1:] & mask[:, :-1]).float()
    change = (pairs.unsqueeze(-1) * (frames[:, 1:] - frames[:, :-1]).abs()).sum(1) / pairs.sum(1, keepdim=True).clamp(min=1)
    return [*masked_mean_spread(frames, mask), change]


@torch.inference_mode()
def encoder_statistics(clips: SpeechClipDataset, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Every stage's statistics over each clip's first window: {"<stage>/<statistic>": (N, D)}."""
    frontend, encoder = WhisperLogMel(), pretrained_whisper_encoder(4)
    out: dict[str, list[np.ndarray]] = {f"{stage}/{stat}": [] for stage in STAGES for stat in STATISTICS}
    loader = torch.utils.data.DataLoader(clips, batch_size=batch_size, collate_fn=pad_batch)
    for step, (waves, _) in enumerate(loader):
        mel, mel_mask = frontend(waves)
        stem = encoder.stem(mel, mel_mask)
        blocks, mask = encoder(mel, mel_mask)
        stages = [(mel.transpose(1, 2), mel_mask), (stem, mask), *((h, mask) for h in blocks)]
        for stage, (frames, frame_mask) in zip(STAGES, stages, strict=True):
            for stat, value in zip(STATISTICS, masked_statistics(frames, frame_mask), strict=True):
                out[f"{stage}/{stat}"].append(value.numpy())
        if step % 50 == 0:
            log.info("encoded %d / %d clips", step * batch_size, len(clips))
    return {key: np.concatenate(values) for key, values in out.items()}


def cached_statistics(root: Path, samples: list[Sample]) -> tuple[dict[str, np.ndarray], list[Sample]]:
    """The statistics of `samples`' usable clips, computed once per corpus build."""
    cache = Path("runs/encoder_stats") / f"{corpus_version(root)}.npz"
    clips = SpeechClipDataset(samples, get_pretrained_cfg("audio-whisper-probe.speech"))
    if not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **encoder_statistics(clips))
    with np.load(cache) as stored:
        return dict(stored), clips.samples


def read_outs() -> dict[str, object]:
    return {
        "linear C=0.003": LogisticRegression(C=0.003, max_iter=3000, class_weight="balanced"),
        "linear C=0.03": LogisticRegression(C=0.03, max_iter=3000, class_weight="balanced"),
        "MLP 256": MLPClassifier((256,), alpha=1e-2, early_stopping=True, random_state=0),
    }


def evaluate(stats: dict[str, np.ndarray], samples: list[Sample], families: list[str]) -> dict[str, dict[str, float]]:
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
        for set_name, (stages, statistics) in FEATURE_SETS.items():
            x = np.concatenate([stats[f"{stage}/{stat}"] for stage in stages for stat in statistics], axis=1)
            for read_out_name, read_out in read_outs().items():
                model = make_pipeline(StandardScaler(), read_out).fit(x[train], labels[train])
                key = f"{family} | {set_name} | {read_out_name}"
                scores = model.predict_proba(x[test])[:, 1].clip(1e-6, 1 - 1e-6)
                results[key] = metrics_of(np.log(scores / (1 - scores)), labels[test])
                log.info("%s: EER %.3f AUC %.3f", key, results[key]["eer"], results[key]["auc"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/speech_corpus"))
    parser.add_argument("--families", nargs="*", default=[f for f in SYNTH_FAMILIES if f != "neural-codec"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/encoder_probe.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    stats, samples = cached_statistics(args.data, load_samples(args.data, extensions=AUDIO_EXTENSIONS))
    results = evaluate(stats, samples, args.families)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"{'held out | features | read-out':62s} {'EER':>6s} {'AUC':>6s} {'fakes':>6s} {'reals':>6s}")
    for key, r in results.items():
        print(f"{key:62s} {r['eer']:6.3f} {r['auc']:6.3f} {r['fakes']:6d} {r['reals']:6d}")


if __name__ == "__main__":
    main()
