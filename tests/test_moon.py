"""Moonlight in the survey depth: the phase, the Krisciunas & Schaefer brightness law, the visits' limits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tl.surveys import ZTF, moon_depth_loss, moon_phase_angle, schedule_visits

# USNO phases of the moon (UT): full 2020-01-10 19:21, new 2020-01-24 21:42, full 2021-06-24 18:40
FULL_2020_MJD, NEW_2020_MJD, FULL_2021_MJD = 58858.806, 58872.904, 59389.778


def test_phase_angle_against_published_full_and_new_moons():
    # the true moon runs up to ~0.6 day (~7 degrees) ahead of or behind the mean synodic month
    assert moon_phase_angle(FULL_2020_MJD) < 10
    assert moon_phase_angle(FULL_2021_MJD) < 10
    assert moon_phase_angle(NEW_2020_MJD) > 170
    # a quarter of a synodic month after full moon: half lit, 90 degrees
    assert moon_phase_angle(FULL_2020_MJD + 29.530589 / 4) == pytest.approx(90, abs=10)


def test_depth_loss_against_hand_computed_values():
    full_phase = 51549.76 + 29.530589 / 2  # the reference new moon + half a month: alpha = 0 exactly
    assert moon_depth_loss(1.0, full_phase) == pytest.approx(1.0)
    # alpha = 90: I / I0 = 10^(-0.4 (2.34 + 0.2624)) = 0.09101; c = 10^(1 / 1.25) - 1 = 5.3096;
    # loss = 1.25 log10(1 + 0.48322) = 0.21406
    quarter = full_phase + 29.530589 / 4
    assert moon_depth_loss(1.0, quarter) == pytest.approx(0.21406, abs=2e-4)
    # new moon: I / I0 = 10^(-0.4 (4.68 + 4.199)) = 2.81e-4 -> 1.25 log10(1 + 5.3096 * 2.81e-4) = 8.1e-4
    assert moon_depth_loss(1.0, full_phase + 29.530589 / 2) == pytest.approx(8.1e-4, abs=5e-5)
    assert moon_depth_loss(0.0, full_phase) == 0.0


def test_visits_at_full_moon_are_shallower_by_the_full_moon_loss():
    moonlit = dataclasses.replace(ZTF, moon_full_loss={"ztf_g": 0.85, "ztf_r": 0.75})
    rng = np.random.default_rng(5)
    n = 3000
    first = rng.integers(58200, 59200, n)
    _, mjd, band, limit = schedule_visits(moonlit, ("ztf_g", "ztf_r"), first, np.full(n, 60), rng)
    alpha = moon_phase_angle(np.floor(mjd))
    for index, (name, loss) in enumerate(moonlit.moon_full_loss.items()):
        near_full = (band == index) & (alpha < 10)
        near_new = (band == index) & (alpha > 150)
        # the night-to-night scatter averages out over thousands of visits (SE ~0.01 mag)
        difference = limit[near_new].mean() - limit[near_full].mean()
        expected = (moon_depth_loss(loss, np.floor(mjd[near_full])).mean()
                    - moon_depth_loss(loss, np.floor(mjd[near_new])).mean())
        assert difference == pytest.approx(expected, abs=0.04), name
        assert limit[near_new].mean() == pytest.approx(ZTF.depth[name], abs=0.05)  # dark nights: the depth


def test_no_moon_leaves_the_visits_unchanged():
    # moon_full_loss None draws nothing extra: the same visits as an all-zero loss
    first, nights = np.arange(58300, 58400), np.full(100, 40)
    plain = schedule_visits(dataclasses.replace(ZTF, moon_full_loss=None), ("ztf_g", "ztf_r"), first, nights,
                            np.random.default_rng(2))
    zero = dataclasses.replace(ZTF, moon_full_loss={"ztf_g": 0.0, "ztf_r": 0.0})
    dark = schedule_visits(zero, ("ztf_g", "ztf_r"), first, nights, np.random.default_rng(2))
    for a, b in zip(plain, dark):
        np.testing.assert_array_equal(a, b)


def test_moon_depth_table_recovers_planted_limits():
    from scripts import load_script

    validate = load_script("benchmarks/validate_simulator.py")
    full = 51549.76 + 29.530589 / 2
    # detections 1 and 13 days from full moon at implied limits 19.5 and 20.1 (g) / 19.6 and 20.0 (r)
    rows = []
    for days, limits in ((1.0, (19.5, 19.6)), (13.0, (20.1, 20.0))):
        for band, limit in zip(("ztf_g", "ztf_r"), limits):
            flux_err = 10 ** (-0.4 * (limit - 23.9)) / 5
            rows += [(full + days, band, 8 * flux_err, flux_err, True),
                     (full - days, band, 9 * flux_err, flux_err, True),
                     (full + days, band, 45 * flux_err, flux_err * 3, True)]  # S/N 15 (>= 12): ignored
    rows.append((full, "ztf_g", -5.0, 1.0, True))  # negative flux: ignored
    observations = pd.DataFrame(rows, columns=["mjd", "band", "flux", "flux_err", "detected"])
    table = validate.moon_depth_table(observations)
    np.testing.assert_allclose([table["ztf_g"][0], table["ztf_g"][4]], [19.5, 20.1], atol=1e-9)
    np.testing.assert_allclose([table["ztf_r"][0], table["ztf_r"][4]], [19.6, 20.0], atol=1e-9)
    assert np.isnan(table["ztf_g"][2])  # no detections 6-9 days from full
