"""The simulator: determinism, the canonical contract, physics against astropy, selection, noise."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from astropy.cosmology import Planck18
from ray_fixture import ray_session  # noqa: F401  (a fixture: one local Ray for the slow tests)

from tl import lightcurve_models as lc
from tl.cli import main
from tl.data import read_dataset, validate, write_dataset
from tl.errors import TLError
from tl.bts_selection import FAINTEST_MAGNITUDE
from tl.simulate import (JOB_OBJECTS, MIN_DETECTIONS, REASON_PEAK, class_quotas,
                         observed_magnitude, parse_class_mix, shard_jobs, simulate)
from tl.surveys import LSST, SURVEY_MODELS, ZTF, band_moon_loss, flux_error, schedule_visits, survey_model
from tl.taxonomy import CLASSES


@pytest.fixture(scope="module")
def ztf_small():
    return simulate("ztf", 49, seed=11)


@pytest.fixture(scope="module")
def ztf_bts():
    return simulate("ztf", 49, seed=12, bts_like=True)


def test_same_seed_same_data_other_seed_other_data(ztf_small):
    again = simulate("ztf", 49, seed=11)
    pd.testing.assert_frame_equal(ztf_small.objects, again.objects)
    pd.testing.assert_frame_equal(ztf_small.observations, again.observations)
    other = simulate("ztf", 49, seed=13)
    assert not np.allclose(np.sort(other.objects["redshift"]), np.sort(ztf_small.objects["redshift"]))


def test_sharded_output_is_reproducible_and_complete():
    first = simulate("lsst", 28, seed=5, shards=2)
    second = simulate("lsst", 28, seed=5, shards=2)
    pd.testing.assert_frame_equal(first.observations, second.observations)
    assert first.objects["object_id"].is_unique and len(first.objects) == 28
    assert first.objects["label"].value_counts().to_dict() == class_quotas(28, parse_class_mix(None))


def test_round_trip_through_the_canonical_format(ztf_small, tmp_path):
    written = write_dataset(ztf_small, str(tmp_path / "sim"), **ztf_small.meta)
    back = read_dataset(str(tmp_path / "sim"))
    expected = validate(ztf_small)
    pd.testing.assert_frame_equal(back.objects, expected.objects)
    pd.testing.assert_frame_equal(back.observations, expected.observations)
    assert back.meta["source"] == "simulation" and back.meta["n_objects"] == 49
    base = back.objects["raw_label"] == back.objects["label"]  # else a sub-type of the class
    assert (base | back.objects["raw_label"].isin(list(lc.SUBTYPE_MODELS))).all()
    assert set(back.objects["label"]) == set(CLASSES)  # balanced default: every class present
    # nothing dropped silently: generated = selected + every dropped reason
    assert sum(written.meta["generated"].values()) == 49 + sum(written.meta["dropped"].values())


def test_every_object_has_enough_detections_and_flag_is_the_alert_threshold(ztf_small, monkeypatch):
    obs = ztf_small.observations
    detections = obs[obs["detected"]].groupby("object_id").size()
    assert detections.reindex(ztf_small.objects["object_id"], fill_value=0).min() >= MIN_DETECTIONS
    # the flag is the threshold on the noise model's S/N: exactly flux / flux_err where the
    # reported error is that model's (ZTF's alerts report a different one: tests/test_simulate_v2.py)
    monkeypatch.setitem(SURVEY_MODELS, "ztf", dataclasses.replace(ZTF, reported_error_factor=(1.0, 0.0)))
    plain = simulate("ztf", 49, seed=11).observations
    assert (plain["detected"] == (plain["flux"] / plain["flux_err"] >= ZTF.detection_snr)).all()
    lsst = simulate("lsst", 14, seed=11).observations
    assert (lsst["detected"] == (lsst["flux"] / lsst["flux_err"] >= LSST.detection_snr)).all()


def _sn_ia(n=1):
    return {"peak_magnitude": np.full(n, -19.3), "rise_days": np.full(n, 10.0),
            "fade_days": np.full(n, 15.0), "temperature_peak_k": np.full(n, 11000.0),
            "plateau_end_days": np.full(n, np.inf), "host_ebv": np.zeros(n)}


def test_farther_sn_ia_is_fainter_by_the_distance_modulus():
    params, rest_wavelength = _sn_ia(), 500.0
    near, far = 0.02, 0.2
    # the same rest wavelength and rest time seen at two redshifts
    m_near = observed_magnitude("SN Ia", params, np.array([near]), np.array([0.0]),
                                np.array([rest_wavelength * (1 + near)]))
    m_far = observed_magnitude("SN Ia", params, np.array([far]), np.array([0.0]),
                               np.array([rest_wavelength * (1 + far)]))
    expected = (Planck18.distmod(far).value - Planck18.distmod(near).value
                - 2.5 * np.log10((1 + far) / (1 + near)))  # f_nu bandwidth term
    assert m_far[0] - m_near[0] == pytest.approx(expected, abs=0.01)
    # and in a fixed band (ZTF r) it is fainter by at least the distance-modulus difference / 2
    r_near = observed_magnitude("SN Ia", params, np.array([near]), np.array([0.0]), np.array([633.9]))
    r_far = observed_magnitude("SN Ia", params, np.array([far]), np.array([0.0]), np.array([633.9]))
    assert r_far[0] - r_near[0] > 0.5 * (Planck18.distmod(far).value - Planck18.distmod(near).value)


def _half_max_width(times, flux):
    above = times[flux >= flux.max() / 2]
    return above.max() - above.min()


def test_light_curve_is_stretched_by_one_plus_z():
    times = np.linspace(-80, 200, 28001)
    widths = {}
    for z in (0.01, 0.3):
        params = {k: np.repeat(v, len(times)) for k, v in _sn_ia().items()}
        magnitude = observed_magnitude("SN Ia", params, np.full(len(times), z), times,
                                       np.full(len(times), 550.0 * (1 + z)))
        widths[z] = _half_max_width(times, 10 ** (-0.4 * magnitude))
    assert widths[0.3] / widths[0.01] == pytest.approx(1.3 / 1.01, rel=2e-3)


def test_luminosity_shape_has_the_drawn_half_maximum_times():
    rise, fade = 12.0, 20.0
    shape = lc.luminosity_shape(np.array([-rise, 0.0, fade]), rise, fade, 0.3, 60.0, np.inf)
    np.testing.assert_allclose(shape, [0.5, 1.0, 0.5], rtol=1e-9)


def test_bts_like_enforces_the_peak_cut(ztf_bts):
    obs = ztf_bts.observations
    assert set(obs["band"]) <= {"ztf_g", "ztf_r"}  # public alert stream: g and R only
    limit_flux = 10 ** (-0.4 * (FAINTEST_MAGNITUDE - 23.9))  # nothing past 19 mag
    brightest = obs[obs["detected"]].groupby("object_id")["flux"].max()
    assert len(brightest) == 49 and (brightest > limit_flux).all()
    assert any(reason.startswith(REASON_PEAK) for reason in ztf_bts.meta["dropped"])


def test_alerts_only_keeps_exactly_the_detections(ztf_bts):
    alerts = simulate("ztf", 49, seed=12, bts_like=True, alerts_only=True)
    assert alerts.observations["detected"].all()
    full = ztf_bts.observations
    pd.testing.assert_frame_equal(alerts.observations.reset_index(drop=True),
                                  full[full["detected"]].reset_index(drop=True))


def test_flux_error_of_a_faint_source_is_a_fifth_of_the_limiting_flux():
    for model in (ZTF, LSST):
        limit = np.array([19.0, 21.0, 24.5])
        np.testing.assert_allclose(flux_error(0.0, limit, model), 10 ** (-0.4 * (limit - 23.9)) / 5)
        assert (flux_error(1000.0, limit, model) > flux_error(0.0, limit, model)).all()


def test_simulated_errors_match_survey_depths():
    # the visits' 5-sigma limits, moonlight added back, scatter around each band's dark-sky depth,
    # night to night plus visit to visit; a source-free measurement's error is then a fifth of that
    # limiting flux
    rng = np.random.default_rng(3)
    first = rng.integers(58200, 59000, 300)
    _, mjd, band, limit = schedule_visits(ZTF, ZTF.bands, first, np.full(300, 200), rng)
    moonlight = band_moon_loss(ZTF, ZTF.bands, band, np.floor(mjd))
    for k, name in enumerate(ZTF.bands):
        depths = (limit + moonlight)[band == k]
        assert len(depths) > 300
        assert np.median(depths) == pytest.approx(ZTF.depth[name], abs=0.05)
        assert depths.std() == pytest.approx(np.hypot(ZTF.depth_scatter, 0.1), abs=0.04)
    implied = 23.9 - 2.5 * np.log10(5 * flux_error(0.0, limit, ZTF))
    np.testing.assert_allclose(implied, limit)


def test_milky_way_extinction_matches_cardelli_reference_values():
    # CCM89 table 3, R_V = 3.1: A_lambda / A_V of U B V R I J
    wavelengths = np.array([365.0, 440.0, 550.0, 700.0, 900.0, 1250.0])
    np.testing.assert_allclose(lc.cardelli_extinction_ratio(wavelengths),
                               [1.569, 1.337, 1.000, 0.751, 0.479, 0.282], atol=0.015)


def test_class_mix_parsing_and_quotas():
    mix = parse_class_mix("SN Ia=3,SN II=1")
    assert mix == {"SN Ia": 0.75, "SN II": 0.25}
    assert class_quotas(10, parse_class_mix(None)) == dict.fromkeys(CLASSES, 1) | {"SN Ia": 2, "SN II": 2, "SN Ibc": 2}
    with pytest.raises(TLError, match="unknown class"):
        parse_class_mix("SN IIx=1")


def test_unknown_survey_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(TLError, match="unknown survey 'euclid'"):
        survey_model("euclid")
    status = main(["simulate", "--survey", "euclid", "--n", "5", "--out", str(tmp_path / "x")])
    assert status == 2 and "unknown survey 'euclid'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_data_set_and_reports_drops(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["simulate", "--survey", "ztf", "--n", "14", "--seed", "2", "--out", str(out),
                 "--bts-like"]) == 0
    printed = capsys.readouterr().out
    back = read_dataset(str(out))
    assert len(back.objects) == 14 and back.meta["settings"]["bts_like"] is True
    for reason, count in back.meta["dropped"].items():
        assert f"{reason}: {count}" in printed


def test_single_process_path_does_not_import_ray():
    code = ("import sys; from tl.simulate import simulate; simulate('ztf', 7, seed=0); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_worker_processes_give_the_in_process_output():
    local = simulate("lsst", 60, seed=6, shards=2)
    pooled = simulate("lsst", 60, seed=6, shards=2, workers=2)
    pd.testing.assert_frame_equal(local.objects, pooled.objects)
    pd.testing.assert_frame_equal(local.observations, pooled.observations)
    assert local.meta == pooled.meta


def test_large_quotas_are_split_into_jobs_with_their_own_seeds():
    jobs = shard_jobs({"SN Ia": 2 * JOB_OBJECTS + 1, "KN": 3}, seed=1, shard=0)
    sizes = [quota for _, model, quota, _ in jobs if model == "SN Ia"]
    assert len(sizes) == 3 and sum(sizes) == 2 * JOB_OBJECTS + 1 and max(sizes) - min(sizes) <= 1
    assert [(model, quota) for _, model, quota, _ in jobs][-1] == ("KN", 3)
    states = {tuple(job[3].generate_state(2)) for job in jobs}
    assert len(states) == len(jobs)


@pytest.mark.slow
def test_ray_shards_equal_in_process_shards(ray_session):
    local = simulate("ztf", 21, seed=4, shards=3)
    on_ray = simulate("ztf", 21, seed=4, shards=3, use_ray=True)
    pd.testing.assert_frame_equal(local.objects, on_ray.objects)
    pd.testing.assert_frame_equal(local.observations, on_ray.observations)


def test_objects_skipped_before_observing_would_never_have_been_selected(monkeypatch):
    # observe everything, and check no selected object is one the shortcut would have skipped
    import tl.simulate as simulate_module

    could_pass, skipped = simulate_module._could_pass, {}

    def observe_all(*args):
        skipped["mask"] = could_pass(*args) != 0
        return np.zeros(len(skipped["mask"]), dtype=int)

    monkeypatch.setattr(simulate_module, "_could_pass", observe_all)
    for label, survey, bts_like in (("SN Ia", ZTF, True), ("SN II", ZTF, False), ("KN", ZTF, False),
                                    ("AGN", ZTF, True), ("SN Ibc", LSST, False), ("KN", LSST, False)):
        bands = survey.bands[:2] if bts_like else survey.bands
        _, _, reason = simulate_module.simulate_batch(label, 2000, survey, bands, np.random.default_rng(0), bts_like)
        assert skipped["mask"].mean() > 0.2  # the shortcut matters
        assert not np.any((reason == 0) & skipped["mask"])
    # deeper fields (--vary-depth) widen the margin, so fewer are skipped (16% of these with v6's 0.6 mag
    # depth scatter): still no selected object was skipped
    from tl.cadence import Sampling

    _, _, reason = simulate_module.simulate_batch("SN II", 3000, ZTF, ZTF.bands, np.random.default_rng(1), False,
                                                  Sampling(vary_depth=0.6))
    assert skipped["mask"].mean() > 0.1 and not np.any((reason == 0) & skipped["mask"])
