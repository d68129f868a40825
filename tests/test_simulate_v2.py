"""Simulator v2: the BTS selection function, the ZTF nightly sampling against its targets, sub-types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tl import bts_selection
from tl import lightcurve_models as lc
from tl.simulate import model_quotas, simulate
from tl.surveys import ZTF, clear_nights, schedule_visits
from tl.taxonomy import canonical_label


def test_completeness_against_hand_computed_values():
    # nodes (18.5, 1.0), (18.75, 0.6), (19.0, 0.3): halfway between nodes is the mean of the two
    magnitude = [15.0, 18.5, 18.625, 18.75, 18.875, 19.0, 19.01, np.inf]
    np.testing.assert_allclose(bts_selection.completeness(magnitude),
                               [1.0, 1.0, 0.8, 0.6, 0.45, 0.3, 0.0, 0.0])
    kept = bts_selection.selected([18.0, 18.625, 18.625, 18.9, 19.2, np.nan],
                                  [0.99, 0.79, 0.81, 0.1, 0.0, 0.0])
    assert kept.tolist() == [True, True, False, True, False, False]


def test_bts_like_sample_reaches_past_18_5_with_falling_completeness():
    data = simulate("ztf", 700, seed=3, bts_like=True, alerts_only=True)
    peak = 23.9 - 2.5 * np.log10(data.observations.groupby("object_id")["flux"].max())
    assert peak.max() <= bts_selection.FAINTEST_MAGNITUDE
    faint = np.mean(peak > bts_selection.COMPLETE_MAGNITUDE)
    assert 0.2 < faint < 0.5  # BTS train: 34% of objects peak at 18.5-19 mag


@pytest.fixture(scope="module")
def ztf_visits():
    rng = np.random.default_rng(1)
    n = 4000
    first = rng.integers(58200, 59000, n)
    return schedule_visits(ZTF, ("ztf_g", "ztf_r"), first, np.full(n, 120), rng)


def test_nightly_sampling_matches_its_targets(ztf_visits):
    obj, mjd, band, _ = ztf_visits
    night = pd.DataFrame({"obj": obj, "night": np.floor(mjd).astype(int), "band": band})
    per_night = night.groupby(["obj", "night"])["band"].agg(["size", "first"])
    assert (per_night["size"] == 2).mean() == pytest.approx(ZTF.pair_probability, abs=0.02)
    single = per_night.loc[per_night["size"] == 1, "first"]
    g_share = ZTF.band_weights["ztf_g"] / (ZTF.band_weights["ztf_g"] + ZTF.band_weights["ztf_r"])
    assert (single == 0).mean() == pytest.approx(g_share, abs=0.02)
    # gaps between observed nights: the 3-night grid makes 3 d the most common gap, as in BTS
    gaps = per_night.reset_index().groupby("obj")["night"].diff().dropna()
    shares = gaps.value_counts(normalize=True)
    assert shares.idxmax() == 3 and 2 <= gaps.median() <= 3
    pair_gaps = np.diff(mjd)[(np.diff(obj) == 0) & (np.diff(mjd) < 0.5)]
    assert pair_gaps.min() >= ZTF.visit_separation_days[0] - 1e-9
    assert pair_gaps.max() <= ZTF.visit_separation_days[1] + 1e-9


def test_weather_chain_has_the_stationary_loss_and_run_length():
    clear = clear_nights(ZTF, 58000, 200000, np.random.default_rng(2))
    assert 1 - clear.mean() == pytest.approx(ZTF.weather_loss, abs=0.01)
    edges = np.diff(clear.astype(int))
    bad_runs = np.sum(edges == -1)
    assert (~clear).sum() / bad_runs == pytest.approx(ZTF.weather_run_nights, rel=0.05)


def test_subtypes_carry_the_canonical_label_and_their_shares():
    rows = {model: count for label, model, count in model_quotas({"SN II": 280, "SN Ia": 5})}
    assert rows == {"SN II": 228, "SN IIn": 39, "SN IIb": 13, "SN Ia": 5}
    data = simulate("ztf", 140, seed=4, bts_like=True, class_mix="SN II=1,SN Ibc=1,SLSN=1")
    for raw, label in data.objects[["raw_label", "label"]].itertuples(index=False):
        assert raw == label or canonical_label("bts", raw) == label  # sub-types: BTS names
    assert set(lc.SUBTYPE_MODELS) <= set(data.objects["raw_label"])


def test_same_seed_same_bts_like_alert_stream():
    first = simulate("ztf", 60, seed=9, bts_like=True, alerts_only=True)
    second = simulate("ztf", 60, seed=9, bts_like=True, alerts_only=True)
    pd.testing.assert_frame_equal(first.objects, second.objects)
    pd.testing.assert_frame_equal(first.observations, second.observations)


def test_tabulated_extinction_equals_the_polynomials():
    wavelength = np.geomspace(110.0, 3800.0, 20001)
    np.testing.assert_allclose(lc.tabulated_extinction_ratio(wavelength),
                               lc.cardelli_extinction_ratio(wavelength), atol=5e-4)
