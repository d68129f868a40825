"""Statistics of test predictions: metrics of pooled predictions, a paired bootstrap over test
objects, and the "matches" rule (pure numpy and scikit-learn).

Every point (a target fraction and mode, or the zero-shot base model) is scored on the same test
objects with the same true labels (`align`). An object whose class a model lacks counts as
misclassified by that model. A point's estimate is the mean over its seeds of the metric of that
seed's predictions, pooled over folds.

The paired bootstrap draws the test objects with replacement B times; on each draw every seed of
every point is scored on the same objects and a point's value is the mean over its seeds. The
interval is the percentile interval of those B values; the difference of a point and the baseline
is taken draw by draw, so its interval keeps the pairing.

Matches: transfer at fraction f matches the baseline iff the lower bound of the interval of
(transfer(g) - baseline) is above -delta at g = f and at every larger fraction g.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Hashable, Mapping

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

from tl.evaluation import roc_auc_macro

MIN_SUPPORT = 10  # macro_f1_supported: the mean F1 over classes with at least this many test objects
RESAMPLE_CELLS = 2 ** 22  # resamples x objects drawn at once (bounds the bootstrap's memory)


@dataclass(frozen=True)
class PredictionTable:
    """One model's predictions on one split (a predictions.csv, tl.evaluation.prediction_table)."""
    object_ids: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) object: the true class, None where the model lacks it
    classes: tuple[str, ...]  # the model's classes: the columns of proba
    proba: np.ndarray  # (N, len(classes))

    @classmethod
    def from_frame(cls, frame, split: str = "test") -> "PredictionTable":
        rows = frame[frame["split"] == split]
        columns = [name for name in frame.columns if name.startswith("p_")]
        labels = [label if isinstance(label, str) and label else None for label in rows["label"]]
        return cls(np.asarray(rows["object_id"], dtype=str), np.asarray(labels, dtype=object),
                   tuple(name[2:] for name in columns), rows[columns].to_numpy(dtype=float))


@dataclass(frozen=True)
class Aligned:
    """Points scored on one object set: y_pred[key] is (seeds, N), proba[key] (seeds, N, C)."""
    classes: list[str]
    object_ids: np.ndarray  # (N,)
    y_true: np.ndarray  # (N,) index into classes
    y_pred: dict
    proba: dict
    n_dropped: int  # objects some point lacks, or whose true class no model knows
    incomplete: tuple  # optional keys left out: they lack some of the objects


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


def align(points: Mapping[Hashable, list[list[PredictionTable]]], optional: tuple = ()) -> Aligned:
    """Put every point on the objects all non-optional points have and whose true class is known.

    points[key][seed][fold] is a PredictionTable; a seed's folds are pooled. An optional point
    (the zero-shot model) that lacks some of those objects is left out and named in `incomplete`.
    Raises ValueError if an object has two different true labels or a seed's folds overlap.
    """
    tables = [table for seeds in points.values() for folds in seeds for table in folds]
    classes = _class_list(tables)
    index = {name: i for i, name in enumerate(classes)}
    truth = _true_labels(tables)
    pooled = {key: [_pool(folds, index) for folds in seeds] for key, seeds in points.items()}
    required = [ids for key, seeds in pooled.items() if key not in optional for ids, _, _ in seeds]
    common = set(truth) if required else set()
    for ids in required:
        common &= set(ids)
    object_ids = np.array(sorted(common), dtype=str)
    every = set().union(*(set(ids) for seeds in pooled.values() for ids, _, _ in seeds)) if pooled else set()
    y_pred, proba, incomplete = {}, {}, []
    for key, seeds in pooled.items():
        positions = [_positions(ids, object_ids) for ids, _, _ in seeds]
        if any(p is None for p in positions):
            incomplete.append(key)
            continue
        y_pred[key] = np.stack([pred[p] for (_, pred, _), p in zip(seeds, positions)])
        proba[key] = np.stack([prob[p] for (_, _, prob), p in zip(seeds, positions)])
    y_true = np.array([index[truth[i]] for i in object_ids], dtype=int)
    return Aligned(classes, object_ids, y_true, y_pred, proba, len(every) - len(object_ids), tuple(incomplete))


def _class_list(tables) -> list[str]:
    """Every class a model has or a label names, in the order first seen."""
    seen = {}
    for table in tables:
        seen.update(dict.fromkeys(table.classes))
    for table in tables:
        seen.update(dict.fromkeys(label for label in table.labels if label is not None))
    return list(seen)


def _true_labels(tables) -> dict[str, str]:
    truth: dict[str, str] = {}
    for table in tables:
        for object_id, label in zip(table.object_ids, table.labels):
            if label is not None and truth.setdefault(object_id, label) != label:
                raise ValueError(f"object {object_id} has two true labels: {truth[object_id]} and {label}")
    return truth


def _pool(folds: list[PredictionTable], index: dict[str, int]):
    """(object ids, predicted class indices, probabilities over all classes) of folds pooled."""
    ids, preds, probas = [], [], []
    for table in folds:
        columns = np.array([index[name] for name in table.classes], dtype=int)
        proba = np.zeros((len(table.object_ids), len(index)))
        proba[:, columns] = table.proba
        ids.append(table.object_ids)
        preds.append(columns[table.proba.argmax(axis=1)] if len(table.proba) else np.zeros(0, dtype=int))
        probas.append(proba)
    ids = np.concatenate(ids)
    if len(set(ids)) != len(ids):
        raise ValueError("the folds of one seed share test objects")
    return ids, np.concatenate(preds), np.concatenate(probas)


def _positions(ids: np.ndarray, wanted: np.ndarray):
    """Positions in `ids` of every id in `wanted`, or None if some are missing."""
    where = {object_id: i for i, object_id in enumerate(ids)}
    if any(object_id not in where for object_id in wanted):
        return None
    return np.array([where[object_id] for object_id in wanted], dtype=int)


def metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes: list[str],
            min_support: int = MIN_SUPPORT) -> dict:
    """Metrics of one prediction set (tl.evaluation's conventions), and macro_f1_supported: the
    mean F1 over classes with >= min_support objects (NaN if none has)."""
    labels = list(range(len(classes)))
    _, _, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    supported = support >= min_support
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" is expected here
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {"macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "balanced_accuracy": float(balanced), "roc_auc_macro": roc_auc_macro(y_true, proba),
            "macro_f1_supported": float(f1[supported].mean()) if supported.any() else float("nan"),
            "per_class": {c: {"f1": float(f1[i]), "support": int(support[i])} for i, c in enumerate(classes)}}


def seed_mean_metrics(aligned: Aligned, key, min_support: int = MIN_SUPPORT) -> dict:
    """`metrics` of each seed of point `key`, averaged over its seeds (supports: of the objects)."""
    runs = [metrics(aligned.y_true, pred, prob, aligned.classes, min_support)
            for pred, prob in zip(aligned.y_pred[key], aligned.proba[key])]
    mean = {name: float(np.mean([run[name] for run in runs])) for name in runs[0] if name != "per_class"}
    mean["per_class"] = {c: {"f1": float(np.mean([run["per_class"][c]["f1"] for run in runs])),
                             "support": runs[0]["per_class"][c]["support"]} for c in aligned.classes}
    return mean


def confusion_metric(confusion: np.ndarray, name: str = "macro_f1") -> np.ndarray:
    """`name` of confusion matrices (..., C, C) (rows true, columns predicted), as sklearn computes
    it: macro_f1 over classes that are true or predicted (F1 0 where nothing is right),
    balanced_accuracy over classes that are true, accuracy."""
    confusion = np.asarray(confusion, dtype=float)
    right = np.diagonal(confusion, axis1=-2, axis2=-1)  # (..., C)
    true, predicted = confusion.sum(axis=-1), confusion.sum(axis=-2)
    if name == "accuracy":
        return right.sum(axis=-1) / true.sum(axis=-1)
    if name == "balanced_accuracy":
        recall = np.divide(right, true, out=np.zeros_like(right), where=true > 0)
        return recall.sum(axis=-1) / (true > 0).sum(axis=-1)
    if name == "macro_f1":
        present = true + predicted
        f1 = np.divide(2 * right, present, out=np.zeros_like(right), where=present > 0)
        return f1.sum(axis=-1) / (present > 0).sum(axis=-1)
    raise ValueError(f"unknown metric {name!r}: accuracy, balanced_accuracy or macro_f1")


def resampled_confusions(y_true: np.ndarray, y_pred: np.ndarray, draws: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, C, C) confusion matrices of the objects drawn in each row of `draws` (B, N)."""
    codes = y_true * n_classes + y_pred  # (N,) one cell per object
    cells = n_classes * n_classes
    offsets = np.arange(len(draws))[:, None] * cells  # (B, 1): resample b owns cells [b*C*C, (b+1)*C*C)
    counts = np.bincount((codes[draws] + offsets).ravel(), minlength=len(draws) * cells)
    return counts.reshape(len(draws), n_classes, n_classes)


def paired_bootstrap(y_true: np.ndarray, y_pred: Mapping[Hashable, np.ndarray], n_classes: int,
                     baseline=None, metric: str = "macro_f1", n_boot: int = 2000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[dict, dict]:
    """Intervals of every point's `metric` and of its difference from point `baseline`.

    y_pred[key] is (seeds, N) predicted classes of the N objects of y_true. Returns
    ({key: Interval}, {key: Interval of key - baseline}); the second is empty without a baseline.
    Estimates are the metric of the objects as they are (mean over seeds), not of the resamples.
    """
    y_true = np.asarray(y_true, dtype=int)
    n = len(y_true)
    rng = np.random.default_rng(seed)
    values = {key: np.empty(n_boot) for key in y_pred}
    chunk = max(1, RESAMPLE_CELLS // max(n, 1))
    for start in range(0, n_boot, chunk):
        draws = rng.integers(0, n, size=(min(chunk, n_boot - start), n))  # (b, N): the same for all
        for key, seeds in y_pred.items():
            scores = [confusion_metric(resampled_confusions(y_true, pred, draws, n_classes), metric)
                      for pred in np.asarray(seeds, dtype=int)]
            values[key][start:start + len(draws)] = np.mean(scores, axis=0)
    whole = np.arange(n)[None, :]
    estimate = {key: float(np.mean([confusion_metric(resampled_confusions(y_true, pred, whole, n_classes),
                                                     metric)[0] for pred in np.asarray(seeds, dtype=int)]))
                for key, seeds in y_pred.items()}
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    points = {key: Interval(estimate[key], *map(float, np.quantile(values[key], tails))) for key in y_pred}
    if baseline not in y_pred:
        return points, {}
    differences = {key: Interval(estimate[key] - estimate[baseline],
                                 *map(float, np.quantile(values[key] - values[baseline], tails)))
                   for key in y_pred}
    return points, differences


def point_estimates(points: Mapping[Hashable, list[list]], baseline, optional: tuple = (),
                    n_boot: int = 2000, seed: int = 0) -> tuple[dict, dict]:
    """{key: seed_mean_metrics, macro_f1, ci95, difference {macro_f1, ci95} (None without the
    baseline)} of the points whose every table is there (points[key][seed][fold]: a
    PredictionTable or None), and facts about the bootstrap (objects, classes, points left out)."""
    complete = {key: seeds for key, seeds in points.items()
                if all(table is not None for folds in seeds for table in folds)}
    facts = {"n_resamples": n_boot, "seed": seed, "min_support": MIN_SUPPORT, "n_objects": 0}
    try:
        aligned = align(complete, optional)
    except ValueError as error:
        return {}, {**facts, "note": f"no intervals: {error}"}
    if len(aligned.object_ids) == 0:
        return {}, facts
    intervals, differences = paired_bootstrap(aligned.y_true, aligned.y_pred, len(aligned.classes),
                                              baseline=baseline, n_boot=n_boot, seed=seed)
    found = {}
    for key, interval in intervals.items():
        difference = differences.get(key)
        found[key] = {**seed_mean_metrics(aligned, key), "macro_f1": interval.estimate, "ci95": interval.as_list(),
                      "difference": None if difference is None else
                      {"macro_f1": difference.estimate, "ci95": difference.as_list()}}
    facts.update(n_objects=len(aligned.object_ids), n_objects_dropped=aligned.n_dropped, classes=aligned.classes,
                 incomplete=[str(key) for key in aligned.incomplete])
    return found, facts


def within_margin(difference_low: float, delta: float) -> bool:
    """The lower bound of the interval of (point - baseline) is above -delta."""
    return bool(difference_low > -delta)


def matches(within: Mapping[float, bool]) -> dict[float, bool]:
    """matches[f]: within[g] holds at g = f and at every larger fraction g."""
    found, holds = {}, True
    for fraction in sorted(within, reverse=True):
        holds = holds and bool(within[fraction])
        found[fraction] = holds
    return dict(sorted(found.items()))


def smallest_matching_fraction(matched: Mapping[float, bool]) -> float | None:
    fractions = [fraction for fraction, value in matched.items() if value]
    return min(fractions) if fractions else None


def reduction(matched: Mapping[float, bool]) -> float | None:
    """1 - the smallest matching fraction (None if none matches)."""
    smallest = smallest_matching_fraction(matched)
    return None if smallest is None else 1.0 - smallest
