"""Convergence table: paired steps-to-best ratios against hand-computed values."""

import math

import pytest

from tl.sweep.convergence import convergence_table


def study(fraction, mode, fold, best_step, at_cap=False, seed=0):
    return {"fraction": fraction, "mode": mode, "seed": seed, "fold": fold, "best_step": best_step,
            "at_epoch_cap": at_cap}


def test_geometric_mean_of_paired_ratios():
    # ratios 0.5, 2, 1 (paired by fold): geometric mean (0.5 * 2 * 1) ** (1/3) = 1
    studies = [study(0.1, "transfer", 0, 50), study(0.1, "scratch", 0, 100),
               study(0.1, "transfer", 1, 200), study(0.1, "scratch", 1, 100),
               study(0.1, "transfer", 2, 80, at_cap=True), study(0.1, "scratch", 2, 80)]
    (row,) = convergence_table(studies)
    assert row.n_pairs == 3
    assert row.ratio == pytest.approx(1.0)
    assert row.transfer_median_steps == 80 and row.scratch_median_steps == 100
    assert (row.transfer_at_cap, row.scratch_at_cap) == (1, 0)
    assert 0.5 <= row.ratio_ci95_low <= row.ratio <= row.ratio_ci95_high <= 2.0


def test_equal_ratios_give_a_point_interval_and_pairs_need_both_modes():
    studies = [study(1.0, "transfer", k, 30 * (k + 1)) for k in range(3)]
    studies += [study(1.0, "scratch", k, 40 * (k + 1)) for k in range(3)]
    studies.append(study(1.0, "transfer", 3, 10))  # no scratch partner: not paired
    (row,) = convergence_table(studies)
    assert row.n_pairs == 3
    assert row.ratio == pytest.approx(0.75)
    assert row.ratio_ci95_low == pytest.approx(0.75) and row.ratio_ci95_high == pytest.approx(0.75)


def test_report_rows_count_the_cap_from_best_epoch_and_missing_steps_are_left_out():
    studies = [{"fraction": 0.5, "mode": "transfer", "seed": 0, "fold": 0, "best_step": None,
                "best_epoch": 19, "epochs": 19},
               {"fraction": 0.5, "mode": "scratch", "seed": 0, "fold": 0, "best_step": 120,
                "best_epoch": 12, "epochs": 19}]
    (row,) = convergence_table(studies)
    assert row.n_pairs == 0 and row.ratio is None
    assert (row.transfer_at_cap, row.scratch_at_cap) == (1, 0)
    assert row.transfer_median_steps is None and not math.isnan(row.scratch_median_steps)
