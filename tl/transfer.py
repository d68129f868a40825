"""Transfer from a base MODEL_DIR: explicit weight surgery, head mapping by class name, freezing.

Fine-tuning is training from pre-trained weights (tl.training.fit), optionally with a smaller
learning rate for the pre-trained blocks (`transfer.pretrained_lr_scale`). Which blocks train is
`transfer.strategy`:

    depth          the first `transfer.freeze_depth` blocks are frozen, the rest train
    gru            the GRU blocks and the head train; metadata, dense_1 and dense_2 are frozen
                   (the light curves' domain shift is in the sequence input)
    head_then_all  the head alone for `transfer.head_epochs` epochs, then every block

The target model keeps the base's architecture (model.* shape settings); only model.dropout may
differ. `zero_shot_model` is the base model mapped onto the target classes with no training.

Normalisation: the target reuses the base model's statistics. The pre-trained GRU learned its
weights on inputs at the base's scale, and with few target labels (5-10% of a small data set)
recomputed statistics would be noisy; because flux is scaled per object and wavelength has a
fixed physical scale, the base sequence statistics fit other surveys' inputs reasonably. The
metadata statistics may not (on PLAsTiCC the base's put log peak flux at -5.7 sigma):
`data.refit_metadata_normalizer` refits those on the target's train split (tl.experiment).
"""

from __future__ import annotations

import dataclasses

import torch

from tl.config import Config, TransferConfig
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
    return freeze_blocks(model, names[:depth])


def freeze_blocks(model: TransientClassifier, names) -> list[str]:
    """Freeze the blocks `names` (requires_grad False); return the frozen parameter names."""
    frozen = []
    for name in names:
        for parameter_name, parameter in model.block(name).named_parameters():
            parameter.requires_grad_(False)
            frozen.append(f"{name}.{parameter_name}")
    return frozen


def apply_strategy(model: TransientClassifier, transfer: TransferConfig) -> list[str]:
    """Freeze what `transfer.strategy` keeps fixed for the whole run; return the frozen parameter
    names (head_then_all freezes nothing: its first phase is `trained_blocks`')."""
    if transfer.strategy != "depth" and transfer.freeze_depth != 0:
        raise TLError(f"transfer.freeze_depth applies to transfer.strategy=depth only, "
                      f"got freeze_depth {transfer.freeze_depth} with strategy {transfer.strategy}")
    if transfer.strategy == "depth":
        return freeze(model, transfer.freeze_depth)
    if transfer.strategy == "gru":
        return freeze_blocks(model, ("metadata", "dense_1", "dense_2"))
    return []


def trained_blocks(blocks: tuple[str, ...], transfer: TransferConfig, epoch: int) -> tuple[str, ...]:
    """The blocks the optimiser holds at `epoch` (1-based) of a transfer run: the head alone in
    head_then_all's first transfer.head_epochs epochs, else all (frozen ones have no gradient).

    In the first phase the other blocks keep requires_grad: a DDP wrapper, built once before
    training, then all-reduces every parameter in the second phase too."""
    if transfer.strategy == "head_then_all" and epoch <= transfer.head_epochs:
        return ("head",)
    return blocks


def zero_shot_model(base, target_classes: list[str]) -> TransientClassifier:
    """The base model (a LoadedModel) with its head mapped onto `target_classes` by name, untrained.

    Classes the base lacks can never be predicted: their head rows are weight 0 and bias -inf
    (probability 0). Base-only classes are dropped, so their probability goes to shared classes.
    """
    model = TransientClassifier(len(target_classes), base.config.model)
    shared = load_pretrained(model, base.model.state_dict(), base.classes, target_classes,
                             where=f"{base.path}/weights.pt")
    with torch.no_grad():
        for row, name in enumerate(target_classes):
            if name not in shared:
                model.head.weight[row] = 0.0
                model.head.bias[row] = float("-inf")
    return model.eval()
