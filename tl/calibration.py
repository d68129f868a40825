"""Temperature scaling (Guo et al. 2017) and the expected calibration error.

A model's probabilities are softmax(adjusted_logits / T): adjusted_logits are the logits after the
prior correction (tl.prior), T > 0 one scalar fitted on the validation split by minimising the
negative log-likelihood. T is stored in MODEL_DIR/calibration.json; a MODEL_DIR without it has T = 1.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from tl.errors import TLError

FILE = "calibration.json"
MIN_OBJECTS = 20  # `tl train` skips the fit on fewer labelled val objects (one T from 2 objects overfits)
LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 54.6]: far wider than any useful temperature


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0
    fitted_on: str = ""  # e.g. "val (123 objects)"
    nll_before: float = float("nan")
    nll_after: float = float("nan")
    ece_before: float = float("nan")
    ece_after: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Calibration":
        temperature = float(data["temperature"])
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"'temperature' must be a finite number > 0, got {temperature}")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**{**known, "temperature": temperature})


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, C) row-wise softmax of logits / temperature (float64, max-shifted)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of class indices `labels` (N,) under softmax(logits / T)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_z - shifted[np.arange(len(labels)), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising nll(logits, labels, T), searched over log T in LOG_T_BOUNDS (bounded Brent)."""
    from scipy.optimize import minimize_scalar

    labels = np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise TLError("temperature scaling: no labelled object to fit on")
    result = minimize_scalar(lambda log_t: nll(logits, labels, math.exp(log_t)), bounds=LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-5})
    return float(math.exp(result.x))


def reliability_bins(proba: np.ndarray, labels: np.ndarray, n_bins: int = 15):
    """Equal-width confidence bins over (0, 1]: (counts, mean confidence, accuracy) per bin, each (n_bins,);
    an object's confidence is its top probability, correct when that class is its label."""
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(labels)).astype(float)
    # bin b holds confidences in (b/n, (b+1)/n]; a confidence of exactly 0 cannot occur for C >= 1
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(index, confidence, n_bins) / counts
        accuracy = np.bincount(index, correct, n_bins) / counts
    return counts, mean_conf, accuracy


def expected_calibration_error(proba: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: sum over equal-width bins of (bin share of objects) * |accuracy - mean confidence|."""
    if len(labels) == 0:
        return float("nan")
    counts, mean_conf, accuracy = reliability_bins(proba, labels, n_bins)
    used = counts > 0
    return float(np.sum(counts[used] / counts.sum() * np.abs(accuracy[used] - mean_conf[used])))


def calibrate(logits: np.ndarray, labels: np.ndarray, split: str = "val", n_bins: int = 15) -> Calibration:
    """Fit T on (adjusted) `logits` (N, C) with class indices `labels` (N,; -1 entries left out)."""
    labels = np.asarray(labels, dtype=int)
    known = labels >= 0
    logits, labels = np.asarray(logits, dtype=np.float64)[known], labels[known]
    temperature = fit_temperature(logits, labels)
    return Calibration(temperature=temperature, fitted_on=f"{split} ({len(labels)} objects)",
                       nll_before=nll(logits, labels), nll_after=nll(logits, labels, temperature),
                       ece_before=expected_calibration_error(softmax(logits), labels, n_bins),
                       ece_after=expected_calibration_error(softmax(logits, temperature), labels, n_bins))


def save_calibration(path: str, calibration: Calibration) -> None:
    """Write MODEL_DIR/calibration.json (atomically)."""
    from tl.atomic import write_file
    from tl.evaluation import json_safe

    write_file(os.path.join(path, FILE),
               lambda f: f.write(json.dumps(json_safe(calibration.to_dict()), indent=2)), "w")


def load_calibration(path: str) -> Calibration | None:
    """MODEL_DIR/calibration.json, or None when the MODEL_DIR has none; a bad one raises TLError."""
    file_path = os.path.join(path, FILE)
    if not os.path.exists(file_path):
        return None
    try:
        with open(file_path) as handle:
            return Calibration.from_dict(json.load(handle))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise TLError(f"{file_path}: not a valid calibration ({error})") from None
