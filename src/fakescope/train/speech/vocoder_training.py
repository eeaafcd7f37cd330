"""Train a corpus vocoder (`vocoders`) on the speech corpus's training reals.

    python -m fakescope.train.speech.vocoder_training upsampling_vocoder [--steps 3000]

Only recordings the detector trains on as real are used (train-split digit speakers and
speech_synth train utterances, the corpus's own split), so a val real is never one the
vocoder learned. Loss: multi-resolution STFT (spectral convergence + log magnitude), the
recipe of Parallel WaveGAN's generator without its discriminator. Checkpoints every
`--save-every` steps in the run folder; rerunning resumes. The weights and a card (sha256,
recipe, reconstruction error on held-out reals) go to weights/vocoders/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fakescope.data.speech_sources import read_digit_utterances, read_synth_clips
from fakescope.errors import FakescopeError
from fakescope.media.audio import decode_audio
from fakescope.train.speech.vocoders import (
    HOP,
    TRAIN_COMMAND,
    VOCODER_RATE,
    VOCODERS,
    WEIGHTS_DIR,
    LogMel,
    build_vocoder,
)

log = logging.getLogger(__name__)

RESOLUTIONS = ((256, 64), (512, 128), (1024, 256), (2048, 512))
SEGMENT = 32 * HOP
EVAL_SECONDS = 2.0


def read_reals(
    real_root: Path,
    synth_root: Path | None,
    *,
    split: str,
    seed: int = 20261123,
    val_speakers: int = 2,
    val_fraction: float = 0.25,
) -> list[np.ndarray]:
    """Real recordings of one corpus split at 16 kHz, each scaled to peak 0.9: digit recordings one by
    one, speech_synth reals whole. Same split arguments as `build_speech_corpus`."""
    files = sorted(
        {f for u in read_digit_utterances(real_root, seed=seed, val_speakers=val_speakers) if u.split == split for f in u.files}
    )
    if synth_root is not None:
        files += [
            c.path for c in read_synth_clips(synth_root, seed=seed, val_fraction=val_fraction) if c.split == split and not c.label
        ]
    clips = [decode_audio(f, sample_rate=VOCODER_RATE)[0] for f in files]
    clips = [0.9 * c / peak for c in clips if (peak := float(np.max(np.abs(c), initial=0.0))) > 0]
    if not clips:
        raise FakescopeError(f"{real_root}: no real recordings in the {split} split")
    return clips


def sample_batch(clips: list[np.ndarray], batch: int, rng: np.random.Generator) -> torch.Tensor:
    """`batch` random SEGMENT-sample windows (clips picked in proportion to length, short ones zero-padded),
    each at a random gain of 0.3-1."""
    lengths = np.array([len(c) for c in clips], dtype=np.float64)
    out = np.zeros((batch, SEGMENT), dtype=np.float32)
    for row, i in enumerate(rng.choice(len(clips), size=batch, p=lengths / lengths.sum())):
        clip = clips[i]
        start = int(rng.integers(0, max(1, len(clip) - SEGMENT + 1)))
        piece = clip[start : start + SEGMENT]
        out[row, : len(piece)] = piece * rng.uniform(0.3, 1.0)
    return torch.from_numpy(out)


def stft_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 of log magnitudes, averaged over RESOLUTIONS."""
    total = y.new_zeros(())
    for n_fft, hop in RESOLUTIONS:
        window = torch.hann_window(n_fft, device=y.device)
        a = torch.stft(y, n_fft, hop, n_fft, window, return_complex=True).abs().clamp(min=1e-7)
        b = torch.stft(target, n_fft, hop, n_fft, window, return_complex=True).abs().clamp(min=1e-7)
        total = total + torch.linalg.norm(a - b) / torch.linalg.norm(b).clamp(min=1e-7) + (a.log() - b.log()).abs().mean()
    return total / len(RESOLUTIONS)


def reconstruct(model: torch.nn.Module, front: LogMel, wave: torch.Tensor) -> torch.Tensor:
    """The vocoder's copy of `wave` (B, samples), cut to the same length: the mel frame centred on sample
    t * HOP drives samples [t * HOP, (t + 1) * HOP)."""
    mel = front(wave)[..., : wave.shape[-1] // HOP]
    return model(mel)


def evaluate(model: torch.nn.Module, front: LogMel, clips: list[np.ndarray]) -> dict[str, float]:
    """Mean STFT loss and log-spectral distance (dB, 1024-point frames) of copy-synthesis over held-out reals."""
    model.eval()
    losses, lsd = [], []
    with torch.inference_mode():
        for clip in clips:
            n = min(len(clip), int(EVAL_SECONDS * VOCODER_RATE)) // HOP * HOP
            if n < 4 * HOP:
                continue
            wave = torch.from_numpy(clip[:n]).unsqueeze(0)
            y = reconstruct(model, front, wave)
            losses.append(float(stft_loss(y, wave)))
            lsd.append(float((_power_db(y) - _power_db(wave)).pow(2).mean(dim=1).sqrt().mean()))
    model.train()
    return {
        "stft_loss": round(float(np.mean(losses)), 4),
        "log_spectral_distance_db": round(float(np.mean(lsd)), 2),
        "clips": len(losses),
    }


def _power_db(wave: torch.Tensor) -> torch.Tensor:
    """Power spectrogram in dB, 1024-point Hann frames every 256 samples (floored at -100 dB)."""
    spec = torch.stft(wave, 1024, 256, 1024, torch.hann_window(1024), return_complex=True)
    return 10.0 * spec.abs().pow(2).clamp(min=1e-10).log10()


def train_vocoder(
    name: str,
    *,
    real_root: Path,
    synth_root: Path | None,
    run_dir: Path,
    out_dir: Path = WEIGHTS_DIR,
    steps: int = 3000,
    batch: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    save_every: int = 250,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train (or resume) vocoder `name`; writes `<out_dir>/<name>.pt` and its card; returns the card."""
    if name not in VOCODERS:
        raise FakescopeError(f"unknown vocoder {name!r}; use one of {', '.join(VOCODERS)}")
    if threads:
        torch.set_num_threads(threads)
    spec = VOCODERS[name]
    torch.manual_seed(seed)
    model, front = build_vocoder(spec.architecture), LogMel()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.8, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    rng = np.random.default_rng(seed)
    step, history = 0, []
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step, history = state["step"], state["history"]
        log.info("%s: resuming at step %d", name, step)
    train, held_out = (read_reals(real_root, synth_root, split=s) for s in ("train", "val"))
    started = time.monotonic()
    while step < steps:
        wave = sample_batch(train, batch, rng)
        loss = stft_loss(reconstruct(model, front, wave), wave)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        history.append(loss.item())
        if step % save_every == 0 or step == steps:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "step": step,
                    "history": history,
                },
                checkpoint,
            )
            log.info(
                "%s: step %d/%d, loss %.3f (last %d), %.1f s",
                name,
                step,
                steps,
                float(np.mean(history[-save_every:])),
                save_every,
                time.monotonic() - started,
            )
    return _ship(
        name,
        model,
        front,
        held_out,
        out_dir,
        steps=steps,
        batch=batch,
        lr=lr,
        seed=seed,
        train_clips=len(train),
        final_loss=float(np.mean(history[-save_every:])),
    )


def _ship(
    name: str, model: torch.nn.Module, front: LogMel, held_out: list[np.ndarray], out_dir: Path, **recipe: Any
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    card = {
        "name": name,
        "architecture": VOCODERS[name].architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "sample_rate": VOCODER_RATE,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "recipe": {"command": f"{TRAIN_COMMAND} {name} --steps {recipe['steps']}", "loss": "multi-resolution STFT", **recipe},
        "held_out_reals": evaluate(model, front, held_out),
    }
    (out_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=TRAIN_COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=sorted(VOCODERS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--real", type=Path, default=Path("../shared/data/speech_real"))
    parser.add_argument("--synth", type=Path, default=Path("../shared/data/speech_synth"))
    parser.add_argument("--run-dir", type=Path, default=None, help="checkpoints (default runs/vocoders/NAME)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        card = train_vocoder(
            args.name,
            real_root=args.real,
            synth_root=args.synth if args.synth.exists() else None,
            run_dir=args.run_dir or Path("runs/vocoders") / args.name,
            out_dir=args.out,
            steps=args.steps,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
        )
    except FakescopeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(card["held_out_reals"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
