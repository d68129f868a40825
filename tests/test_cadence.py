"""tl.cadence: nightly sampling drawn from real light curves, against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tl.cadence import CadenceLibrary, Sampling, library_from_dataset, library_schedule, library_visits, sampled_visits
from tl.data import Dataset, write_dataset
from tl.errors import TLError
from tl.simulate import simulate
from tl.surveys import ZTF, band_moon_loss

BANDS = ("ztf_g", "ztf_r")


def _library(offsets, band, night_gaps=(1,)) -> CadenceLibrary:
    return CadenceLibrary(bands=BANDS, offsets=np.array(offsets, float), band=np.array(band, np.int8),
                          start=np.array([0]), length=np.array([len(offsets)]),
                          night_gaps=np.array(night_gaps), source="test")


def test_library_keeps_each_train_light_curve_as_one_stretch():
    objects = pd.DataFrame({"object_id": ["A", "B", "C"], "split": ["train", "train", "val"]})
    rows = [("A", 100.2, "ztf_g", True), ("A", 100.25, "ztf_r", True), ("A", 102.3, "ztf_r", True),
            ("A", 103.0, "ztf_r", False), ("A", 101.0, "ztf_i", True),  # a non-detection, another band
            ("B", 205.45, "ztf_g", True), ("B", 200.4, "ztf_g", True), ("C", 300.1, "ztf_g", True)]
    observations = pd.DataFrame(rows, columns=["object_id", "mjd", "band", "detected"])
    library = library_from_dataset(Dataset(objects, observations), BANDS, "hand")
    assert library.length.tolist() == [3, 2]  # C is not in the train split
    np.testing.assert_allclose(library.offsets, [0.2, 0.25, 2.3, 0.4, 5.45])
    assert library.band.tolist() == [0, 1, 1, 0, 0]
    assert library.span_nights.tolist() == [3, 6]
    assert sorted(library.night_gaps.tolist()) == [2, 5]  # same-night steps are not night gaps


def test_visits_repeat_a_stretch_with_its_night_gap():
    # one stretch: nights 0 (g 0.20, r 0.25) and 2 (r 0.30), then a 1-night gap: period 3 nights
    library = _library([0.2, 0.25, 2.3], [0, 1, 1], night_gaps=[1])
    first = np.arange(400) * 7 + 1000
    obj, mjd, band = library_visits(library, first, np.full(400, 60), np.random.default_rng(1))
    assert np.all(np.diff(obj) >= 0) and np.all((mjd >= first[obj]) & (mjd < first[obj] + 60))
    same = np.diff(obj) == 0
    steps = np.round(np.diff(mjd)[same], 6)
    assert set(steps) == {0.05, 2.05, 0.9}
    fraction = np.round(mjd % 1, 6)
    assert set(fraction) == {0.2, 0.25, 0.3}
    assert np.all(band[fraction == 0.2] == 0) and np.all(band[fraction != 0.2] == 1)
    assert np.all(np.abs(np.bincount(obj) - 60) <= 3)  # 3 visits every 3 nights of 60


def test_schedule_keeps_the_season_and_redraws_single_visit_nights():
    # nights 0 (g + r pair) and 1 (r alone), period 2 nights
    library = _library([0.2, 0.24, 1.3], [0, 1, 1], night_gaps=[1])
    n = 2000
    first, season_offset = np.full(n, 5000), np.full(n, (5000 - 200) % 365)  # day 200 of 240 in season
    rng = np.random.default_rng(2)
    obj, mjd, band, limit = library_schedule(ZTF, library, BANDS, first, np.full(n, 100), rng, season_offset)
    assert np.all((np.floor(mjd) - season_offset[obj]) % 365 < ZTF.season_days)
    assert mjd.max() < 5040  # nights 40-99 of the window are out of season
    fraction = np.round(mjd % 1, 6)
    assert np.all(band[fraction == 0.2] == 0) and np.all(band[fraction == 0.24] == 1)  # pairs as they were
    g_share = ZTF.band_weights["ztf_g"] / (ZTF.band_weights["ztf_g"] + ZTF.band_weights["ztf_r"])
    single = band[fraction == 0.3]
    assert np.mean(single == 0) == pytest.approx(g_share, abs=0.02)
    depth = np.array([ZTF.depth[b] for b in BANDS])[band]  # dark sky: add each night's moonlight back
    dark = limit + band_moon_loss(ZTF, BANDS, band, np.floor(mjd))
    assert np.median(dark - depth) == pytest.approx(0.0, abs=0.03)
    assert np.std(dark - depth) == pytest.approx(np.hypot(ZTF.depth_scatter, 0.1), rel=0.05)


def test_simulate_with_cadence_from_is_deterministic_and_samples_as_the_library(tmp_path):
    library = simulate("ztf", 300, 3, bts_like=True, alerts_only=True)
    write_dataset(library, str(tmp_path / "library"), name="library")
    kwargs = dict(bts_like=True, alerts_only=True, cadence_from=str(tmp_path / "library"))
    first, again = simulate("ztf", 200, 4, **kwargs), simulate("ztf", 200, 4, **kwargs)
    pd.testing.assert_frame_equal(first.observations, again.observations)
    assert first.meta["settings"]["cadence_stretches"] == int((library.objects["split"] == "train").sum())
    assert not first.observations.equals(simulate("ztf", 200, 4, bts_like=True, alerts_only=True).observations)
    # every time of night the simulation uses is one the library's light curves had (whole nights moved)
    library_fractions = set(np.round(library.observations["mjd"] % 1, 9))
    assert set(np.round(first.observations["mjd"] % 1, 9)) <= library_fractions


def test_ks_null95_is_exceeded_by_one_distribution_in_about_5_percent():
    from scipy.stats import ks_2samp

    from scripts import load_script

    validate = load_script("benchmarks/validate_simulator.py")
    rng = np.random.default_rng(7)
    n, m = 400, 60
    null95 = validate.ks_null95(n, m)
    exceeded = [ks_2samp(rng.normal(size=n), rng.normal(size=m)).statistic > null95 for _ in range(2000)]
    assert 0.02 <= np.mean(exceeded) <= 0.06  # the limiting law is a little conservative at m = 60 (~4%)
    # a shifted distribution exceeds it almost always
    assert ks_2samp(rng.normal(size=n), rng.normal(0.8, size=m)).statistic > null95


def _visits(sampling, seed=3, n=600):
    first = np.arange(n) * 5 + 58300
    return sampled_visits(ZTF, sampling, BANDS, first, np.full(n, 150), np.random.default_rng(seed),
                          np.full(n, 58300 % 365))


def test_vary_depth_moves_each_field_by_one_offset():
    offsets = []
    for seed in (3, 4, 5):
        obj, mjd, band, limit = _visits(Sampling(), seed)
        obj_v, mjd_v, band_v, limit_v = _visits(Sampling(vary_depth=0.5), seed)  # same draws, then the offsets
        np.testing.assert_array_equal(mjd, mjd_v)
        offset = limit_v - limit
        per_field = pd.Series(offset).groupby(obj).agg(["min", "max", "first"])
        np.testing.assert_allclose(per_field["min"], per_field["max"], atol=1e-12)  # one offset a field
        # the same normal draws scaled: twice the sigma, twice each offset
        np.testing.assert_allclose(_visits(Sampling(vary_depth=1.0), seed)[3] - limit, 2 * offset, atol=1e-12)
        offsets.append(per_field["first"])
    # 1,800 fields: the sample sigma's standard error is 0.008, the tolerance 0.05 (one seed's 600
    # fields gave 0.446, a 1-in-15,000 draw, when a change of the ZTF cadence moved its random stream)
    assert pd.concat(offsets).std() == pytest.approx(0.5, rel=0.1)


def test_vary_cadence_drops_whole_nights_within_the_share():
    obj, mjd, _, _ = _visits(Sampling())
    obj_v, mjd_v, _, _ = _visits(Sampling(vary_cadence=0.6))
    nights = pd.DataFrame({"obj": obj, "night": np.floor(mjd)}).drop_duplicates()
    kept = pd.DataFrame({"obj": obj_v, "night": np.floor(mjd_v)})
    visits = pd.DataFrame({"obj": obj, "mjd": mjd})
    assert set(zip(obj_v, mjd_v)) <= set(zip(obj, mjd))  # a subset of the same visits
    per_night = visits.assign(night=np.floor(mjd)).merge(kept.drop_duplicates(), on=["obj", "night"])
    assert len(per_night) == len(obj_v)  # a kept night keeps all its visits
    share = kept.drop_duplicates().groupby("obj").size() / nights.groupby("obj").size()
    share = share.fillna(0.0)
    assert share.max() <= 1.0 and share.quantile(0.05) > 0.3  # U(0.4, 1] of the nights, with few nights' noise
    assert share.mean() == pytest.approx(0.7, abs=0.03)


def test_no_object_and_no_night_gap_are_handled():
    empty = _visits(Sampling(library=_library([0.2, 1.3], [0, 1]), vary_depth=0.2, vary_cadence=0.5), n=0)
    assert all(len(column) == 0 for column in empty)
    objects = pd.DataFrame({"object_id": ["A"], "split": ["train"]})
    one_night = pd.DataFrame({"object_id": ["A", "A"], "mjd": [100.2, 100.25], "band": ["ztf_g", "ztf_r"],
                              "detected": [True, True]})
    with pytest.raises(TLError, match="--cadence-from hand: no light curve spans two nights"):
        library_from_dataset(Dataset(objects, one_night), BANDS, "hand")


def test_pair_gains_find_a_relation_the_marginals_hide():
    """Real: rise_obs = fade_obs; simulated: the two independent with the same marginals. Each alone
    cannot tell them apart (AUC ~ 0.5), the pair can (the top gain, large), and no other pair gains."""
    from scripts import load_script

    validate = load_script("benchmarks/validate_simulator.py")
    rng = np.random.default_rng(0)
    quantities = ("n_det", "rise_obs", "fade_obs", "peak_mag")  # 6 pairs: a few seconds

    def table(n, related):
        frame = pd.DataFrame({q: rng.normal(size=n) for q in validate.QUANTITIES})
        if related:
            frame["fade_obs"] = frame["rise_obs"] + 0.05 * rng.normal(size=n)
        return frame.assign(**{"class": "SN Ia"})

    simulated, real = table(400, related=False), table(200, related=True)
    alone, without = validate.quantity_aucs(simulated, real, 0, quantities)
    assert max(alone.values()) < 0.62
    (gain, pair, a, b), (second_gain, *_) = validate.pair_gains(simulated, real, alone, seed=0, top=2)
    assert {a, b} == {"rise_obs", "fade_obs"} and pair > 0.85 and gain > 0.3
    assert second_gain < 0.1
    assert max(without, key=without.get) in {"rise_obs", "fade_obs"}
    text = validate.diagnosis(simulated.head(100), real.head(60), 0, quantities)  # classes under MIN_REAL skipped
    assert text.startswith("### SN Ia") and "| rise_obs x fade_obs |" in text
