"""An audio decompression bomb: hours of silence in a 2 MB FLAC (issue 19, item 3, memory per file kind).

2.9 h of 48 kHz stereo silence (within the 3-h limit) took `fakescope detect` to 9.9 GB and 43 s:
decoding held the whole file at its own rate and channels as float32, then a mono copy, then the
resampled copy, and the frame levels squared all of it in float64. Now decoding streams chunk by
chunk (media.audio_decoding), so the one full-length array is the 16 kHz mono recording, bounded
by `MediaLimits.max_audio_seconds`; levels are measured in blocks and the model's windows made a
batch at a time; and the held samples count against the process's decode budget.

Memory is measured on subprocesses: the peak resident size of the bomb's analysis against the
same command on a bundled recording, so what the models take cancels out.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from fakescope.errors import MediaTooLargeError
from fakescope.media.audio import decoded_audio_bytes
from fakescope.media.limits import MediaLimits
from tests.conftest import EXAMPLES
from tests.hostile.test_video_memory import detect_cli, peak_mib

BOMB_HOURS = 2.9
MIB = 1024**2
# Growth of the peak over a bundled recording: the 16 kHz recording itself and some room, far under
# a second copy of it. The old code grew by 8.7 GiB.
BOMB_GROWTH_MIB = decoded_audio_bytes(BOMB_HOURS * 3600) / MIB + 384


def silent_flac(path: Path, hours: float, *, rate: int = 48_000, channels: int = 2) -> Path:
    """Hours of digital silence, written a minute at a time: a few megabytes at most."""
    block = np.zeros((60 * rate, channels), np.int16)
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        for _ in range(round(hours * 60)):
            f.write(block)
    return path


@pytest.mark.timeout(240)
def test_hours_of_compressed_silence_are_analysed_within_bounded_memory(tmp_path: Path) -> None:
    bomb = silent_flac(tmp_path / "silence.flac", BOMB_HOURS)
    assert bomb.stat().st_size < 3_000_000
    base, _ = peak_mib(detect_cli(EXAMPLES / "speech_real_fsdd_theo.wav"))
    peak, out = peak_mib(detect_cli(bomb))
    result = json.loads(out)
    assert (result["status"], result["reason"]) == ("not_applicable", "silence only"), result
    assert peak - base < BOMB_GROWTH_MIB, f"{BOMB_HOURS} h of silence: peak {peak:.0f} MiB, a recording {base:.0f} MiB"


class _StubVoice(torch.nn.Module):
    """Enough of an audio model for analyse_audio: a config and P(fake) 0.5 per window; records the budget held."""

    def __init__(self, budget: object) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.pretrained_cfg = SimpleNamespace(sample_rate=16_000, window_seconds=4.0, hop_seconds=2.0)
        self.budget, self.held = budget, []

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        self.held.append(self.budget.held)
        return {"prob": torch.full((len(windows),), 0.5)}


def _voice(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)


@pytest.mark.timeout(60)
def test_the_decoded_samples_are_held_from_the_process_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fakescope.detect.audio as detect_audio
    from fakescope.detect.timing import StageTimer
    from fakescope.media import probe
    from fakescope.media.budget import DecodeBudget

    budget = DecodeBudget(10**9)
    monkeypatch.setattr(detect_audio, "DECODE_BUDGET", budget)
    path = tmp_path / "voice.flac"
    sf.write(path, _voice(10.0), 16_000)
    model = _StubVoice(budget)
    evidence = detect_audio.analyse_audio(model, probe(path), StageTimer(), min_seconds=1.0)
    assert evidence.score == pytest.approx(0.5) and len(evidence.windows) == 4
    assert model.held == [-(-decoded_audio_bytes(10.0) // 3)] and budget.held == 0


@pytest.mark.timeout(120)
def test_sound_over_the_audio_limit_skips_a_videos_audio_and_refuses_an_audio_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fakescope.detect.audio as detect_audio
    from fakescope.detect.timing import StageTimer
    from fakescope.media import probe
    from tests.detect.test_audio_pipeline import write_talking_video

    monkeypatch.setattr(
        detect_audio, "load_audio", functools.partial(detect_audio.load_audio, limits=MediaLimits(max_audio_seconds=2.0))
    )
    model = _StubVoice(detect_audio.DECODE_BUDGET)
    frames = [np.full((48, 64, 3), 40 + i, np.uint8) for i in range(8)]
    video = write_talking_video(tmp_path / "talk.mp4", frames, _voice(3.0), fps=2)
    evidence = detect_audio.analyse_audio(model, probe(video), StageTimer(), min_seconds=1.5)
    assert evidence.score is None and evidence.skipped == "audio is too long (over 2.0s, the limit)"
    recording = tmp_path / "voice.flac"
    sf.write(recording, _voice(3.0), 16_000)
    with pytest.raises(MediaTooLargeError) as err:
        detect_audio.analyse_audio(model, probe(recording), StageTimer(), min_seconds=1.0)
    assert str(err.value) == f"{recording}: audio is too long (over 2.0s, the limit)"
