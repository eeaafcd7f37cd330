"""Make the two bundled speech samples from the Free Spoken Digit Dataset (../shared/data/speech_real).

    python examples/make_speech_samples.py

speech_real_fsdd_theo.wav: eight digits spoken by "theo" (a val speaker, never trained on),
joined with 0.15 s pauses, resampled 8 -> 16 kHz. speech_fake_world_theo.wav: the same
recording re-synthesised by the WORLD vocoder with a higher pitch (a voice-conversion-like
fake, made by fakescope.train.speech.fakes). Both are deterministic.
"""

from pathlib import Path

import numpy as np

from fakescope.media.audio import encode_audio, load_audio, resample
from fakescope.train.speech.fakes import world_resynthesis

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent.parent / "shared" / "data" / "speech_real"
FILES = ["3_theo_19", "1_theo_45", "4_theo_43", "1_theo_20", "5_theo_31", "9_theo_42", "2_theo_38", "6_theo_42"]


def main() -> None:
    pause = np.zeros(int(0.15 * 8000), dtype=np.float32)
    words = [load_audio(DIGITS / f"{name}.wav", sample_rate=8000).samples for name in FILES]
    real8k = np.concatenate([part for word in words for part in (word, pause)])
    rng = np.random.default_rng(20261123)
    real = resample(real8k, 8000, 16000)
    real += rng.normal(0, 10 ** (-72 / 20), real.size).astype(np.float32)
    fake = world_resynthesis(real, 16000, np.random.default_rng(7))
    (HERE / "speech_real_fsdd_theo.wav").write_bytes(encode_audio(real, 16000, "wav"))
    (HERE / "speech_fake_world_theo.wav").write_bytes(encode_audio(fake, 16000, "wav"))


if __name__ == "__main__":
    main()
