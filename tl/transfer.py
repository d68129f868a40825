"""Transfer from a base MODEL_DIR: explicit weight surgery, head mapping by class name, freezing.

Fine-tuning is training from pre-trained weights (tl.training.fit), with the first
`transfer.freeze_depth` blocks frozen and optionally a smaller learning rate for the other
pre-trained blocks. The target model keeps the base's architecture (model.* shape settings);
only model.dropout may differ.

Normalisation: the target reuses the base model's statistics. The pre-trained GRU learned its
weights on inputs at the base's scale, and with few target labels (5-10% of a small data set)
recomputed statistics would be noisy; because flux is scaled per object and wavelength has a
fixed physical scale, the base statistics already fit other surveys' inputs reasonably.
"""

from __future__ import annotations

import dataclasses

import torch

from tl.config import Config
from tl.errors import TLError
from tl.modeldir import check_state_dict
from tl.model import TransientClassifier, block_names, max_freeze_depth

HEAD = "head."
_SHAPE_SETTINGS = ("gru_hidden", "gru_layers", "metadata_hidden", "dense_hidden", "dense_second")


def transfer_config(config: Config, base_config: Config) -> Config:
    """`config` with the base model's architecture (every model.* setting but dropout)."""
    shape = {name: getattr(base_config.model, name) for name in _SHAPE_SETTINGS}
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **shape))


def map_head(base_weight: torch.Tensor, base_bias: torch.Tensor, base_classes: list[str],
             head: torch.nn.Linear, target_classes: list[str]) -> list[str]:
    """Copy into `head` (target classes) the base head rows of the classes both share, by name.

    Rows of new classes keep `head`'s fresh initialisation; base-only classes are dropped.
    Returns the shared classes; raises TLError when there are none.
    """
    shared = [name for name in target_classes if name in base_classes]
    if not shared:
        raise TLError(f"the target classes ({', '.join(target_classes)}) share no class with the base "
                      f"model's ({', '.join(base_classes)})")
    if tuple(base_weight.shape[1:]) != tuple(head.weight.shape[1:]):
        raise TLError(f"base head has input width {base_weight.shape[1]}, target head {head.weight.shape[1]}")
    with torch.no_grad():
        for name in shared:
            row, base_row = target_classes.index(name), base_classes.index(name)
            head.weight[row] = base_weight[base_row]
            head.bias[row] = base_bias[base_row]
    return shared


def load_pretrained(model: TransientClassifier, base_state: dict, base_classes: list[str],
                    target_classes: list[str], where: str = "base model") -> list[str]:
    """Load every base block into `model` (same names, same shapes, checked), and map the head by
    class name. Returns the shared classes."""
    check_state_dict(model.state_dict(), base_state, where, skip=(HEAD,))
    body = {k: v for k, v in base_state.items() if not k.startswith(HEAD)}
    fresh_head = {HEAD + k: v for k, v in model.head.state_dict().items()}
    model.load_state_dict({**body, **fresh_head})  # strict: every key checked above
    return map_head(base_state[HEAD + "weight"], base_state[HEAD + "bias"], base_classes,
                    model.head, target_classes)


def freeze(model: TransientClassifier, depth: int) -> list[str]:
    """Freeze the first `depth` blocks (requires_grad False); return the frozen parameter names."""
    names = block_names(model.config)
    if not 0 <= depth <= max_freeze_depth(model.config):
        raise TLError(f"freeze depth must be between 0 and {max_freeze_depth(model.config)} "
                      f"(blocks: {', '.join(names)}), got {depth}")
    frozen = []
    for name in names[:depth]:
        for parameter_name, parameter in model.block(name).named_parameters():
            parameter.requires_grad_(False)
            frozen.append(f"{name}.{parameter_name}")
    return frozen
