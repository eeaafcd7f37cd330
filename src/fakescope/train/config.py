"""Training configs: one YAML file per recipe (configs/*.yaml), any key overridable.

DeepfakeBench keeps a YAML per detector; so do we. The schema below is the documentation
of every key: `fakescope train configs/x.yaml optim.lr=3e-4 schedule.epochs=2` loads the
file, applies the dotted overrides (values parsed as YAML) and validates the result, so a
typo is an error naming the key instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fakescope.data.splits import DEFAULT_CALIB_FRACTION, DEFAULT_SEED, DEFAULT_VAL_FRACTION
from fakescope.errors import FakescopeError
from fakescope.models.base import MAX_TUNED_BLOCKS
from fakescope.models.temporal import SEQUENCE_LENGTH, SEQUENCE_STRIDE
from fakescope.train.speech.catalogue import DEFAULT_GENERATORS
from fakescope.train.speech.rawboost import Stage

M = TypeVar("M", bound=BaseModel)
DEFAULT_TUNE_LR = 1e-5  # pretrained blocks move 100x slower than the head (optim.lr ~1e-3)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpeechCorpusCfg(Strict):
    """Build `data.root` from the shared speech data plus fakes generated here (train.speech.corpus), once."""

    real: Path = Field(description="real speech folder with labels.csv (speech_real: spoken digits)")
    synth: Path | None = Field(None, description="real + generated speech folder with labels.csv (speech_synth)")
    generators: list[str] = Field(list(DEFAULT_GENERATORS), description="fake generators run on the real speech")
    val_speakers: int = Field(2, ge=1, description="speakers of `real` held out as val")
    val_fraction: float = Field(0.25, gt=0, lt=1, description="share of `synth` utterances held out as val")
    digit_passes: int = Field(2, ge=1, description="times each train speaker's digit recordings are joined into utterances")
    workers: int = Field(2, ge=1)


class SourceCfg(Strict):
    """Another labelled folder trained on beside `data.root`, split the same way on its own."""

    root: Path = Field(description="labels.csv folder or real/ + fake/ folders")
    labels: list[Literal["REAL", "FAKE"]] = Field(["REAL", "FAKE"], description="classes taken from it (REAL = extra negatives)")
    val_fraction: float | None = Field(None, ge=0, lt=1, description="its val share when it has no split column (default data's)")


class DataCfg(Strict):
    root: Path = Field(description="labels.csv folder, real/ + fake/ folders, or DFDC videos + metadata.json")
    speech_corpus: SpeechCorpusCfg | None = Field(None, description="build root as a speech corpus first (audio models)")
    also: list[SourceCfg] = Field([], description="more labelled folders, each split on its own and added to every split")
    exclude: list[str] = Field([], description="column=value rows left out of train and calib (held-out generators)")
    val_fraction: float = Field(
        DEFAULT_VAL_FRACTION, ge=0, lt=1, description="share of groups held out as val when the data has no split column"
    )
    calib_fraction: float = Field(
        DEFAULT_CALIB_FRACTION,
        ge=0,
        lt=1,
        description="share of train groups held out to pick the epoch, temperature and thresholds",
    )
    frames_per_video: int = Field(8, ge=1, description="face crops extracted per video (DFDC-format folders)")
    crop_cache: Path | None = Field(None, description="where extracted video crops are cached (default runs/crop_cache/<name>)")
    limit: int | None = Field(None, ge=1, description="use at most this many train crops (smoke runs)")
    balance_power: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "audio: draw training clips with weight n**-power, n = training clips of the same family (fakes) or "
            "source (reals), each class keeping its share; 0 = every clip once an epoch, 1 = every family equally often"
        ),
    )

    @property
    def name(self) -> str:
        """The data's name in cards and metrics: its folders joined by "+" (root first)."""
        return "+".join([self.root.name, *(source.root.name for source in self.also)])


class SbiCfg(Strict):
    p: float = Field(0.0, ge=0, le=1, description="probability that a real training face becomes a self-blended pseudo-fake")


class CutMixCfg(Strict):
    p: float = Field(0.0, ge=0, le=1)
    alpha: float = Field(1.0, gt=0)


class NoiseCfg(Strict):
    p: float = Field(0.0, ge=0, le=1, description="share of training clips that get white noise (audio models)")
    snr_db: tuple[float, float] = (15.0, 40.0)


class SpeedCfg(Strict):
    p: float = Field(0.0, ge=0, le=1, description="share of training clips played faster or slower (audio models)")
    factor: tuple[float, float] = (0.9, 1.1)


class RawBoostCfg(Strict):
    p: float = Field(0.0, ge=0, le=1, description="share of training clips given RawBoost distortions (audio models)")
    stages: tuple[Stage, ...] = Field(
        ("convolutive", "impulsive"), min_length=1, description="RawBoost distortions, run in this order"
    )


class AugmentCfg(Strict):
    """Pixel augmentations go to `build_train_transform` as they are; SBI and CutMix are applied
    around it. Audio models take `noise`, `speed`, `rawboost` and `crop_seconds` only."""

    model_config = ConfigDict(extra="allow")
    sbi: SbiCfg = SbiCfg()
    cutmix: CutMixCfg = CutMixCfg()
    noise: NoiseCfg = NoiseCfg()
    speed: SpeedCfg = SpeedCfg()
    rawboost: RawBoostCfg = RawBoostCfg()
    crop_seconds: tuple[float, float] | None = Field(
        None, description="audio: train on random crops of a random length in this range (default: whole window)"
    )

    def pixel(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class OptimCfg(Strict):
    name: Literal["adamw"] = "adamw"
    lr: float = Field(6e-4, gt=0)
    weight_decay: float = Field(0.02, ge=0)
    grad_clip: float = Field(2.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class ScheduleCfg(Strict):
    name: Literal["onecycle"] = "onecycle"
    epochs: int = Field(6, ge=1)
    warmup: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up")
    early_stop_patience: int | None = Field(3, ge=1, description="stop after this many epochs without a better calib LogLoss")


class ThresholdCfg(Strict):
    fpr: float = Field(0.05, gt=0, lt=1, description="'manipulated' verdicts on real media allowed at this rate (on calib)")
    fnr: float = Field(0.05, gt=0, lt=1, description="'authentic' verdicts on fakes allowed at this rate (on calib)")


class QatCfg(Strict):
    """Quantization-aware fine-tuning for the int8-static ONNX export (train.qat)."""

    enabled: bool = Field(False, description="simulate int8-static rounding (folded per-channel int8 weights, uint8 conv inputs)")
    observer_momentum: float = Field(0.1, gt=0, le=1, description="weight of each batch in the running min/max of activations")
    export: bool = Field(True, description="after training, export fp32 + int8-static ONNX (scored on val) into run_dir/onnx")
    calib_crops: int = Field(300, ge=1, description="calib-split crops that set the exported model's activation ranges")


class DistillCfg(Strict):
    """Knowledge distillation: loss = (1 - alpha) BCE(labels) + alpha T^2 KL(teacher || student) at temperature T."""

    teacher: str = Field(description="registered model with weights, e.g. stack-faceswap.dfdc")
    teacher_weights: Path | None = Field(None, description="checkpoint to load into `teacher` instead of its shipped weights")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the soft-target term (0 = plain BCE, 1 = teacher only)")
    temperature: float = Field(2.0, gt=0, description="softens both models' logits before they are compared")


class ProbeCfg(Strict):
    """A head fitted on cached frozen-backbone features (CLIP tokens, Whisper statistics): seconds on a CPU. With
    `tune_blocks` the backbone's last blocks train too (light tuning), from cached inputs to them."""

    views: list[str] = Field(["clean"], description="how train pictures are read: clean and/or perturbations (jpeg70, resize0.5)")
    c_grid: list[float] = Field([0.003, 0.01, 0.03, 0.1, 0.3], description="inverse L2 strengths tried; calib LogLoss picks one")
    balance: bool = Field(True, description="weight every (dataset, class) cell of train equally")
    robustness: list[str] = Field([], description="perturbations the val split is also scored under (card metrics)")
    tune_blocks: int = Field(
        0,
        ge=0,
        le=MAX_TUNED_BLOCKS,
        description="also train the tower's last N blocks, from cached inputs to them (the model must tune as many)",
    )
    tune_lr: float | None = Field(
        None, gt=0, description=f"learning rate of the tuned blocks (default {DEFAULT_TUNE_LR}); the head keeps optim.lr"
    )

    @model_validator(mode="after")
    def _check_tuning(self) -> ProbeCfg:
        if self.tune_lr is not None and self.tune_blocks == 0:
            raise ValueError("tune_lr is set but tune_blocks is 0: nothing is tuned (set tune_blocks: 1 or 2, or drop tune_lr)")
        return self


class SequenceCfg(Strict):
    """Temporal face models (models.temporal): sequences of one track's crops, fitted on cached frame features."""

    length: int = Field(SEQUENCE_LENGTH, ge=2, description="crops per sequence (one face track's, in time order)")
    stride: int = Field(SEQUENCE_STRIDE, ge=1, description="crops between the starts of a track's sequences")
    sbi_copies: int = Field(1, ge=0, description="self-blended pseudo-fake copies of each real train and calib sequence")
    leave_one_group_out: bool = Field(
        True, description="also fit once per source-video group without it and score it (video level, vs the frame model)"
    )


class TrainConfig(Strict):
    """Everything a run depends on; saved into the run directory, the tracker and the model card."""

    name: str = Field(description="run name (experiment tracking, run folder)")
    model: str = Field(description="registered model to train, e.g. faceswap-effnet-lite0.dfdc")
    model_args: dict[str, Any] = Field({}, description="keyword arguments of the model factory, e.g. {features: logmel}")
    init: Literal["auto", "imagenet", "none", "pretrained"] = Field(
        "auto",
        description="auto = ImageNet start for face/image backbones, random for audio models; "
        "pretrained = the model's shipped weights (fine-tuning: QAT, distillation)",
    )
    init_from: str | None = Field(
        None, description="start from another registered model's shipped weights (same network): the student a teacher refines"
    )
    freeze_backbone: bool = Field(False, description="train only the head on frozen features (linear probe)")
    data: DataCfg
    augment: AugmentCfg = AugmentCfg()
    optim: OptimCfg = OptimCfg()
    schedule: ScheduleCfg = ScheduleCfg()
    thresholds: ThresholdCfg = ThresholdCfg()
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    amp: bool = Field(
        True,
        description="fp16 autocast on CUDA, bf16 on a CPU with native bf16 (AVX512-BF16, AMX), "
        "fp32 on other CPUs (emulated bf16 is far slower)",
    )
    seed: int = DEFAULT_SEED
    threads: int = Field(2, ge=1)
    workers: int = Field(0, ge=0, description="DataLoader worker processes")
    device: str = "auto"
    tracker: Literal["mlflow", "clearml", "none"] = "mlflow"
    run_dir: Path | None = Field(None, description="checkpoints, history, plots (default runs/<name>)")
    out: Path | None = Field(None, description="folder to write the shipped fp16 weights + JSON card into")
    qat: QatCfg = QatCfg()
    distill: DistillCfg | None = Field(None, description="train against a teacher's soft targets as well as the labels")
    probe: ProbeCfg | None = Field(None, description="fit the model's head on cached tokens of its frozen backbone (CLIP models)")
    sequence: SequenceCfg | None = Field(None, description="train a temporal face model on face sequences (models.temporal)")

    @property
    def run_path(self) -> Path:
        return self.run_dir or Path("runs") / self.name

    @model_validator(mode="after")
    def _check_fine_tuning(self) -> TrainConfig:
        if self.qat.enabled and self.amp:
            raise ValueError("qat needs amp: false (fake quantization simulates int8 rounding on fp32; bf16 would add its own)")
        if self.init_from is not None and self.init not in ("auto", "none"):
            raise ValueError(f"init_from {self.init_from} replaces init: {self.init}; leave init out")
        if self.distill is not None and self.distill.teacher == self.model and self.distill.teacher_weights is None:
            raise ValueError(f"distill.teacher is the student itself ({self.model}); name a larger model or pass teacher_weights")
        return self


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise FakescopeError(f"override {text!r}: expected key=value, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise FakescopeError(f"override {text!r}: empty key")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `a.b.c=value` paths in a nested dict (creating levels as needed)."""
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise FakescopeError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def read_yaml_mapping(path: Path, what: str = "config") -> dict[str, Any]:
    """A YAML file's top-level mapping; a missing file, bad YAML or another top level is one clear line."""
    if not path.is_file():
        raise FakescopeError(f"{path}: {what} file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise FakescopeError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise FakescopeError(f"{path}: top level must be a mapping of keys")
    return raw


def validated(model: type[M], raw: dict[str, Any], source: Path | str) -> M:
    """`model` validated from `raw`; the first error as one line naming `source` and the key."""
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
        message = first["msg"].removeprefix("Value error, ")
        raise FakescopeError(f"{source}: {where}: {message}{more}") from None


def load_config(path: Path | None, overrides: list[str] = ()) -> TrainConfig:
    """YAML file + dotted overrides → validated config; errors name the file and the key."""
    raw: dict[str, Any] = {} if path is None else read_yaml_mapping(path)
    return validated(TrainConfig, apply_overrides(raw, list(overrides)), path or "config")


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
