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

from tl.encoding import make_loader
from tl.errors import TLError
from tl.evaluation import predict_logits
from tl.prior import PriorCorrection, choose_tau

MAX_EPOCHS = 1000  # the most epochs a train.max_steps budget may ask for
COMMON_CLASS_MIN_OBJECTS = 10  # val_macro_f1_common: classes with at least this many val objects


@dataclass
class FitResult:
    model: torch.nn.Module  # the unwrapped module with the best weights restored
    history: list[dict] = field(default_factory=list)  # one metrics dict per epoch
    best_epoch: int = 0
    epoch_budget: int = 0  # the most epochs this run could train (train.epochs or from train.max_steps)
    stopped_early: bool = False  # ended by train.patience before the budget
    steps_per_epoch: int = 0  # optimiser steps per epoch (batches of this worker's loader)
    prior_correction: PriorCorrection | None = None  # how the model decides (tl.prior); pass to evaluate

    @property
    def converged(self) -> bool:
        """False when the best epoch is the last of the budget: more epochs might have helped."""
        return self.best_epoch < self.epoch_budget

    @property
    def best_step(self) -> int:
        """Optimiser steps to the best epoch: the convergence speed, comparable across fractions."""
        return self.best_epoch * self.steps_per_epoch

    def summary(self) -> dict:
        """The run's budget and stopping, for metrics.json."""
        return {"best_epoch": self.best_epoch, "best_step": self.best_step, "epochs_run": len(self.history), "epoch_budget": self.epoch_budget,
                "stopped_early": self.stopped_early, "converged": self.converged,
                "logit_adjustment": self.prior_correction.tau if self.prior_correction else 0.0}


def class_weights(counts: Sequence[int], power: float) -> torch.Tensor:
    """w_c proportional to n_c ** -power, normalised to mean 1 over the classes (float32)."""
    counts = np.asarray(counts, dtype=np.float64)
    if (counts <= 0).any():
        raise TLError(f"class weights need at least one train object per class, got counts {counts.tolist()}")
    weights = counts ** -float(power)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted cross-entropy summed over the batch and divided by the batch size (not by the sum
    of weights), so DDP's mean over ranks of per-rank batch b equals one batch of size 2b."""
    return F.cross_entropy(logits, labels, weight=weights, reduction="sum") / len(labels)


def epoch_budget(train_config, batches_per_epoch: int) -> int:
    """train.epochs, or with train.max_steps > 0 enough epochs for that many optimiser steps
    (ceil(max_steps / batches_per_epoch), at most MAX_EPOCHS)."""
    if train_config.max_steps == 0:
        return train_config.epochs
    return min(math.ceil(train_config.max_steps / max(batches_per_epoch, 1)), MAX_EPOCHS)


def make_optimizer(module: torch.nn.Module, prepared, blocks: Sequence[str] | None = None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of `blocks` (default: all); pre-trained blocks get
    lr * pretrained_lr_scale."""
    train, transfer = prepared.config.train, prepared.config.transfer
    pretrained, new = [], []
    for name in (module.blocks if blocks is None else blocks):
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
        module.zero_grad(set_to_none=True)  # also parameters outside the optimiser (head_then_all)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(labels)
        seen += len(labels)
    return total / max(seen, 1)


def validate(module, dataset, weights: torch.Tensor, batch_size: int,
             correction: PriorCorrection | None = None) -> dict:
    """Loss, macro-F1 (over all classes, and over those with at least COMMON_CLASS_MIN_OBJECTS
    objects) and balanced accuracy of `module` on the whole of `dataset`; the decisions (not the
    loss) are adjusted by `correction`."""
    device = _device_of(module)
    module.eval()
    total, predictions = 0.0, []
    with torch.no_grad():
        for sequences, lengths, metadata, labels in make_loader(dataset, batch_size, False, 0):
            logits = module(sequences.to(device), lengths, metadata.to(device))
            total += float(F.cross_entropy(logits, labels.to(device), weight=weights, reduction="sum"))
            decisions = correction.apply(logits) if correction is not None else logits
            predictions.append(decisions.argmax(dim=1).cpu())
    y_true, y_pred = dataset.labels.numpy(), torch.cat(predictions).numpy()
    present, counts = np.unique(y_true, return_counts=True)
    common = present[counts >= COMMON_CLASS_MIN_OBJECTS]
    return {"val_loss": total / len(dataset),
            "val_macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "val_balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "val_macro_f1_common": float(f1_score(y_true, y_pred, labels=common if len(common) else present,
                                                  average="macro", zero_division=0))}


def _improved(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if metric == "val_loss" else value > best


def fit(prepared, *, report: Callable | None = None, wrap_model: Callable | None = None,
        wrap_loader: Callable | None = None, resume_state: dict | None = None,
        progress: bool = False) -> FitResult:
    """Train prepared.model with early stopping; return it with the best weights restored and the
    prior correction it decides with (train.logit_adjustment, or tau chosen on the val split).

    report(metrics, get_state) is called after every epoch in every process; get_state() returns a
    torch.save-able dict that, passed back as `resume_state`, continues training exactly there.
    The optimiser trains prepared.trained_blocks(epoch); when that set changes (transfer strategy
    head_then_all) a fresh optimiser takes over, so the blocks follow from the epoch alone.
    """
    from tqdm.auto import tqdm

    train_config = prepared.config.train
    if len(prepared.val) == 0:
        raise TLError("the val split has no objects: early stopping needs one")
    torch.manual_seed(train_config.seed)  # dropout
    module = prepared.model
    model = wrap_model(module) if wrap_model else module
    loader = make_loader(prepared.train, train_config.batch_size, shuffle=True, seed=train_config.seed)
    loader = wrap_loader(loader) if wrap_loader else loader
    weights = prepared.class_weights.to(_device_of(module))
    budget = epoch_budget(train_config, len(loader))
    correction = PriorCorrection(prepared.log_prior, train_config.logit_adjustment)

    state = {"epoch": 0, "best_score": None, "best_epoch": 0, "stale_epochs": 0, "history": [],
             "best_model": copy.deepcopy(module.state_dict())}
    blocks = prepared.trained_blocks(max(resume_state["epoch"] if resume_state else 0, 1))
    optimizer = make_optimizer(module, prepared, blocks)  # the one the saved state belongs to
    if resume_state is not None:
        module.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        torch.set_rng_state(resume_state["torch_rng"])
        state = {k: resume_state[k] for k in state}

    def get_state() -> dict:
        return {**copy.deepcopy(state), "model": copy.deepcopy(module.state_dict()),
                "optimizer": copy.deepcopy(optimizer.state_dict()), "torch_rng": torch.get_rng_state()}

    epochs = tqdm(range(state["epoch"] + 1, budget + 1), disable=not progress,
                  desc="epochs", initial=state["epoch"], total=budget)
    stop_metric = train_config.early_stopping_metric
    for epoch in epochs:
        if state["stale_epochs"] >= train_config.patience:
            break
        if prepared.trained_blocks(epoch) != blocks:
            blocks = prepared.trained_blocks(epoch)
            optimizer = make_optimizer(module, prepared, blocks)
        _start_epoch(loader, train_config.seed, epoch)
        train_loss = _train_epoch(model, module, loader, optimizer, weights)
        metrics = {"epoch": float(epoch), "train_loss": train_loss,
                   **validate(module, prepared.val, weights, max(train_config.batch_size, 256), correction),
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
    if train_config.tune_logit_adjustment:  # on the val split, with the best weights; never on test
        correction = choose_tau(predict_logits(module, prepared.val), prepared.val.labels.numpy(),
                                prepared.log_prior)
    return FitResult(model=module, history=list(state["history"]), best_epoch=state["best_epoch"],
                     epoch_budget=budget, stopped_early=state["epoch"] < budget, steps_per_epoch=len(loader),
                     prior_correction=correction)
