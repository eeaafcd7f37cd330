"""Names and option sets shared by every layer: the one home for each, importable without torch.

The CLI and the service settings read the default model names from here, so that `fakescope
--help` and settings validation never import the model code.
"""

from __future__ import annotations

from typing import Literal

__version__ = "0.1.0"

# What a file is, as sniffed from its bytes; also the Result's `media_type`.
MediaKind = Literal["image", "video", "audio"]
# What kind of evidence a score came from (a video's faces, a whole picture, speech).
Modality = Literal["video", "image", "audio"]
Verdict = Literal["authentic", "suspicious", "manipulated"]

# The face-swap model scored on every face crop, the AI-picture model added for pictures and
# the speech model added for audio and a video's sound ("auto" in the Detector's options).
# DEFAULT_MODEL: the EfficientNet-Lite0 refined by the CLIP face model (distillation): its speed,
# far fewer false alarms on other sources and portraits. ACCURATE_MODEL: the CLIP face model itself,
# at about twice the video cost (docs/RESULTS.md, "Across datasets").
DEFAULT_MODEL = "faceswap-effnet-lite0.dfdc_ffpp_kd"
ACCURATE_MODEL = "faceswap-clip-b16.dfdc_ffpp"
DEFAULT_IMAGE_MODEL = "aigen-clip-b16.faces_flux"
# DEFAULT_AUDIO_MODEL: a linear read-out of the frozen Whisper base encoder, trained on the speech corpus and
# speech_tts: far better than the previous stack-speech on modern TTS / voice conversion it never saw,
# worse on the signal-processing vocoders of the corpus (docs/RESULTS.md, Audio v2).
DEFAULT_AUDIO_MODEL = "audio-whisper-base.speech"
# Every audio path (decoding, speech models, Whisper) works at this rate.
SAMPLE_RATE = 16_000

# The engine defaults that the CLI, the service settings and the library share (detect.options).
# yuface: the most frames with a face, the fastest, and the same video AUC as MTCNN within a few
# real/fake pairs (see docs/RESULTS.md, face detectors).
DEFAULT_FACE_DETECTOR = "yuface"
# Faces are looked for on every k-th sampled frame and followed along the tracks in between.
DEFAULT_DETECT_EVERY = 2
# Face crops per model forward (a video's go through in one forward up to this many, 4 faces x 32 frames):
# the cap bounds the activations' memory for crowded clips.
MAX_CROPS_PER_FORWARD = 128
