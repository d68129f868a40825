"""The training loop in plain PyTorch. Never imports Ray: a `report` callback and the
`wrap_model` / `wrap_loader` hooks let Ray Train (or a print, or MLflow) plug in.

    result = fit(prepare(config, "data/bts"), report=lambda metrics, get_state: print(metrics))
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, f1_score

from tl.encoding import collate
from tl.errors import TLError


@dataclass
class FitResult:
    model: torch.nn.Module  # the unwrapped module with the best weights restored
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch
    best_epoch: int = 0


def class_weights(counts: Sequence[int], power: float) -> torch.Tensor:
    """w_c proportional to n_c ** -power, normalised to mean 1 over the classes (float32)."""
    counts = np.asarray(counts, dtype=np.float64)
    if (counts <= 0).any():
        raise TLError(f"class weights need at least one train object per class, got counts {counts.tolist()}")
    weights = counts ** -float(power)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    """A DataLoader of padded batches (see tl.encoding.collate).

    With shuffle, the order of epoch e is fixed by (seed, e): `fit` reseeds the sampler's generator
    each epoch, so a resumed run sees the same batches as an uninterrupted one.
    """
    sampler = None
    if shuffle:
        sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy summed over the batch and divided by the batch size (not by the sum
    of weights), so DDP's mean over ranks of per-rank batch b equals one batch of size 2b."""
    return F.cross_entropy(logits, labels, weight=weights, reduction="sum") / len(labels)


def make_optimizer(module: torch.nn.Module, prepared) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; pre-trained blocks get lr * pretrained_lr_scale."""
    train, transfer = prepared.config.train, prepared.config.transfer
    pretrained, new = [], []
    for name in module.blocks:
        params = [p for p in module.block(name).parameters() if p.requires_grad]
        (pretrained if name in prepared.pretrained_blocks else new).extend(params)
    groups = [{"params": new, "lr": train.lr}]
    if pretrained:
        groups.append({"params": pretrained, "lr": train.lr * transfer.pretrained_lr_scale})
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay)


def _start_epoch(loader, seed: int, epoch: int) -> None:
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler (Ray's prepare_data_loader)
        sampler.set_epoch(epoch)
    elif isinstance(sampler, torch.utils.data.RandomSampler) and sampler.generator is not None:
        sampler.generator.manual_seed(seed * 100_003 + epoch)


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _train_epoch(model, module, loader, optimizer, weights) -> float:
    """One pass over `loader`; returns the mean loss per sample seen by this process."""
    model.train()
    device = _device_of(module)
    total, seen = 0.0, 0
    for sequences, lengths, metadata, labels in loader:
        sequences, metadata, labels = sequences.to(device), metadata.to(device), labels.to(device)
        loss = weighted_loss(model(sequences, lengths, metadata), labels, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(labels)
        seen += len(labels)
    return total / max(seen, 1)


def validate(module, dataset, weights: torch.Tensor, batch_size: int) -> dict:
    """Loss, macro-F1 and balanced accuracy of `module` on the whole of `dataset`."""
    device = _device_of(module)
    module.eval()
    total, predictions = 0.0, []
    with torch.no_grad():
        for sequences, lengths, metadata, labels in make_loader(dataset, batch_size, False, 0):
            logits = module(sequences.to(device), lengths, metadata.to(device))
            total += float(F.cross_entropy(logits, labels.to(device), weight=weights, reduction="sum"))
            predictions.append(logits.argmax(dim=1).cpu())
    y_true, y_pred = dataset.labels.numpy(), torch.cat(predictions).numpy()
    return {"val_loss": total / len(dataset),
            "val_macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "val_balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}


def _improved(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if metric == "val_macro_f1" else value < best


def fit(prepared, *, report: Callable | None = None, wrap_model: Callable | None = None,
        wrap_loader: Callable | None = None, resume_state: dict | None = None,
        progress: bool = False) -> FitResult:
    """Train prepared.model with early stopping; return it with the best weights restored.

    report(metrics, get_state) is called after every epoch in every process; get_state() returns a
    torch.save-able dict that, passed back as `resume_state`, continues training exactly there.
    """
    from tqdm.auto import tqdm

    train_config = prepared.config.train
    if len(prepared.val) == 0:
        raise TLError("the val split has no objects: early stopping needs one")
    torch.manual_seed(train_config.seed)  # dropout
    module = prepared.model
    model = wrap_model(module) if wrap_model else module
    optimizer = make_optimizer(module, prepared)
    loader = make_loader(prepared.train, train_config.batch_size, shuffle=True, seed=train_config.seed)
    loader = wrap_loader(loader) if wrap_loader else loader
    weights = prepared.class_weights.to(_device_of(module))

    state = {"epoch": 0, "best_score": None, "best_epoch": 0, "stale_epochs": 0, "history": [],
             "best_model": copy.deepcopy(module.state_dict())}
    if resume_state is not None:
        module.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        torch.set_rng_state(resume_state["torch_rng"])
        state = {k: resume_state[k] for k in state}

    def get_state() -> dict:
        return {**copy.deepcopy(state), "model": copy.deepcopy(module.state_dict()),
                "optimizer": copy.deepcopy(optimizer.state_dict()), "torch_rng": torch.get_rng_state()}

    epochs = tqdm(range(state["epoch"] + 1, train_config.epochs + 1), disable=not progress,
                  desc="epochs", initial=state["epoch"], total=train_config.epochs)
    stop_metric = train_config.early_stopping_metric
    for epoch in epochs:
        if state["stale_epochs"] >= train_config.patience:
            break
        _start_epoch(loader, train_config.seed, epoch)
        train_loss = _train_epoch(model, module, loader, optimizer, weights)
        metrics = {"epoch": float(epoch), "train_loss": train_loss,
                   **validate(module, prepared.val, weights, max(train_config.batch_size, 256)),
                   "lr": float(optimizer.param_groups[0]["lr"])}
        state["epoch"] = epoch
        state["history"].append(metrics)
        score = metrics[stop_metric]
        if math.isfinite(score) and _improved(stop_metric, score, state["best_score"]):
            state.update(best_score=score, best_epoch=epoch, stale_epochs=0,
                         best_model=copy.deepcopy(module.state_dict()))
        else:
            state["stale_epochs"] += 1
        epochs.set_postfix(loss=f"{train_loss:.3f}", val_f1=f"{metrics['val_macro_f1']:.3f}")
        if report is not None:
            report(dict(metrics), get_state)
    module.load_state_dict(state["best_model"])
    module.eval()
    return FitResult(model=module, history=list(state["history"]), best_epoch=state["best_epoch"])
