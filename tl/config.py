"""Settings: one frozen dataclass per concern, and one flat dotted override form.

    config = Config().override({"train.lr": 3e-4, "transfer.freeze_depth": 2})

The dotted names are also the Ray Tune search keys and the MLflow params. Unknown keys raise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tl.errors import TLError


@dataclass(frozen=True)
class DataConfig:
    target_fraction: float = 1.0  # fraction of the train split used (nested, stratified subsets)
    seed: int = 0  # seed of the target-fraction subset draw
    max_length: int = 200  # observations per light curve fed to the network (see encoding)


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
    batch_size: int = 64
    class_weight_power: float = 1.0  # w_c proportional to n_c ** -power; 1 is inverse frequency
    patience: int = 15  # epochs without improvement before early stopping
    early_stopping_metric: str = "val_macro_f1"  # or "val_loss"
    seed: int = 0


@dataclass(frozen=True)
class TransferConfig:
    freeze_depth: int = 0  # the first k blocks (input to output order) are frozen
    pretrained_lr_scale: float = 1.0  # learning-rate factor for unfrozen pre-trained blocks


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    def flat(self) -> dict[str, Any]:
        """{"section.key": value} for every setting."""
        return {
            f"{section.name}.{item.name}": getattr(getattr(self, section.name), item.name)
            for section in dataclasses.fields(self)
            for item in dataclasses.fields(getattr(self, section.name))
        }

    def override(self, overrides: dict[str, Any]) -> "Config":
        """A copy with dotted overrides applied; unknown keys and uncastable values raise TLError."""
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


def _cast(key: str, value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    try:
        cast = kind(value)
    except (TypeError, ValueError):
        raise TLError(f"setting {key!r}: cannot use {value!r} as {kind.__name__}") from None
    if kind is int and isinstance(value, float) and cast != value:
        raise TLError(f"setting {key!r}: {value!r} is not an integer")
    return cast
