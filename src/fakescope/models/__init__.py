"""Detector architectures, their registry and pretrained configs."""

from fakescope.constants import DEFAULT_AUDIO_MODEL, DEFAULT_IMAGE_MODEL, DEFAULT_MODEL
from fakescope.models import audio as _audio  # noqa: F401  (registers the speech detectors)
from fakescope.models import clip_probe as _clip_probe  # noqa: F401  (registers the CLIP heads)
from fakescope.models import efficientnet as _efficientnet  # noqa: F401  (registers its models)
from fakescope.models import stack as _stack  # noqa: F401  (registers the stacked ensembles)
from fakescope.models import temporal as _temporal  # noqa: F401  (registers the temporal face models)
from fakescope.models import whisper_probe as _whisper_probe  # noqa: F401  (registers the Whisper heads)
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import (
    create_model,
    get_pretrained_cfg,
    list_models,
    register_model,
    sha256_file,
)

__all__ = [
    "DEFAULT_AUDIO_MODEL",
    "DEFAULT_IMAGE_MODEL",
    "DEFAULT_MODEL",
    "ClassifierModel",
    "PretrainedCfg",
    "create_model",
    "get_pretrained_cfg",
    "list_models",
    "register_model",
    "sha256_file",
]
