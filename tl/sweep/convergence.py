"""Convergence: optimiser steps to the best validation score, transfer against scratch, per fraction.

The paper's "transfer converges faster" claim, measured on the selected model of every study. Transfer
and scratch studies are paired by (seed, fold): the same labelled subset and test split. Per fraction
the row gives the median steps of each mode, how many selected models stopped at their epoch budget
(their true best may lie later), and the geometric mean of the paired ratio transfer/scratch with a
95% percentile-bootstrap interval over the pairs (few pairs: a wide, honest interval).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

N_BOOT = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ConvergenceRow:
    fraction: float
    n_pairs: int
    transfer_median_steps: float | None
    scratch_median_steps: float | None
    transfer_at_cap: int
    scratch_at_cap: int
    ratio: float | None  # geometric mean of transfer/scratch steps over the pairs
    ratio_ci95_low: float | None
    ratio_ci95_high: float | None


def convergence_table(studies: list[dict], n_boot: int = N_BOOT, seed: int = 0) -> list[ConvergenceRow]:
    """One row per fraction from selected-model rows (keys fraction, mode, seed, fold, best_step,
    at_epoch_cap, as in selected_models.csv); studies without best_step are left out of the ratio."""
    rows = []
    for fraction in sorted({float(study["fraction"]) for study in studies}):
        chosen = {mode: {_pair_key(s): s for s in studies if float(s["fraction"]) == fraction and s["mode"] == mode}
                  for mode in ("transfer", "scratch")}
        pairs = [(chosen["transfer"][key]["best_step"], chosen["scratch"][key]["best_step"])
                 for key in sorted(chosen["transfer"].keys() & chosen["scratch"].keys())
                 if _positive(chosen["transfer"][key]["best_step"]) and _positive(chosen["scratch"][key]["best_step"])]
        ratio, low, high = _ratio_interval(pairs, n_boot, seed)
        rows.append(ConvergenceRow(
            fraction=fraction, n_pairs=len(pairs),
            transfer_median_steps=_median(chosen["transfer"].values()),
            scratch_median_steps=_median(chosen["scratch"].values()),
            transfer_at_cap=_at_cap(chosen["transfer"].values()), scratch_at_cap=_at_cap(chosen["scratch"].values()),
            ratio=ratio, ratio_ci95_low=low, ratio_ci95_high=high))
    return rows


def as_records(rows: list[ConvergenceRow]) -> list[dict]:
    return [asdict(row) for row in rows]


def _pair_key(study: dict) -> tuple:
    return (int(study.get("seed") or 0), int(study["fold"]) if _present(study.get("fold")) else -1)


def _ratio_interval(pairs: list[tuple], n_boot: int, seed: int):
    """Geometric mean of the ratios and its percentile-bootstrap interval (None without pairs)."""
    if not pairs:
        return None, None, None
    logs = np.log([transfer / scratch for transfer, scratch in pairs])
    draws = np.random.default_rng(seed).integers(0, len(logs), size=(n_boot, len(logs)))
    means = logs[draws].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(np.exp(logs.mean())), float(np.exp(low)), float(np.exp(high))


def _median(studies) -> float | None:
    steps = [float(s["best_step"]) for s in studies if _positive(s["best_step"])]
    return float(np.median(steps)) if steps else None


def _at_cap(studies) -> int:
    return sum(1 for s in studies if _stopped_at_cap(s))


def _stopped_at_cap(study: dict) -> bool:
    """selected_models.csv carries at_epoch_cap; report rows carry best_epoch and the epoch cap."""
    if "at_epoch_cap" in study:
        return study["at_epoch_cap"] in (True, "True", "true", 1)
    return _present(study.get("best_epoch")) and _present(study.get("epochs")) and study["best_epoch"] >= study["epochs"]


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _positive(value) -> bool:
    return _present(value) and float(value) > 0
