"""Temperature scaling and the expected calibration error (tl.calibration), against hand-computed
values and a brute-force search."""

import json
import math

import numpy as np
import pytest

from tl.calibration import (Calibration, calibrate, expected_calibration_error, fit_temperature, load_calibration,
                            nll, save_calibration, softmax)
from tl.errors import TLError


def test_ece_matches_a_hand_computed_case():
    # 4 objects, 2 bins ((0, .5], (.5, 1]); confidences .4 (wrong), .45 (right), .8 (right), .9 (wrong)
    proba = np.array([[0.4, 0.3, 0.3], [0.45, 0.35, 0.2], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0]])
    labels = np.array([1, 0, 0, 0])
    # bin 1: mean confidence .425, accuracy .5; bin 2: mean confidence .85, accuracy .5
    expected = 0.5 * abs(0.5 - 0.425) + 0.5 * abs(0.5 - 0.85)
    assert expected_calibration_error(proba, labels, n_bins=2) == pytest.approx(expected)


def test_ece_of_15_bins_puts_a_confidence_on_an_edge_in_the_lower_bin():
    # confidence 2/3 lies in (9/15, 10/15]; one right answer: |1 - 2/3|
    proba = np.array([[2 / 3, 1 / 3]])
    assert expected_calibration_error(proba, np.array([0])) == pytest.approx(1 / 3)


def test_fitted_temperature_is_the_minimum_of_a_grid_search():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), labels] += 1.0
    logits *= 3.0  # over-confident: the best temperature is > 1
    fitted = fit_temperature(logits, labels)
    grid = np.exp(np.linspace(-3, 3, 6001))
    best = grid[np.argmin([nll(logits, labels, t) for t in grid])]
    assert fitted > 1 and fitted == pytest.approx(best, rel=2e-3)


def test_nll_matches_the_definition():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 0])
    p = np.exp(logits / 2) / np.exp(logits / 2).sum(axis=1, keepdims=True)
    assert nll(logits, labels, 2.0) == pytest.approx(-np.mean(np.log(p[[0, 1], [0, 0]])))


def test_calibration_lowers_the_nll_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=300)
    logits = 4 * (rng.normal(size=(300, 3)) + np.eye(3)[labels])
    calibration = calibrate(logits, np.concatenate([labels, [-1]])[:300], "val")
    assert calibration.nll_after <= calibration.nll_before
    assert calibration.ece_after == pytest.approx(expected_calibration_error(
        softmax(logits, calibration.temperature), labels))
    save_calibration(str(tmp_path), calibration)
    assert load_calibration(str(tmp_path)) == calibration
    assert load_calibration(str(tmp_path / "nothing")) is None


def test_a_bad_calibration_file_names_itself(tmp_path):
    (tmp_path / "calibration.json").write_text(json.dumps({"temperature": -1}))
    with pytest.raises(TLError, match="calibration.json: not a valid calibration"):
        load_calibration(str(tmp_path))


def test_softmax_rows_sum_to_one_and_temperature_keeps_the_argmax():
    logits = np.array([[1000.0, 999.0, -5.0], [0.1, 0.2, 0.3]])
    for t in (0.5, 1.0, 3.0):
        p = softmax(logits, t)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert (p.argmax(axis=1) == logits.argmax(axis=1)).all()
    assert math.isclose(Calibration().temperature, 1.0)
