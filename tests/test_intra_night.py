"""benchmarks/intra_night.py: the gaps within a night, counted by hand on a small table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SLOT_DAYS = 40.3 / 86400


def observations() -> pd.DataFrame:
    rows = [  # object, mjd, band, flux, detected
        ("a", 100.00, "ztf_g", 5.0, True),
        ("a", 100.05, "ztf_r", 5.0, True),  # g -> r within the night: 0.05 d
        ("a", 100.05 + 2 * SLOT_DAYS, "ztf_r", 5.0, True),  # a repeat two exposure slots later
        ("a", 100.30, "ztf_i", 5.0, True),  # not g/r: ignored
        ("a", 100.40, "ztf_g", -1.0, True),  # negative flux: ignored
        ("a", 100.45, "ztf_g", 5.0, False),  # not detected: ignored
        ("a", 101.00, "ztf_g", 5.0, True),  # the next night: not within a night
        ("b", 101.02, "ztf_r", 5.0, True),  # another object: no gap across objects
        ("b", 101.04, "ztf_g", 5.0, True),  # r -> g: 0.02 d
        ("b", 101.10, "ztf_g", 5.0, True),  # a repeat 0.06 d later, on no slot
    ]
    return pd.DataFrame(rows, columns=["object_id", "mjd", "band", "flux", "detected"])


def test_within_night_gaps_by_hand():
    from scripts import load_script

    intra_night = load_script("benchmarks/intra_night.py")
    gaps, same_band = intra_night.within_night_gaps(observations())
    np.testing.assert_allclose(gaps, [0.05, 2 * SLOT_DAYS, 0.02, 0.06], atol=1e-9)
    assert same_band.tolist() == [False, True, False, True]
    row = intra_night.gap_rows("by hand", gaps, same_band)[0].split(" | ")
    assert row[1] == "2" and row[4] == "2"  # two g/r gaps, two repeats
    assert row[5].startswith("0.50 (0 / 1 / 0 / 0)")  # one of the two repeats on a slot: two slots
    median, sigma = map(float, row[3].split(", "))
    assert median == pytest.approx(np.sqrt(0.05 * 0.02), rel=1e-3)  # the geometric mean
    assert sigma == pytest.approx(np.log(0.05 / 0.02) / 2, rel=1e-2)
