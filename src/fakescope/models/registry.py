"""Model registry: detectors are built by name, like `timm.create_model`.

A model name is `architecture.tag`; the architecture is a factory registered with
`@register_model`, the tag selects one of its pretrained configs (the first is the default).
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from fakescope.constants import DEFAULT_MODEL
from fakescope.errors import ModelError
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg

log = logging.getLogger(__name__)

ModelFactory = Callable[..., ClassifierModel]

_factories: dict[str, ModelFactory] = {}
_pretrained_cfgs: dict[str, dict[str, PretrainedCfg]] = {}


def register_model(cfgs: dict[str, PretrainedCfg]) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory `name(pretrained_cfg=..., **kw)` with its pretrained configs by tag."""

    def wrap(fn: ModelFactory) -> ModelFactory:
        name = fn.__name__.replace("_", "-")
        if name in _factories:
            raise ValueError(f"model {name!r} is already registered")
        _factories[name] = fn
        _pretrained_cfgs[name] = dict(cfgs)
        return fn

    return wrap


def split_model_name(name: str) -> tuple[str, str | None]:
    arch, _, tag = name.partition(".")
    return arch, tag or None


def resolve_name(name: str) -> str:
    """`arch` -> `arch.<default tag>`; `arch.tag` unchanged (unknown names are left to get_pretrained_cfg)."""
    arch, tag = split_model_name(name)
    cfgs = _pretrained_cfgs.get(arch) or {}
    tag = tag or next(iter(cfgs), None)
    return f"{arch}.{tag}" if tag else arch


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """Config for `arch.tag` (or the architecture's default tag), merged with its JSON card."""
    arch, tag = split_model_name(name)
    if arch not in _factories:
        known = ", ".join(list_models()) or "none"
        raise ModelError(f"unknown model {name!r} (registered: {known})")
    cfgs = _pretrained_cfgs[arch]
    if not cfgs:
        return PretrainedCfg()
    tag = tag or next(iter(cfgs))
    if tag not in cfgs:
        raise ModelError(f"model {arch!r} has no pretrained tag {tag!r} (tags: {', '.join(cfgs)})")
    return cfgs[tag].with_card()


def list_models(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Registered names matching a glob; with `pretrained=True`, only `arch.tag` names whose weights ship."""
    names: list[str] = []
    for arch in sorted(_factories):
        if pretrained:
            for tag, cfg in cfgs_items(arch):
                path = cfg.weights_path()
                if path is not None and path.is_file():
                    names.append(f"{arch}.{tag}")
        else:
            names.extend([f"{arch}.{tag}" for tag in _pretrained_cfgs[arch]] or [arch])
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def cfgs_items(arch: str) -> list[tuple[str, PretrainedCfg]]:
    return [(tag, cfg.with_card()) for tag, cfg in _pretrained_cfgs[arch].items()]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_weights(name: str, cfg: PretrainedCfg) -> Path:
    """Path of the weight file, or a ModelError saying it has not been trained and shipped yet."""
    path = cfg.weights_path()
    if path is None:
        raise ModelError(f"{name}: no pretrained weights are registered for this model")
    if not path.is_file():
        how = f"; train it with `{cfg.recipe}`" if cfg.recipe else ""
        raise ModelError(f"{name}: weights file {cfg.file} not shipped yet{how}")
    return path


def load_weights(model: ClassifierModel, cfg: PretrainedCfg, *, name: str | None = None) -> None:
    """Load the shipped weights after checking their sha256 against the card."""
    path = shipped_weights(name or str(cfg.file), cfg)
    digest = sha256_file(path)
    if cfg.sha256 and digest != cfg.sha256:
        raise ModelError(f"{path.name}: sha256 {digest[:12]}… does not match the model card ({cfg.sha256[:12]}…)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() for k, v in state.items()})


def create_model(name: str = DEFAULT_MODEL, *, pretrained: bool = True, **kwargs: object) -> ClassifierModel:
    """Build a detector by name; with `pretrained=True` its shipped weights are loaded and checked."""
    arch, _ = split_model_name(name)
    cfg = get_pretrained_cfg(name)
    model = _factories[arch](pretrained_cfg=cfg, **kwargs)
    if pretrained:
        load_weights(model, cfg, name=resolve_name(name))
    else:
        # Temperature and verdict thresholds were fitted for the shipped weights, not for these.
        model.pretrained_cfg = replace(cfg, temperature=1.0, thresholds=None)
    model.eval()
    return model
