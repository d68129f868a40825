"""Metrics against values computed by hand from a small confusion matrix."""

import math

import numpy as np
import pytest
import torch

from tl.evaluation import compute_metrics, json_safe, predict_proba, roc_auc_macro

CLASSES = ["SN Ia", "SN II", "SLSN"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _proba(predicted, n_classes=3):
    proba = np.full((len(predicted), n_classes), 0.1)
    proba[np.arange(len(predicted)), predicted] = 0.8
    return proba


def test_metrics_match_hand_computation():
    # confusion (rows true, cols predicted): [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 0, 1, 1, 2])
    metrics = compute_metrics(y_true, _proba(y_pred), CLASSES)
    assert metrics["confusion"] == [[3, 1, 0], [1, 1, 0], [0, 1, 1]]
    # precision/recall: Ia 3/4, 3/4; II 1/3, 1/2; SLSN 1/1, 1/2
    f1 = [0.75, 2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), 2 * 1 * 0.5 / 1.5]
    for name, value in zip(CLASSES, f1):
        assert metrics["per_class"][name]["f1"] == pytest.approx(value)
    assert [metrics["per_class"][c]["support"] for c in CLASSES] == [4, 2, 2]
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 1 / 2) / 3)
    assert metrics["n_objects"] == 8 and metrics["classes"] == CLASSES


def test_roc_auc_by_pair_counting():
    y_true = np.array([0, 0, 1, 1, 2])
    proba = np.array([[0.6, 0.3, 0.1], [0.3, 0.4, 0.3], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])

    def pair_auc(c):  # P(score of a positive > score of a negative), ties count half
        pos, neg = proba[y_true == c, c], proba[y_true != c, c]
        return np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg])

    assert roc_auc_macro(y_true, proba) == pytest.approx(np.mean([pair_auc(c) for c in range(3)]))


def test_absent_classes_never_crash():
    y_true = np.array([0, 0, 1, 1])  # SLSN absent from y_true but predicted once
    y_pred = np.array([0, 2, 1, 1])
    metrics = compute_metrics(y_true, _proba(y_pred), CLASSES)
    assert metrics["per_class"]["SLSN"] == {"f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == pytest.approx(np.mean([2 / 3, 1.0, 0.0]))  # SLSN predicted: counts
    assert metrics["balanced_accuracy"] == pytest.approx(0.75)  # over classes present in y_true
    assert math.isfinite(metrics["roc_auc_macro"])
    single = compute_metrics(np.array([1, 1]), _proba(np.array([1, 1])), CLASSES)
    assert math.isnan(single["roc_auc_macro"]) and json_safe(single)["roc_auc_macro"] is None


def test_predict_proba_rows_sum_to_one():
    from tl.config import ModelConfig
    from tl.encoding import EncodedDataset
    from tl.model import TransientClassifier

    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(n, 5)).astype(np.float32) for n in (2, 5, 3)]
    dataset = EncodedDataset(["a", "b", "c"], sequences, rng.normal(size=(3, 5)).astype(np.float32),
                             np.array([0, 1, 2]))
    torch.manual_seed(0)
    model = TransientClassifier(3, ModelConfig(gru_hidden=4, metadata_hidden=3, dense_hidden=4, dense_second=4))
    proba = predict_proba(model, dataset, batch_size=2)
    assert proba.shape == (3, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)


def test_prediction_table_holds_each_objects_probabilities_and_true_class():
    import torch

    from tl.config import Config
    from tl.evaluation import predict_proba, prediction_table
    from tl.experiment import prepare
    from toy import make_toy_dataset

    prepared = prepare(Config().override({"model.gru_hidden": 8, "model.gru_layers": 1, "data.max_length": 30}),
                       make_toy_dataset(6))
    torch.manual_seed(0)
    table = prediction_table(prepared.model, {"val": prepared.val, "test": prepared.test}, prepared.classes)
    test = table[table["split"] == "test"]
    assert list(test["object_id"]) == prepared.test.object_ids
    assert list(test["label"]) == [prepared.classes[i] for i in prepared.test.labels.tolist()]
    proba = test[[f"p_{c}" for c in prepared.classes]].to_numpy()
    assert abs(proba - predict_proba(prepared.model, prepared.test)).max() < 1e-6
    assert len(table) == len(prepared.val) + len(prepared.test)
