"""Stacked ensembles: a logistic-regression meta-model over registered detectors' logits.

A stack is registered and built by name like any detector. Its own weights are only the
meta-model (one coefficient per member plus a bias); each member loads its own shipped,
checksum-verified weights. Members must share one input contract (crop, size, mean/std)
so that a stack scores the same crops its members would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from fakescope.errors import ModelError
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.registry import create_model, register_model

INPUT_CONTRACT = (
    "input_size",
    "mean",
    "std",
    "face_margin",
    "face_shift",
    "input_kind",
    "sample_rate",
    "window_seconds",
    "hop_seconds",
)


class StackedModel(ClassifierModel):
    """features = members' raw logits (B, M); classifier = the logistic-regression meta-model."""

    def __init__(self, pretrained_cfg: PretrainedCfg, members: Sequence[ClassifierModel], member_names: Sequence[str]) -> None:
        super().__init__(pretrained_cfg)
        check_same_input(members, member_names)
        self.members = nn.ModuleList(members)
        self.member_names = list(member_names)
        self.head = nn.Linear(len(members), 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x)["logits"].float() for member in self.members], dim=1)

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(feat)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Only the meta-model: members ship (and are verified) as their own weight files."""
        return {f"head.{k}": v for k, v in self.head.state_dict().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        head = {k.removeprefix("head."): v for k, v in state_dict.items()}
        return self.head.load_state_dict(head, strict=strict, assign=assign)


def check_same_input(members: Sequence[ClassifierModel], names: Sequence[str]) -> None:
    if len(members) < 2:
        raise ModelError("a stack needs at least two member models")
    first = members[0].pretrained_cfg
    for member, name in zip(members[1:], names[1:], strict=True):
        for key in INPUT_CONTRACT:
            if getattr(member.pretrained_cfg, key) != getattr(first, key):
                raise ModelError(f"stack member {name}: {key} differs from {names[0]}'s; members must share one input")


def build_stack(pretrained_cfg: PretrainedCfg, *, members: Sequence[str] | None = None, **_: object) -> StackedModel:
    """Members are loaded with their shipped weights (the stack is trained on their outputs)."""
    names = list(members or pretrained_cfg.extra.get("members", []))
    models = [create_model(name, pretrained=True) for name in names]
    first = models[0].pretrained_cfg if models else pretrained_cfg
    contract = {key: getattr(first, key) for key in INPUT_CONTRACT}
    return StackedModel(replace(pretrained_cfg, **contract), models, names)


@register_model(
    {
        "dfdc": PretrainedCfg(
            file="stack_faceswap.dfdc.pt",
            dataset="dfdc_faces calib split (members' held-out train groups)",
            recipe="fakescope train-ensemble stack-faceswap.dfdc --out src/fakescope/weights",
            license="weights: research only (trained on DFDC data); code: Apache-2.0",
            extra={"members": ["faceswap-effnet-lite0.dfdc", "faceswap-effnet-lite0.dfdc_cutmix"]},
        )
    }
)
def stack_faceswap(*, pretrained_cfg: PretrainedCfg, members: Sequence[str] | None = None, **kwargs: object) -> StackedModel:
    """Logistic regression over the face-swap detectors trained with different recipes."""
    return build_stack(pretrained_cfg, members=members, **kwargs)


@register_model(
    {
        "speech": PretrainedCfg(
            file="stack_speech.speech.pt",
            input_kind="audio",
            dataset="speech corpus calib split (members' held-out train groups)",
            recipe="fakescope train-ensemble stack-speech.speech --data runs/speech_corpus --out src/fakescope/weights",
            license="weights: research only (speech_synth demo audio has no stated licence); code: Apache-2.0",
            extra={"members": ["audio-spec-cnn.speech", "audio-whisper-probe.speech"]},
        )
    }
)
def stack_speech(*, pretrained_cfg: PretrainedCfg, members: Sequence[str] | None = None, **kwargs: object) -> StackedModel:
    """Logistic regression over the spectrogram CNN (the fakes it was trained on) and the Whisper
    probe (generators it never saw)."""
    return build_stack(pretrained_cfg, members=members, **kwargs)
