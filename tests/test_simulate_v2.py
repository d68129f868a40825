"""Simulator v2: the BTS selection function, the ZTF nightly sampling against its targets, sub-types."""

from __future__ import annotations

import dataclasses
import math

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


# ZTF with one pair probability for every field's period (pair_by_period: its own test below)
ZTF_ONE_PAIR_MODEL = dataclasses.replace(ZTF, pair_by_period=None)


@pytest.fixture(scope="module")
def ztf_visits():
    rng = np.random.default_rng(1)
    n = 4000
    first = rng.integers(58200, 59000, n)
    return schedule_visits(ZTF_ONE_PAIR_MODEL, ("ztf_g", "ztf_r"), first, np.full(n, 120), rng)


def test_nightly_sampling_matches_its_targets(ztf_visits):
    obj, mjd, band, _ = ztf_visits
    visits = pd.DataFrame({"obj": obj, "night": np.floor(mjd).astype(int), "band": band, "mjd": mjd})
    per_night = visits.groupby(["obj", "night"])["band"].agg(["nunique", "first"])
    both = per_night["nunique"] == 2
    assert both.mean() == pytest.approx(ZTF.pair_probability, abs=0.02)  # the mean of the fields' Beta
    single = per_night.loc[~both, "first"]
    g_share = ZTF.band_weights["ztf_g"] / (ZTF.band_weights["ztf_g"] + ZTF.band_weights["ztf_r"])
    assert (single == 0).mean() == pytest.approx(g_share, abs=0.02)
    # programs differ between fields: the per-field share of two-band nights spreads like the Beta
    # (variance m (1 - m) / (a + b + 1)) plus the binomial noise of each field's nights
    per_field = both.groupby("obj").agg(["mean", "size"])
    per_field = per_field[per_field["size"] >= 20]
    m, concentration = ZTF.pair_probability, ZTF.field_concentration[0]
    expected = np.sqrt(m * (1 - m) / (concentration + 1) + np.mean(m * (1 - m) / per_field["size"]))
    assert per_field["mean"].std() == pytest.approx(expected, rel=0.1)
    # same-band repeats (field overlaps): a share repeat_probability of the other visits
    next_same = (np.diff(obj) == 0) & (np.diff(visits["night"]) == 0)
    gap = np.diff(mjd)
    repeat = next_same & (np.diff(band) == 0)
    assert repeat.sum() / (len(obj) - repeat.sum()) == pytest.approx(ZTF.repeat_probability, rel=0.1)
    # a repeat is a whole number of exposure slots later, or lognormal within repeat_separation_days
    slots = gap[repeat] / ZTF.repeat_slot_days
    on_slot = np.abs(slots - np.round(slots)) < 1e-6
    assert on_slot.mean() == pytest.approx(ZTF.repeat_slot_share, abs=0.03)
    shortest, longest = ZTF.repeat_separation_days
    assert shortest - 1e-9 <= gap[repeat][~on_slot].min() <= gap[repeat][~on_slot].max() <= longest + 1e-9
    counts = np.bincount(np.round(slots[on_slot]).astype(int))
    assert counts[2] / counts[1] == pytest.approx(ZTF.repeat_slot_continue, abs=0.06)
    later = np.log(gap[repeat][~on_slot])
    assert np.exp(np.median(later)) == pytest.approx(ZTF.repeat_separation_lognormal[0], rel=0.1)
    # g/r pairs: a lognormal gap, clipped to visit_separation_days (a repeat may come between the two)
    pair = next_same & (np.diff(band) != 0)
    assert gap[pair].min() >= ZTF.visit_separation_days[0] - 1e-9
    assert gap[pair].max() <= ZTF.visit_separation_days[1] + ZTF.repeat_separation_days[1] + 1e-9
    direct = pair & ~np.r_[False, repeat[:-1]]  # a pair with no repeat before its second visit
    median, sigma_ln = ZTF.separation_lognormal
    assert np.exp(np.median(np.log(gap[direct]))) == pytest.approx(median, rel=0.05)
    assert np.std(np.log(gap[direct])) == pytest.approx(sigma_ln, rel=0.05)
    # a night's first visit moves through the night with the season: near-integer gaps between nights
    first_visits = visits.groupby(["obj", "night"])["mjd"].min().reset_index()
    between = first_visits.groupby("obj")["mjd"].diff().dropna()
    deviation = between - np.round(between)
    assert np.quantile(deviation, 0.75) - np.quantile(deviation, 0.25) < 0.1  # uniform times of night: ~0.3
    time_of_night = first_visits["mjd"] % 1
    assert time_of_night.between(ZTF.night_start[0] - 0.15, ZTF.night_start[1] + 0.15).all()


def test_pair_probability_follows_the_fields_grid_period():
    # 1-night fields pair on 90% of nights, each field within a narrow Beta; 3-night fields keep 20%
    survey = dataclasses.replace(ZTF, grid_days={1: 0.5, 3: 0.5}, grid_jitter=0.0, night_probability=0.0,
                                 weather_loss=0.0, repeat_probability=0.0, pair_probability=0.2,
                                 field_concentration=None, pair_by_period={1: (0.9, 400.0)})
    rng = np.random.default_rng(4)
    n = 3000
    obj, mjd, band, _ = schedule_visits(survey, ("ztf_g", "ztf_r"), rng.integers(58200, 59000, n),
                                        np.full(n, 90), rng)
    visits = pd.DataFrame({"obj": obj, "night": np.floor(mjd).astype(int), "band": band})
    nights = visits.groupby(["obj", "night"])["band"].nunique().reset_index()
    nights["step"] = nights.groupby("obj")["night"].diff()
    fields = nights.groupby("obj").agg(step=("step", "median"), pair=("band", lambda b: np.mean(b == 2)),
                                       nights=("band", "size"))
    fields = fields[fields["nights"] >= 10]
    daily, third = fields[fields["step"] == 1], fields[fields["step"] == 3]
    assert len(daily) > 300 and len(third) > 300
    assert daily["pair"].mean() == pytest.approx(0.9, abs=0.01)
    assert third["pair"].mean() == pytest.approx(0.2, abs=0.02)
    # the spread of a 1-night field's pair share: the Beta's (0.9 x 0.1 / 401) and the binomial noise
    expected = np.sqrt(0.9 * 0.1 / 401 + np.mean(0.9 * 0.1 / daily["nights"]))
    assert daily["pair"].std() == pytest.approx(expected, rel=0.15)


def test_each_field_has_its_own_grid_period():
    from tl.surveys import _grid_nights

    first = np.random.default_rng(5).integers(58200, 59000, 20000)
    on_grid = _grid_nights(ZTF.grid_days, first, 60, np.random.default_rng(6))  # a lattice (no jitter)
    spacing = [np.unique(np.diff(np.flatnonzero(row))) for row in on_grid[:2000]]
    assert all(len(days) == 1 for days in spacing)  # every field strictly periodic
    period = np.array([days[0] for days in spacing])
    for days, share in ZTF.grid_days.items():
        assert np.mean(period == days) == pytest.approx(share, abs=0.03)
    first_on = np.argmax(on_grid, axis=1)  # the phase: uniform over the period
    assert np.mean(first_on[:2000][period == 3] == 0) == pytest.approx(1 / 3, abs=0.05)
    # with jitter each step is the period, one night less or more (at least 1): a renewal process
    jittered = _grid_nights({3: 1.0}, first, 400, np.random.default_rng(7), ZTF.grid_jitter)
    row, night = np.nonzero(jittered)
    steps = np.diff(night)[np.diff(row) == 0]
    assert set(np.unique(steps)) == {2, 3, 4}
    assert np.mean(steps == 3) == pytest.approx(1 - ZTF.grid_jitter, abs=0.01)
    assert np.mean(steps == 2) == pytest.approx(np.mean(steps == 4), abs=0.01)
    daily = _grid_nights({1: 1.0}, first[:500], 200, np.random.default_rng(8), ZTF.grid_jitter)
    daily_steps = np.diff(np.nonzero(daily)[1])[np.diff(np.nonzero(daily)[0]) == 0]
    assert set(np.unique(daily_steps)) == {1, 2}
    # durations lose the lattice: nights from the first grid night, modulo 3, nearly uniform
    span = np.array([n.max() - n.min() for n in map(np.flatnonzero, jittered[:3000])])
    assert np.bincount(span % 3, minlength=3).min() / len(span) > 0.28


def _grid_visits_by_hand(taken_row, period, first_due, steps):
    """The rescheduled grid of one field, night by night: the first night >= due that is taken is a
    visit; the next is due steps[visit night] nights later."""
    visits, due = [], first_due
    for night, open_night in enumerate(taken_row):
        if open_night and night >= due:
            visits.append(night)
            due = night + steps[night]
    return visits


def test_rescheduled_grid_equals_a_night_by_night_loop():
    import dataclasses

    from tl.surveys import _scheduled_grid

    survey = dataclasses.replace(ZTF, grid_days={3: 0.5, 2: 0.5}, grid_jitter=0.3)
    rng = np.random.default_rng(11)
    taken = rng.random((300, 90)) < 0.6  # open and chosen nights
    visits = _scheduled_grid(survey, taken, np.random.default_rng(12))
    # the same draws, in _scheduled_grid's order: periods, then step jitter, then the phase
    replay = np.random.default_rng(12)
    period = np.array([3, 2])[replay.choice(2, 300, p=[0.5, 0.5])]
    uniform = replay.random((90, 300), dtype=np.float32)
    steps = np.maximum(period[None, :] - (uniform < 0.15) + (uniform > 0.85), 1)
    first_due = replay.integers(0, period)
    for row in range(300):
        expected = _grid_visits_by_hand(taken[row], period[row], first_due[row], steps[:, row])
        assert np.flatnonzero(visits[row]).tolist() == expected
    # a lost night delays the next visit, it does not skip a period: with every night open and no
    # jitter, a field visits exactly every period; one closed night moves the rest by one night
    plain = dataclasses.replace(ZTF, grid_days={3: 1.0}, grid_jitter=0.0)
    every = np.ones((1, 30), dtype=bool)
    a = np.flatnonzero(_scheduled_grid(plain, every, np.random.default_rng(1))[0])
    assert np.all(np.diff(a) == 3)
    lost = every.copy()
    lost[0, a[1]] = False  # the second visit's night
    b = np.flatnonzero(_scheduled_grid(plain, lost, np.random.default_rng(1))[0])
    assert b.tolist() == [a[0]] + [n + 1 for n in a[1:] if n + 1 < 30]


def test_coverage_completeness_against_hand_computed_values():
    late_days, late_kept = bts_selection.LATE_DISCOVERY
    loss_days, loss_kept = bts_selection.EARLY_LOSS
    rise = [0.0, late_days - 0.01, late_days, 10.0, 0.5]
    fade = [30.0, 30.0, 30.0, loss_days - 0.01, 1.0]
    np.testing.assert_allclose(bts_selection.coverage_completeness(rise, fade),
                               [late_kept, late_kept, 1.0, loss_kept, late_kept * loss_kept])
    # the magnitude completeness times the coverage one, against one uniform draw each
    kept = bts_selection.selected([18.0, 18.0, 18.625, 18.625], [0.45, 0.55, 0.35, 0.45],
                                  [1.0, 1.0, 1.0, 1.0], [30.0, 30.0, 30.0, 30.0])
    assert kept.tolist() == [True, False, True, False]  # P = 0.5, 0.5, 0.4, 0.4


def test_observed_peak_rise_and_fade_by_hand():
    from tl.simulate import _observed_peak

    # object 0: detections at 10, 12, 20 (brightest at 12); object 2: one detection; object 1: none
    detections = pd.DataFrame({"obj": [0, 0, 0, 2], "mjd": [10.0, 12.0, 20.0, 5.0], "flux": [1.0, 3.0, 2.0, 7.0]})
    rise, fade, brightest = _observed_peak(detections, 3)
    np.testing.assert_allclose(rise, [2.0, 0.0, 0.0])
    np.testing.assert_allclose(fade, [8.0, 0.0, 0.0])
    np.testing.assert_allclose(brightest, [3.0, 0.0, 7.0])
    empty = _observed_peak(detections.iloc[:0], 2)
    assert all(np.all(values == 0) for values in empty)


def test_sn_ia_has_no_flux_before_first_light():
    model = lc.MODELS["SN Ia"]
    params = {"rise_days": np.full(3, 12.0), "fade_days": np.full(3, 13.0), "plateau_end_days": np.full(3, np.inf),
              "temperature_peak_k": np.full(3, 11000.0)}
    first_light = model.first_light_rises * 12.0
    t = np.array([-first_light - 0.01, -first_light + 0.01, 0.0])
    magnitude = lc.changing_magnitude(model, params, t, np.full(3, 600.0))
    assert magnitude[0] > 70  # s(t) = 0: the 1e-30 floor, never detected
    shape = lc.luminosity_shape(t[1], 12.0, 13.0, model.tail_fraction, model.tail_half_life_days, np.inf,
                                model.rise_power, model.peak_rounding)
    assert magnitude[1] - magnitude[2] < -2.5 * np.log10(shape) + 1.0  # just after it: the shape's flux


def test_bts_like_cadence_and_snr_match_the_bts_train_split():
    # targets: the BTS train split (`tl ingest bts`, split == train; benchmarks/validate_simulator.py
    # summaries): objects whose median gap between detections is ~1 / ~2 / ~3 days (+-0.25 d):
    # 23 / 22 / 35%; median share of same-night consecutive detections 0.36; detections with
    # flux / flux_err < 5: 10%, median 10
    data = simulate("ztf", 800, seed=5, bts_like=True, alerts_only=True,
                    class_mix="SN Ia=1,SN II=1,SN Ibc=1,SLSN=1")
    obs = data.observations.sort_values(["object_id", "mjd"])
    gaps = obs.groupby("object_id")["mjd"].diff()
    median_gap = gaps.groupby(obs["object_id"]).median()
    for days, target in ((1, 0.23), (2, 0.22), (3, 0.35)):
        assert np.mean(np.abs(median_gap - days) < 0.25) == pytest.approx(target, abs=0.06)
    same_night = (gaps < 0.5).groupby(obs["object_id"]).sum() / (obs.groupby("object_id").size() - 1)
    assert same_night.median() == pytest.approx(0.36, abs=0.04)
    snr = obs["flux"] / obs["flux_err"]
    assert np.mean(snr < 5) == pytest.approx(0.10, abs=0.04)
    assert snr.median() == pytest.approx(10.0, abs=1.0)


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


def test_late_component_keeps_the_half_maximum_and_is_the_light_curve_late():
    rise, fade, tail, tail_half_life, late, late_half_life = 11.0, 14.4, 0.21, 18.2, 0.05, 45.0
    shape = lc.luminosity_shape(np.array([-rise, 0.0, fade]), rise, fade, tail, tail_half_life, np.inf, 3.0, 0.5,
                                late, late_half_life)
    np.testing.assert_allclose(shape, [0.5, 1.0, 0.5])
    # by +300 d the fast and the 18 d components are gone: 0.21 * 2^(-300 / 18.2) = 2e-6 against
    # 0.05 * 2^(-300 / 45) = 4.9e-4
    np.testing.assert_allclose(lc.luminosity_shape(300.0, rise, fade, tail, tail_half_life, np.inf, 3.0, 0.5,
                                                   late, late_half_life), 0.05 * 2 ** (-300 / 45), rtol=0.01)
    # +60 -> +100 d: 0.031 mag/d with both slow components (the SN Ia model's comment), 0.050 with one
    def decline(late_fraction):
        s60, s100 = lc.luminosity_shape(np.array([60.0, 100.0]), rise, fade, tail, tail_half_life, np.inf, 3.0, 0.5,
                                        late_fraction, late_half_life)
        return 2.5 * np.log10(s60 / s100) / 40
    assert decline(late) == pytest.approx(0.031, abs=0.001)
    assert decline(0.0) == pytest.approx(0.050, abs=0.001)


def test_steep_rise_and_rounded_peak_keep_the_half_maximum_times():
    rise, fade, tail, tail_half_life = 12.5, 13.0, 0.25, 35.0
    t = np.array([-rise, 0.0, fade])
    for power, rounding in ((2.0, 0.0), (3.0, 0.0), (3.0, 0.5)):
        shape = lc.luminosity_shape(t, rise, fade, tail, tail_half_life, np.inf, power, rounding)
        np.testing.assert_allclose(shape, [0.5, 1.0, 0.5])
    # a steeper rise is fainter before half maximum, brighter after it
    early, late = np.array([-2 * rise]), np.array([-0.5 * rise])
    for when, fainter in ((early, True), (late, False)):
        gaussian = lc.luminosity_shape(when, rise, fade, tail, tail_half_life, np.inf, 2.0)
        steep = lc.luminosity_shape(when, rise, fade, tail, tail_half_life, np.inf, 3.0)
        assert (steep < gaussian) == fainter
    # no cusp: with rounding the decline starts flat (slope ~ 0 one day after peak), without it does not
    day = np.array([0.0, 1.0])
    cusp = lc.luminosity_shape(day, rise, fade, tail, tail_half_life, np.inf, 3.0, 0.0)
    flat = lc.luminosity_shape(day, rise, fade, tail, tail_half_life, np.inf, 3.0, 0.5)
    assert 1 - flat[1] < 0.25 * (1 - cusp[1])


def test_catalogue_redshift_is_rounded_as_bts_quotes_it():
    class Draws:  # a generator whose uniform draws are given, one array per call
        def __init__(self, *values):
            self.values = [np.asarray(v) for v in values]

        def random(self, shape):
            return self.values.pop(0).reshape(shape)

    # SN Ia at z = 0.0123456: P(host) = 1 / (1 + exp(-(0.86 - 27.9 z))) = 0.626; host redshifts have
    # 5 decimals below 0.19 / 0.29 = 0.655 of the second draw, else 4; template ones 3 below
    # 0.38 / 0.71 = 0.535, else 2
    z = np.full(4, 0.0123456)
    host_draws, finer_draws = [0.1, 0.9, 0.1, 0.9], [0.1, 0.9, 0.9, 0.1]
    rounded = bts_selection.catalogue_redshift(z, "SN Ia", Draws(host_draws, finer_draws))
    np.testing.assert_allclose(rounded, [0.01235, 0.01, 0.0123, 0.012])
    assert 0.62 < 1 / (1 + math.exp(-(0.86 - 27.9 * 0.0123456))) < 0.63
    # a class without shares: 3 decimals
    np.testing.assert_allclose(bts_selection.catalogue_redshift([0.0426], "TDE", Draws()), [0.043])
    # the share of host (>= 4 decimal) redshifts falls with z as the logistic says
    rng = np.random.default_rng(0)
    for redshift in (0.0123456, 0.1123456):
        quoted = bts_selection.catalogue_redshift(np.full(20000, redshift), "SN II", rng)
        expected = 1 / (1 + math.exp(-(0.98 - 27.9 * redshift)))
        assert np.mean(np.abs(quoted - np.round(quoted, 3)) > 1e-12) == pytest.approx(expected, abs=0.015)
    for redshift in (0.0523456, 0.3123456):  # SLSN: the same share of host redshifts at every z
        quoted = bts_selection.catalogue_redshift(np.full(20000, redshift), "SLSN", rng)
        assert np.mean(np.abs(quoted - np.round(quoted, 3)) > 1e-12) == pytest.approx(0.34, abs=0.015)
    # bts-like objects carry catalogue redshifts in the BTS shares of decimals; others the exact one
    data = simulate("ztf", 400, seed=6, bts_like=True, alerts_only=True, class_mix="SN Ia=1")
    decimals = np.array([next(k for k in range(12) if abs(round(v, k) - v) < 1e-12) for v in data.objects["redshift"]])
    assert decimals.max() <= 5
    assert np.mean(decimals <= 2) == pytest.approx(0.33 + 0.1 * 0.38, abs=0.07)  # 1 in 10 of 3 end in 0
    plain = simulate("ztf", 40, seed=6, class_mix="SN Ia=1")
    assert np.mean([abs(round(v, 5) - v) > 1e-12 for v in plain.objects["redshift"]]) > 0.9


# ---------------------------------------------------------------- upper limits (alert packets)

def test_alert_stream_keeps_the_non_detections_of_the_30_days_before_a_detection():
    from tl.simulate import UPPER_LIMIT_DAYS, alert_stream

    assert UPPER_LIMIT_DAYS == 30.0
    # object 0: detections at 10 and 50; object 1: one detection at 0
    rows = [(0, -25.0, False), (0, -15.0, False), (0, 10.0, True), (0, 15.0, False), (0, 30.0, False),
            (0, 50.0, True), (0, 60.0, False), (1, -31.0, False), (1, -30.0, False), (1, 0.0, True)]
    frame = pd.DataFrame(rows, columns=["row", "mjd", "detected"]).assign(
        band=0, flux=np.arange(10.0) + 100, flux_err=5.0, limit_err=np.arange(10.0) + 1)
    kept = alert_stream(frame, upper_limits=True)
    # -25 and 15 are 35 d before the next detection; 60 follows the last one; -31 is 31 d before
    assert kept["mjd"].tolist() == [-15.0, 10.0, 30.0, 50.0, -30.0, 0.0]
    limits = kept[~kept["detected"]]
    assert (limits["flux"] == 0).all() and (limits["flux_err"] == limits["limit_err"]).all()
    detections = kept[kept["detected"]]
    assert detections["flux"].tolist() == [102.0, 105.0, 109.0] and (detections["flux_err"] == 5.0).all()
    assert alert_stream(frame, upper_limits=False)["mjd"].tolist() == [10.0, 50.0, 0.0]


def test_upper_limits_add_limits_at_the_survey_depth_and_change_no_detection():
    from tl.errors import TLError
    from tl.surveys import magnitude_to_flux, moon_depth_loss

    plain = simulate("ztf", 300, seed=4, bts_like=True, alerts_only=True)
    with_limits = simulate("ztf", 300, seed=4, bts_like=True, alerts_only=True, upper_limits=True)
    observations = with_limits.observations
    detections = observations[observations["detected"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(detections, plain.observations.reset_index(drop=True))
    pd.testing.assert_frame_equal(with_limits.objects, plain.objects)
    limits = observations[~observations["detected"]]
    assert len(limits) > 0.2 * len(detections) and (limits["flux"] == 0).all()
    for band in ("ztf_g", "ztf_r"):  # 5 x flux_err is the visit's 5-sigma limit: around the band's
        in_band = limits[limits["band"] == band]  # dark-sky depth less that night's moonlight
        depth = 23.9 - 2.5 * np.log10(5 * in_band["flux_err"])
        moonlight = moon_depth_loss(ZTF.moon_full_loss[band], np.floor(in_band["mjd"]))
        assert np.median(depth + moonlight) == pytest.approx(ZTF.depth[band], abs=0.25)  # shallow nights miss more
    next_detection = detections.groupby("object_id")["mjd"].apply(np.sort)
    for object_id, mjd in limits[["object_id", "mjd"]].itertuples(index=False):
        later = next_detection[object_id][next_detection[object_id] > mjd]
        assert len(later) and later[0] - mjd <= 30.0
    assert with_limits.meta["settings"]["upper_limits"] is True
    assert magnitude_to_flux(ZTF.depth["ztf_r"]) > 0
    with pytest.raises(TLError, match="--upper-limits applies to an alert stream: add --alerts-only"):
        simulate("ztf", 10, seed=0, upper_limits=True)


def test_width_luminosity_slope_and_total_spread_of_the_peak_magnitude():
    # M_peak = mean + slope ln(fade / median) + residual: a least-squares fit recovers the slope,
    # the sample spread stays the class's sigma, and without a slope M and fade are uncorrelated
    n, slope = 200000, -0.74
    model = dataclasses.replace(lc.MODELS["SN Ia"], peak_magnitude_per_ln_fade=slope)
    lc.MODELS["test-phillips"] = model
    try:
        params = lc.draw_parameters("test-phillips", n, np.random.default_rng(1))
    finally:
        del lc.MODELS["test-phillips"]
    fitted, _ = np.polyfit(np.log(params["fade_days"]), params["peak_magnitude"], 1)
    assert fitted == pytest.approx(slope, abs=0.02)
    assert params["peak_magnitude"].mean() == pytest.approx(model.peak_magnitude[0], abs=0.005)
    assert params["peak_magnitude"].std() == pytest.approx(model.peak_magnitude[1], rel=0.01)
    # the correlation of M and ln(fade) is slope x sigma_ln(fade) / sigma_M: SN Ia's own (v6) slope, and none
    for slope in (lc.MODELS["SN Ia"].peak_magnitude_per_ln_fade, 0.0):
        lc.MODELS["test-phillips"] = dataclasses.replace(model, peak_magnitude_per_ln_fade=slope)
        try:
            drawn = lc.draw_parameters("test-phillips", n, np.random.default_rng(1))
        finally:
            del lc.MODELS["test-phillips"]
        expected = slope * model.fade_days[1] / model.peak_magnitude[1]
        correlation = np.corrcoef(np.log(drawn["fade_days"]), drawn["peak_magnitude"])[0, 1]
        assert correlation == pytest.approx(expected, abs=0.01)


def test_temperature_cooling_from_first_light_by_hand():
    model = dataclasses.replace(lc.MODELS["SN II"], cools_from_first_light=True, temperature_late_k=6000.0,
                                cooling_days=10.0, first_light_rises=1.5)
    rise, hot = 8.0, 20000.0  # first light 12 days before peak
    t = np.array([-30.0, -12.0, -2.0, 0.0, 50.0])
    expected = 6000.0 + 14000.0 * np.exp(-np.array([0.0, 0.0, 10.0, 12.0, 62.0]) / 10.0)
    np.testing.assert_allclose(lc.temperature(t, model, hot, rise), expected)
    coolest, hottest = lc.temperature_range(model, np.array([hot]))
    grid = lc.temperature(np.linspace(-40, 300, 500), model, hot, rise)
    assert coolest[0] <= grid.min() and grid.max() <= hottest[0]
