"""Metrics of a classifier on a data set split (scikit-learn), and per-object probabilities.

Conventions (all classes are the model's classes, in its output order):
- macro_f1: sklearn's macro F1 over the classes that occur in y_true or in the predictions (a
  class the model predicts but that is absent from the split counts as F1 0; a class neither
  present nor predicted is left out).
- balanced_accuracy: mean recall over the classes present in y_true.
- roc_auc_macro: mean one-vs-rest ROC-AUC over the classes present in y_true (a class absent
  from y_true has no positives, so no AUC); NaN when fewer than two classes are present.
- per_class: F1 and support for every model class (F1 0 for a class with no support and no
  predictions); confusion: rows are true classes, columns predicted classes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import (balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support, roc_auc_score)

from tl.encoding import make_loader
from tl.prior import PriorCorrection


def predict_logits(model, dataset, batch_size: int = 256) -> np.ndarray:
    """(N, n_classes) float64 logits of `model` (eval mode, no grad) on an EncodedDataset."""
    module = getattr(model, "module", model)
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    outputs = []
    with torch.no_grad():
        for sequences, lengths, metadata, _ in make_loader(dataset, batch_size, shuffle=False, seed=0):
            logits = module(sequences.to(device), lengths, metadata.to(device))
            outputs.append(logits.double().cpu().numpy())
    module.train(was_training)
    return np.concatenate(outputs) if outputs else np.zeros((0, module.head.out_features))


def adjusted_logits(model, dataset, batch_size: int = 256, correction: PriorCorrection | None = None) -> np.ndarray:
    """(N, n_classes) logits after the prior `correction` (tl.prior), if given: what the
    temperature (tl.calibration) divides."""
    logits = predict_logits(model, dataset, batch_size)
    return correction.apply(logits) if correction is not None else logits


def predict_proba(model, dataset, batch_size: int = 256, correction: PriorCorrection | None = None,
                  temperature: float = 1.0) -> np.ndarray:
    """(N, n_classes) softmax probabilities of `model` on an EncodedDataset; with a `correction`
    (the loaded model's prior_correction) the softmax of the adjusted logits (tl.prior), divided by
    `temperature` (the loaded model's, tl.calibration; it never changes the predicted class)."""
    logits = adjusted_logits(model, dataset, batch_size, correction)
    return torch.softmax(torch.from_numpy(logits / temperature), dim=1).numpy()


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    """Metrics of predictions `proba` (N, C) against class indices `y_true` (N,); see module doc."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    y_pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    labels = list(range(len(classes)))
    if len(y_true) == 0:
        nan = float("nan")
        return {"macro_f1": nan, "balanced_accuracy": nan, "roc_auc_macro": nan, "n_objects": 0,
                "per_class": {c: {"f1": 0.0, "support": 0} for c in classes},
                "confusion": [[0] * len(classes) for _ in classes], "classes": list(classes)}
    _, _, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "balanced_accuracy": float(_balanced_accuracy(y_true, y_pred)),
        "roc_auc_macro": roc_auc_macro(y_true, proba),
        "n_objects": int(len(y_true)),
        "per_class": {c: {"f1": float(f1[i]), "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
    }


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import warnings

    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" is expected here
        warnings.simplefilter("ignore", UserWarning)
        return balanced_accuracy_score(y_true, y_pred)


def roc_auc_macro(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean one-vs-rest ROC-AUC over classes present in y_true; NaN if fewer than two are."""
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    scores = [roc_auc_score(y_true == c, proba[:, c]) for c in present]
    return float(np.mean(scores))


def evaluate(model, dataset, classes: list[str], batch_size: int = 256,
             correction: PriorCorrection | None = None) -> dict:
    """compute_metrics on an EncodedDataset (decisions adjusted by `correction`, if given); objects
    whose class the model lacks (label -1) are left out and counted in "n_unknown_class"."""
    proba = predict_proba(model, dataset, batch_size, correction)
    labels = dataset.labels.numpy()
    known = labels >= 0
    metrics = compute_metrics(labels[known], proba[known], classes)
    metrics["n_unknown_class"] = int((~known).sum())
    return metrics


def json_safe(value):
    """`value` with NaN/inf floats replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_summary(metrics: dict) -> str:
    """A readable multi-line summary of `metrics`."""
    lines = [f"objects: {metrics['n_objects']}",
             f"macro F1: {metrics['macro_f1']:.4f}   balanced accuracy: {metrics['balanced_accuracy']:.4f}   "
             f"ROC-AUC (macro OvR): {metrics['roc_auc_macro']:.4f}",
             f"{'class':<10} {'F1':>6} {'support':>8}"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<10} {row['f1']:>6.3f} {row['support']:>8d}")
    width = max(len(c) for c in metrics["classes"]) if metrics["classes"] else 5
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * (width + 1) + " ".join(f"{c[:7]:>7}" for c in metrics["classes"]))
    for name, row in zip(metrics["classes"], metrics["confusion"]):
        lines.append(f"{name:<{width}} " + " ".join(f"{v:>7d}" for v in row))
    return "\n".join(lines)


def prediction_table(model, splits: dict, classes: list[str], correction: PriorCorrection | None = None):
    """Per-object probabilities of `model` (adjusted by `correction`, if given) on each
    EncodedDataset in `splits` ({"val": ..., "test": ...}): a DataFrame with split, object_id, label
    (the true class, None if the model lacks it), one `p_<class>` column per class. What paired
    bootstraps over objects are computed from."""
    import pandas as pd

    frames = []
    for split, dataset in splits.items():
        proba = predict_proba(model, dataset, correction=correction)
        labels = dataset.labels.numpy()
        frame = pd.DataFrame({"split": split, "object_id": dataset.object_ids,
                              "label": [classes[i] if i >= 0 else None for i in labels]})
        for index, name in enumerate(classes):
            frame[f"p_{name}"] = proba[:, index] if len(proba) else []
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def model_dir_table(model_dir: str, dataset, split: str = "test", days: float | None = None):
    """A tl.stats.PredictionTable of a MODEL_DIR on `split` of `dataset` as its run split it (its
    data.folds / data.fold), with its prior correction; light curves cut to `days` if given."""
    from tl.data import splits_for
    from tl.encoding import encode, truncate_days
    from tl.modeldir import load_model_dir
    from tl.stats import PredictionTable

    loaded = load_model_dir(model_dir)
    part = splits_for(dataset, loaded.config.data.folds, loaded.config.data.fold).split(split)
    if days is not None:
        part = truncate_days(part, days)
    encoded = encode(part, loaded.classes, loaded.normalizer, loaded.config.data.max_length)
    frame = prediction_table(loaded.model, {split: encoded}, loaded.classes, loaded.prior_correction)
    return PredictionTable.from_frame(frame.fillna(""), split)
