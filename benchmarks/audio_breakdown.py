"""Where does a speech detector go wrong on the speech corpus val split?

The model card scores each family's fakes against all val reals, which mixes recording domains
(the digit reals score low, flattering speech_synth families). Here each family is scored
against the val reals of its own domain: digit fakes against the two unseen digit speakers'
reals, speech_synth fakes (and the fakes made here from speech_synth reals) against the
speech_synth val reals; each speech_synth source's published fakes against that source's own
val reals (one recording set, so what differs is the generator); plus every channel condition.
Each clip is scored on its first window, as training reports it.

    python benchmarks/audio_breakdown.py [--model audio-spec-cnn.speech] [--data runs/speech_corpus]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fakescope.data import load_samples
from fakescope.data.audio import SpeechClipDataset, pad_batch
from fakescope.data.speech_sources import DIGIT_SOURCE
from fakescope.evaluate import binary_metrics
from fakescope.media.files import AUDIO_EXTENSIONS
from fakescope.models import create_model
from fakescope.train.loop import predict_logits
from fakescope.train.speech.fakes import GENERATORS
from fakescope.train.speech.tts import TTS_GENERATORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="audio-spec-cnn.speech")
    parser.add_argument("--data", type=Path, default=Path("runs/speech_corpus"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model).eval()
    val = [s for s in load_samples(args.data, extensions=AUDIO_EXTENSIONS) if s.split == "val"]
    clips = SpeechClipDataset(val, model.pretrained_cfg)
    loader = torch.utils.data.DataLoader(clips, batch_size=32, collate_fn=pad_batch)
    logits, labels = predict_logits(model, loader, device=torch.device("cpu"), amp=False)
    info = [s.info for s in clips.samples]
    digit = np.array([i["source"] == DIGIT_SOURCE for i in info])
    family = np.array([i["family"] for i in info])
    generator = np.array([i["generator"] for i in info])
    real = family == "real"
    made_here = np.isin(generator, [*GENERATORS, *TTS_GENERATORS])
    condition = np.array([i["condition"] for i in info])
    source = np.array([i["source"] for i in info])
    rows = [("all", np.ones(len(info), bool)), ("digits (unseen speakers)", digit)]
    rows += [(f"  digits: {g}", digit & (real | (generator == g))) for g in sorted(set(generator[digit & ~real]))]
    rows += [("speech_synth (unseen utterances)", ~digit)]
    rows += [
        (f"  speech_synth published: {f}", ~digit & (real | ((family == f) & ~made_here)))
        for f in sorted(set(family[~digit & ~made_here & ~real]))
    ]
    rows += [
        (f"  speech_synth made here: {g}", ~digit & (real | (generator == g))) for g in sorted(set(generator[~digit & made_here]))
    ]
    rows += [
        (f"  {src}: published fakes vs its reals", (source == src) & (real | ~made_here)) for src in sorted(set(source[~digit]))
    ]
    rows += [(f"condition {c}", condition == c) for c in sorted(set(condition))]
    print(f"{args.model} on {args.data} val\n{'subset':44s} {'AUC':>6s} {'EER':>6s} {'fakes':>6s} {'reals':>6s}")
    for name, sel in rows:
        y, z = labels[sel], logits[sel]
        if len(set(y)) < 2:
            continue
        m = binary_metrics(y, 1 / (1 + np.exp(-z)))
        print(f"{name:44s} {m['auc']:6.3f} {m['eer']:6.3f} {int(y.sum()):6d} {int((1 - y).sum()):6d}")


if __name__ == "__main__":
    main()
