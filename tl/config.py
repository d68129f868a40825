"""Settings: one frozen dataclass per concern, and one flat dotted override form.

    config = Config().override({"train.lr": 3e-4, "transfer.freeze_depth": 2})

The dotted names are also the Ray Tune search keys and the MLflow params. Unknown keys, values
that cannot be cast and values out of range raise TLError (a SettingError naming the setting),
e.g. "setting 'train.lr': must be > 0, got -1.0". Every Config is checked against RULES when it
is built, so `Config().override(overrides)` is also the way to validate a dict of dotted
overrides up front (before a sweep starts, say).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from tl.errors import TLError


@dataclass(frozen=True)
class DataConfig:
    target_fraction: float = 1.0  # fraction of the train split used (nested, stratified subsets)
    seed: int = 0  # seed of the target-fraction subset draw
    max_length: int = 200  # observations per light curve fed to the network (see encoding)
    folds: int = 0  # outer cross-validation folds (tl.data.fold_split); 0: the data set's own split
    fold: int = 0  # with folds: the fold that is the test split
    # transfer: keep the base's sequence statistics, refit the metadata ones on the target train split
    # (a data setting because it changes the encoding: tl.experiment.prepare_data depends on data.* only)
    refit_metadata_normalizer: bool = False


@dataclass(frozen=True)
class ModelConfig:
    gru_hidden: int = 100
    gru_layers: int = 2
    metadata_hidden: int = 20
    dense_hidden: int = 100
    dense_second: int = 64
    dropout: float = 0.2


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 50
    max_steps: int = 0  # > 0: a step budget, epochs = ceil(max_steps / batches per epoch); 0: train.epochs
    batch_size: int = 64
    class_weight_power: float = 1.0  # w_c proportional to n_c ** -power; 1 is inverse frequency
    patience: int = 15  # epochs without improvement before early stopping
    early_stopping_metric: str = "val_macro_f1"  # or "val_loss", "val_macro_f1_common"
    seed: int = 0
    logit_adjustment: float = 0.0  # tau: decisions from logits + tau * log(train prior); 0 is off
    tune_logit_adjustment: bool = False  # choose tau on the val split after training (tl.prior.TAU_GRID)
    init_bias_to_prior: bool = False  # head bias = log(train prior) before training (both modes)


@dataclass(frozen=True)
class TransferConfig:
    strategy: str = "depth"  # which blocks train: "depth", "gru", "head_then_all" (tl.transfer)
    freeze_depth: int = 0  # strategy "depth": the first k blocks (input to output order) are frozen
    head_epochs: int = 5  # strategy "head_then_all": epochs that train the head alone
    pretrained_lr_scale: float = 1.0  # learning-rate factor for unfrozen pre-trained blocks


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    def __post_init__(self):
        for key, value in self.flat().items():
            check_setting(key, value)
        if self.data.folds == 1:
            raise SettingError("data.folds", "must be 0 (the data set's split) or >= 2, got 1")
        if self.data.folds and self.data.fold >= self.data.folds:
            raise SettingError("data.fold", f"must be < data.folds ({self.data.folds}), got {self.data.fold}")

    def flat(self) -> dict[str, Any]:
        """{"section.key": value} for every setting."""
        return {
            f"{section.name}.{item.name}": getattr(getattr(self, section.name), item.name)
            for section in dataclasses.fields(self)
            for item in dataclasses.fields(getattr(self, section.name))
        }

    def override(self, overrides: dict[str, Any]) -> "Config":
        """A copy with dotted overrides applied; an unknown key raises TLError, an uncastable or
        out-of-range value SettingError (a TLError)."""
        defaults = self.flat()
        sections = {s.name: {} for s in dataclasses.fields(self)}
        for key, value in overrides.items():
            if key not in defaults:
                raise TLError(f"unknown setting {key!r}: known settings are {', '.join(defaults)}")
            section, name = key.split(".", 1)
            sections[section][name] = _cast(key, value, type(defaults[key]))
        return dataclasses.replace(self, **{
            name: dataclasses.replace(getattr(self, name), **values)
            for name, values in sections.items() if values
        })

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> "Config":
        return cls().override(flat)


class SettingError(TLError):
    """A setting of the wrong type or out of range; `problem` is the message without the name."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"setting {key!r}: {problem}")
        self.key, self.problem = key, problem


MAX_SEED = 2**32 - 1  # numpy's legacy seed range; torch reseeds with seed * 100_003 + epoch (< 2**64)


@dataclass(frozen=True)
class Rule:
    """The values a setting allows: a range (each end closed or open) or a tuple of choices."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed, or None."""
        if self.choices:
            allowed = ", ".join(map(str, self.choices))
            return None if value in self.choices else f"must be one of {allowed}, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if not (too_low or too_high):
            return None
        if self.high is None:
            return f"must be {'>' if self.low_open else '>='} {self.low}, got {value!r}"
        return (f"must be in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
                f", got {value!r}")


_AT_LEAST_1 = Rule(low=1)
_SEED = Rule(low=0, high=MAX_SEED)
_BOOL = Rule(choices=(False, True))

RULES: dict[str, Rule] = {  # one per setting; Config.__post_init__ applies them
    "data.target_fraction": Rule(low=0, high=1, low_open=True),
    "data.seed": _SEED,
    "data.max_length": _AT_LEAST_1,
    "data.folds": Rule(low=0),  # 1 is refused in Config.__post_init__ (nothing left to train on)
    "data.fold": Rule(low=0),
    "data.refit_metadata_normalizer": _BOOL,
    "model.gru_hidden": _AT_LEAST_1,
    "model.gru_layers": _AT_LEAST_1,
    "model.metadata_hidden": _AT_LEAST_1,
    "model.dense_hidden": _AT_LEAST_1,
    "model.dense_second": _AT_LEAST_1,
    "model.dropout": Rule(low=0, high=1, high_open=True),
    "train.lr": Rule(low=0, low_open=True),
    "train.weight_decay": Rule(low=0),
    "train.epochs": _AT_LEAST_1,
    "train.max_steps": Rule(low=0),
    "train.batch_size": _AT_LEAST_1,
    "train.class_weight_power": Rule(low=0),
    "train.patience": _AT_LEAST_1,
    "train.early_stopping_metric": Rule(choices=("val_macro_f1", "val_loss", "val_macro_f1_common")),
    "train.seed": _SEED,
    "train.logit_adjustment": Rule(low=-2, high=2),
    "train.tune_logit_adjustment": _BOOL,
    "train.init_bias_to_prior": _BOOL,
    "transfer.strategy": Rule(choices=("depth", "gru", "head_then_all")),
    "transfer.freeze_depth": Rule(low=0),  # the upper bound depends on the model: tl.transfer.freeze
    "transfer.head_epochs": _AT_LEAST_1,
    "transfer.pretrained_lr_scale": Rule(low=0, low_open=True),
}


def check_setting(key: str, value: Any) -> None:
    """Raise SettingError unless RULES[key] allows `value` (a float must also be finite)."""
    problem = RULES[key].problem(value)
    if problem:
        raise SettingError(key, problem)


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _cast(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        word = str(value).strip().lower()
        if isinstance(value, (bool, int, str)) and word in _BOOL_WORDS:
            return _BOOL_WORDS[word]
        raise SettingError(key, f"cannot use {value!r} as bool (true/false, yes/no, 1/0)")
    try:
        cast = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise SettingError(key, f"cannot use {value!r} as {kind.__name__}") from None
    if kind is int and isinstance(value, float) and cast != value:
        raise SettingError(key, f"{value!r} is not an integer")
    return cast
