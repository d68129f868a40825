"""tl.stats: the bootstrap against closed forms and sklearn, alignment, and the matches rule."""

import math
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from tl import stats


def test_percentile_interval_of_accuracy_matches_the_binomial_standard_error():
    # accuracy is the mean of per-object 0/1 scores: its bootstrap s.e. is sqrt(p (1 - p) / n)
    n, p = 1000, 0.7
    y_true = np.zeros(n, dtype=int)
    y_pred = np.where(np.arange(n) < p * n, 0, 1)  # exactly 700 right
    points, _ = stats.paired_bootstrap(y_true, {"a": y_pred[None]}, 2, metric="accuracy", n_boot=4000)
    interval = points["a"]
    half_width = 1.96 * math.sqrt(p * (1 - p) / n)
    assert interval.estimate == pytest.approx(p)
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.1)
    assert interval.low < p < interval.high


def test_paired_difference_interval_matches_the_standard_error_of_per_object_differences():
    # both right on 400 objects, a alone on 150, b alone on 50, neither on 400: d_i in {-1, 0, 1}
    n = 1000
    y_true = np.zeros(n, dtype=int)
    a, b = np.ones(n, dtype=int), np.ones(n, dtype=int)
    a[:550], b[:400], b[550:600] = 0, 0, 0
    d = (a == 0).astype(float) - (b == 0).astype(float)  # mean 0.1
    _, differences = stats.paired_bootstrap(y_true, {"a": a[None], "b": b[None]}, 2, baseline="b",
                                            metric="accuracy", n_boot=4000, seed=1)
    interval = differences["a"]
    half_width = (interval.high - interval.low) / 2
    assert interval.estimate == pytest.approx(0.1)
    assert half_width == pytest.approx(1.96 * d.std() / math.sqrt(n), rel=0.1)
    unpaired = 1.96 * math.sqrt(2 * 0.55 * 0.45 / n)  # independent samples: about 1.6 times wider
    assert half_width < 0.75 * unpaired


def test_identical_predictions_differ_by_exactly_zero():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = rng.integers(0, 4, (2, 300))
    _, differences = stats.paired_bootstrap(y_true, {"base": y_pred, "same": y_pred.copy()}, 4,
                                            baseline="base", n_boot=200)
    assert differences["same"] == stats.Interval(0.0, 0.0, 0.0)


def test_vectorised_confusion_metrics_equal_sklearn_on_resamples():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    y_pred[y_pred == 4] = 3  # class 4 never predicted; some resamples lack true classes too
    draws = rng.integers(0, 200, size=(30, 200))
    draws[0] = draws[0] % 20  # a small resample: few classes present
    confusions = stats.resampled_confusions(y_true, y_pred, draws, 5)
    f1 = stats.confusion_metric(confusions, "macro_f1")
    balanced = stats.confusion_metric(confusions, "balanced_accuracy")
    for b, drawn in enumerate(draws):
        assert f1[b] == pytest.approx(f1_score(y_true[drawn], y_pred[drawn], average="macro", zero_division=0))
        with warnings.catch_warnings():  # "y_pred contains classes not in y_true"
            warnings.simplefilter("ignore", UserWarning)
            expected = balanced_accuracy_score(y_true[drawn], y_pred[drawn])
        assert balanced[b] == pytest.approx(expected)


def test_seeds_are_averaged_on_the_same_resample():
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 3, 100)
    seeds = rng.integers(0, 3, (3, 100))
    points, _ = stats.paired_bootstrap(y_true, {"p": seeds}, 3, n_boot=50, seed=7)
    draws = np.random.default_rng(7).integers(0, 100, size=(50, 100))
    values = np.mean([stats.confusion_metric(stats.resampled_confusions(y_true, s, draws, 3)) for s in seeds], axis=0)
    assert points["p"].low == pytest.approx(np.quantile(values, 0.025))
    assert points["p"].estimate == pytest.approx(np.mean([f1_score(y_true, s, average="macro") for s in seeds]))


def test_bootstrap_is_fast_enough_for_a_sweep():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 8, 2000)
    y_pred = {k: rng.integers(0, 8, (1, 2000)) for k in range(15)}
    start = time.perf_counter()
    stats.paired_bootstrap(y_true, y_pred, 8, baseline=0, n_boot=2000)
    assert time.perf_counter() - start < 30  # about 0.5 s on 2 shared cores


def _table(ids, labels, classes, predicted, split="test"):
    proba = np.full((len(ids), len(classes)), 0.1)
    proba[np.arange(len(ids)), [classes.index(c) for c in predicted]] = 0.8
    frame = pd.DataFrame({"split": split, "object_id": ids, "label": labels})
    for i, name in enumerate(classes):
        frame[f"p_{name}"] = proba[:, i]
    return stats.PredictionTable.from_frame(frame)


def test_align_pools_folds_and_keeps_truth_where_a_model_lacks_the_class():
    # scratch lacks class "c": its file has no label there, which counts as a miss
    full = _table(["1", "2", "3", "4"], ["a", "b", "c", "a"], ["a", "b", "c"], ["a", "b", "c", "b"])
    fold0 = _table(["1", "2"], ["a", "b"], ["a", "b"], ["a", "a"])
    fold1 = _table(["3", "4"], [None, "a"], ["a", "b"], ["b", "a"])
    extra = _table(["1", "2", "3"], ["a", "b", "c"], ["a", "b", "c"], ["a", "b", "c"])  # lacks "4"
    aligned = stats.align({"t": [[full]], "s": [[fold0, fold1]], "z": [[extra]]}, optional=("z",))
    assert aligned.classes == ["a", "b", "c"] and list(aligned.object_ids) == ["1", "2", "3", "4"]
    assert list(aligned.y_true) == [0, 1, 2, 0]
    assert aligned.y_pred["s"].tolist() == [[0, 0, 1, 0]] and aligned.incomplete == ("z",)
    summary = stats.seed_mean_metrics(aligned, "s", min_support=2)
    assert summary["macro_f1"] == pytest.approx(f1_score([0, 1, 2, 0], [0, 0, 1, 0], average="macro"))
    assert summary["per_class"]["a"] == {"f1": pytest.approx(0.8), "support": 2}
    assert summary["macro_f1_supported"] == pytest.approx(0.8)  # only "a" has 2 objects


def test_align_rejects_overlapping_folds():
    fold = _table(["1", "2"], ["a", "b"], ["a", "b"], ["a", "b"])
    with pytest.raises(ValueError, match="share test objects"):
        stats.align({"s": [[fold, fold]]})


# Hand-made summaries: lower bound of the 95% interval of transfer(f) - scratch(1.0), delta 0.02
def _matches(lows, delta=0.02):
    return stats.matches({f: stats.within_margin(low, delta) for f, low in lows.items()})


def test_matches_needs_every_larger_fraction():
    lows = {0.05: -0.01, 0.1: -0.05, 0.25: -0.015, 0.5: -0.01, 1.0: 0.0}  # 0.05 is lucky
    matched = _matches(lows)
    assert matched == {0.05: False, 0.1: False, 0.25: True, 0.5: True, 1.0: True}
    assert stats.smallest_matching_fraction(matched) == 0.25
    assert stats.reduction(matched) == pytest.approx(0.75)


def test_matches_is_strict_and_empty_when_the_largest_fraction_fails():
    matched = _matches({0.1: 0.0, 0.5: -0.02, 1.0: -0.019})  # -0.02 is not above -0.02
    assert matched == {0.1: False, 0.5: False, 1.0: True} and stats.reduction(matched) == 0.0
    matched = _matches({0.1: 0.0, 1.0: -0.03})
    assert matched == {0.1: False, 1.0: False} and stats.reduction(matched) is None
    assert stats.reduction({}) is None
