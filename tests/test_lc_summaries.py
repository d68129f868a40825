"""tl.lc_summaries: the vectorised per-object summaries against a per-object loop (the implementation
they replaced) on simulated and hand-made light curves, and against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tl.lc_summaries import QUANTITIES, summaries
from tl.simulate import simulate
from tl.surveys import AB_ZERO_POINT


def loop_peak_colour(mjd, is_g, magnitude) -> float:
    g, r = np.flatnonzero(is_g), np.flatnonzero(~is_g)
    if len(g) == 0 or len(r) == 0:
        return np.nan
    separation = np.abs(mjd[g][:, None] - mjd[r][None, :])
    distance = np.abs((mjd[g][:, None] + mjd[r][None, :]) / 2 - mjd[np.argmin(magnitude)])
    distance[separation > 1.0] = np.inf
    i, j = np.unravel_index(np.argmin(distance), distance.shape)
    return float(magnitude[g[i]] - magnitude[r[j]]) if np.isfinite(distance[i, j]) else np.nan


def loop_summaries(objects: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """One object at a time (benchmarks/validate_simulator.py's summaries up to simulator v8)."""
    obs = observations[observations["detected"] & observations["band"].isin(["ztf_g", "ztf_r"])
                       & (observations["flux"] > 0)].sort_values(["object_id", "mjd"], kind="stable")
    rows = []
    for object_id, lc in obs.groupby("object_id", sort=False):
        mjd, flux = lc["mjd"].to_numpy(), lc["flux"].to_numpy()
        is_g = (lc["band"] == "ztf_g").to_numpy()
        magnitude = AB_ZERO_POINT - 2.5 * np.log10(flux)
        peak, gaps = int(np.argmax(flux)), np.diff(mjd)
        rows.append({"object_id": object_id, "n_det": len(mjd), "rise_obs": mjd[peak] - mjd[0],
                     "fade_obs": mjd[-1] - mjd[peak], "peak_mag": magnitude[peak],
                     "g_r_peak": loop_peak_colour(mjd, is_g, magnitude),
                     "first_gap": gaps[0] if len(gaps) else np.nan,
                     "median_gap": float(np.median(gaps)) if len(gaps) else np.nan,
                     "same_night": float(np.mean(gaps < 0.5)) if len(gaps) else np.nan,
                     "g_fraction": float(is_g.mean()),
                     "snr_median": float(np.median(flux / lc["flux_err"].to_numpy())),
                     "flux_over_peak": float(np.median(flux / flux[peak]))})
    table = objects[["object_id", "label", "redshift"]].merge(pd.DataFrame(rows), on="object_id")
    return table.rename(columns={"label": "class"})


def hand_made() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Edge cases: one detection; g only; a tie for the brightest; a g/r pair exactly 1 day apart
    and one 1.0001 days apart; a non-detection, a negative flux and an i-band point (all ignored);
    an object with nothing positive (absent); two pairs equally near the peak (the earlier g wins)."""
    rows = [  # object, mjd, band, flux, flux_err, detected
        ("single", 10.0, "ztf_g", 100.0, 10.0, True),
        ("g_only", 10.0, "ztf_g", 100.0, 10.0, True), ("g_only", 11.0, "ztf_g", 150.0, 10.0, True),
        ("tie", 10.0, "ztf_r", 200.0, 10.0, True), ("tie", 12.0, "ztf_g", 200.0, 20.0, True),
        ("tie", 12.4, "ztf_r", 50.0, 10.0, True),
        ("edge", 10.0, "ztf_g", 100.0, 10.0, True), ("edge", 11.0, "ztf_r", 300.0, 10.0, True),
        ("edge", 20.0, "ztf_g", 80.0, 10.0, True), ("edge", 21.0001, "ztf_r", 90.0, 10.0, True),
        ("edge", 15.0, "ztf_r", 500.0, 10.0, False), ("edge", 16.0, "ztf_g", -5.0, 10.0, True),
        ("edge", 17.0, "ztf_i", 400.0, 10.0, True),
        ("nothing", 10.0, "ztf_g", -1.0, 10.0, True), ("nothing", 11.0, "ztf_r", 50.0, 10.0, False),
        ("twins", 9.0, "ztf_g", 60.0, 10.0, True), ("twins", 9.5, "ztf_r", 70.0, 10.0, True),
        ("twins", 10.0, "ztf_g", 200.0, 10.0, True), ("twins", 10.5, "ztf_r", 90.0, 10.0, True),
        ("twins", 11.0, "ztf_g", 80.0, 10.0, True),
    ]
    observations = pd.DataFrame(rows, columns=["object_id", "mjd", "band", "flux", "flux_err", "detected"])
    names = ["single", "g_only", "tie", "edge", "nothing", "twins"]
    objects = pd.DataFrame({"object_id": names, "label": "SN Ia", "redshift": np.linspace(0.01, 0.06, 6)})
    return objects, observations.sample(frac=1.0, random_state=0)  # any row order


def assert_same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    assert list(fast.columns) == list(slow.columns) == ["object_id", "class", "redshift", *QUANTITIES[:-1]]
    assert fast["object_id"].tolist() == slow["object_id"].tolist()
    for quantity in QUANTITIES:
        np.testing.assert_allclose(fast[quantity].to_numpy(float), slow[quantity].to_numpy(float),
                                   rtol=0, atol=1e-12, err_msg=quantity)


@pytest.mark.parametrize("bts_like", [True, False])
def test_vectorised_summaries_equal_the_per_object_loop_on_a_simulation(bts_like):
    data = simulate("ztf", 300, 4, bts_like=bts_like, alerts_only=bts_like)
    fast = summaries(data.objects, data.observations)
    obs = data.observations
    positive = obs[obs["detected"] & obs["band"].isin(["ztf_g", "ztf_r"]) & (obs["flux"] > 0)]
    # one row per object with a positive g/r detection (without --bts-like some have i-band ones only)
    assert set(fast["object_id"]) == set(positive["object_id"])
    assert len(fast) >= 0.95 * len(data.objects)
    assert_same(fast, loop_summaries(data.objects, data.observations))


def test_vectorised_summaries_equal_the_per_object_loop_on_the_edge_cases():
    objects, observations = hand_made()
    assert_same(summaries(objects, observations), loop_summaries(objects, observations))


def test_summaries_by_hand():
    objects, observations = hand_made()
    table = summaries(objects, observations).set_index("object_id")
    assert "nothing" not in table.index
    single, g_only, tie, edge, twins = (table.loc[name] for name in ("single", "g_only", "tie", "edge", "twins"))
    assert single["n_det"] == 1 and np.isnan(single["first_gap"]) and np.isnan(single["same_night"])
    assert np.isnan(g_only["g_r_peak"]) and g_only["g_fraction"] == 1.0 and g_only["rise_obs"] == 1.0
    # the tie goes to the first brightest (day 10, r): its nearest pair is g at 12 + r at 12.4, midpoint 12.2
    assert tie["rise_obs"] == 0.0 and tie["fade_obs"] == pytest.approx(2.4)
    assert tie["g_r_peak"] == pytest.approx(-2.5 * np.log10(200 / 50))
    assert tie["same_night"] == pytest.approx(0.5) and tie["median_gap"] == pytest.approx(1.2)
    # edge: the 1.0-day pair counts, the 1.0001-day one does not; the ignored points change nothing
    assert edge["n_det"] == 4 and edge["g_r_peak"] == pytest.approx(-2.5 * np.log10(100 / 300))
    assert edge["peak_mag"] == pytest.approx(AB_ZERO_POINT - 2.5 * np.log10(300))
    assert edge["flux_over_peak"] == pytest.approx(np.median([100, 300, 80, 90]) / 300)
    assert edge["snr_median"] == pytest.approx(9.5)
    # twins: pairs (9, 9.5), (10, 9.5), (10, 10.5), (11, 10.5) have midpoints 0.75, 0.25, 0.25, 0.75 from
    # the peak at 10: of the two nearest (both g at 10), the earlier r (9.5)
    assert twins["g_r_peak"] == pytest.approx(-2.5 * np.log10(200 / 70))
    assert twins["same_night"] == 0.0 and twins["g_fraction"] == pytest.approx(0.6)  # 0.5-day gaps are not < 0.5


def test_no_positive_g_r_detection_gives_an_empty_table_with_the_columns():
    objects, observations = hand_made()
    table = summaries(objects, observations.assign(band="lsst_g"))
    assert table.empty and list(table.columns) == ["object_id", "class", "redshift", *QUANTITIES[:-1]]
