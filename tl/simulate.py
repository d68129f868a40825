"""`tl simulate`: physically motivated light curves of a survey, as a canonical data set.

Per object: a class model (tl/lightcurve_models.py) at a redshift drawn from the comoving volume
(dV/dz / (1+z) times a rate evolution, Planck18 cosmology) up to where the survey can see the
class; observed through the survey model (tl/surveys.py: nights, bands, depths, noise) with time
dilation, redshifted band wavelengths (the rest-frame SED at lambda / (1+z)), distance modulus
and Milky-Way extinction (Cardelli et al. 1989, R_V = 3.1). Kept only if selected like the survey
would: >= 2 detections (flux / err >= the survey's detection_snr: 5, or ZTF's alert threshold);
with --bts-like also the BTS selection on the observed g/r peak (tl/bts_selection.py: complete to
18.5 mag, a falling completeness to 19 mag). `n` counts kept objects; every generated object that
was not selected is counted by reason in dataset.json["dropped"]. Objects that provably (to
< 1e-12 for AGN variability) or by a margin (the sampled model peak against faint_limit) cannot be
selected are rejected before they are observed, which changes no selected object.

Work is split into `shards` (per-shard seeds derived from `seed`), each into jobs of at most
JOB_OBJECTS objects of one light-curve model with their own seeds; shards run in this process
(their jobs in --workers processes, default 1) or as Ray tasks with --ray/--address. The output depends only
on (seed, shards, settings).
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tl import bts_selection
from tl import lightcurve_models as lc
from tl.cadence import Sampling, load_library, sampled_visits
from tl.config import MAX_SEED
from tl.data import Dataset, assign_splits, write_dataset
from tl.errors import TLError
from tl.paths import check_output
from tl.surveys import (AB_ZERO_POINT, BAND_BY_NAME, SurveyModel, flux_error_at, magnitude_to_flux,
                        schedule_visits, survey_model)
from tl.taxonomy import CLASSES

BTS_PEAK_MAGNITUDE = bts_selection.COMPLETE_MAGNITUDE  # complete below; fainter objects to 19 mag
MIN_DETECTIONS = 2
MEAN_MWEBV = 0.05  # E(B-V) ~ exponential; BTS fields: median A_V 0.11 -> mean E(B-V) ~ 0.05
REDSHIFT_MIN, REDSHIFT_CAP = 0.002, 3.0
# Observed fractions of the BTS catalogue (2021-09-22) per canonical class, for --class-mix bts.
BTS_CLASS_MIX = {"SN Ia": 0.74, "SN II": 0.19, "SN Ibc": 0.057, "SLSN": 0.016, "TDE": 0.004,
                 "AGN": 0.002, "KN": 0.0005}
REASON_DETECTIONS = f"not selected: fewer than {MIN_DETECTIONS} detections"
REASON_PEAK = "not selected: not classified by BTS at its observed g/r peak (bts-like)"
REASON_FAINT = "not selected: model peak too faint to be detected (not observed)"
REASON_SEASON = "not selected: out of season whenever bright enough to be detected (not observed)"
# Jobs of at most this many selected objects: enough to amortise a job's start, small enough to
# share the work between processes evenly (the output depends on it: keep it fixed).
JOB_OBJECTS = 2500
REASONS = {1: REASON_DETECTIONS, 2: REASON_PEAK, 3: REASON_FAINT, 4: REASON_SEASON}  # by reason code
# The DRW offset is N(0, sigma^2) at every visit: P(beyond 8 sigma at any of <= 1000 visits) < 1e-12
AGN_VARIABILITY_SIGMAS = 8.0
# A ZTF alert packet carries the photometry of the 30 days before it, non-detections with their
# 5-sigma limit (prv_candidates, diffmaglim; Patterson et al. 2019, PASP 131, 018001): a broker
# holds every non-detection within this of a later detection.
UPPER_LIMIT_DAYS = 30.0
MAX_VARY_DEPTH = 2.0  # mag: --vary-depth
MAX_VARY_CADENCE = 0.9  # --vary-cadence: a field keeps at least a tenth of its nights


def parse_class_mix(text: str | None) -> dict[str, float]:
    """'balanced' (default), 'bts', or 'SN Ia=0.5,SN II=0.3,...' -> normalised class shares."""
    if text in (None, "", "balanced"):
        return {name: 1.0 / len(CLASSES) for name in CLASSES}
    if text == "bts":
        mix = dict(BTS_CLASS_MIX)
    else:
        mix = {}
        for item in text.split(","):
            name, _, share = item.partition("=")
            name = name.strip()
            if name not in CLASSES:
                raise TLError(f"--class-mix: unknown class {name!r}: use {', '.join(CLASSES)}")
            try:
                mix[name] = float(share)
            except ValueError:
                raise TLError(f"--class-mix: share of {name!r} is not a number ({share!r})") from None
    if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise TLError("--class-mix: shares must be >= 0 and not all zero")
    total = sum(mix.values())
    return {name: mix[name] / total for name in CLASSES if mix.get(name, 0) > 0}


def class_quotas(n: int, mix: dict[str, float]) -> dict[str, int]:
    """Integer objects per class summing to n (largest remainders, ties to the earlier class in CLASSES)."""
    counts = largest_remainders(n, {name: mix[name] for name in sorted(mix, key=CLASSES.index)})
    return {name: counts[name] for name in mix}


def largest_remainders(n: int, mix: dict[str, float]) -> dict[str, int]:
    """Integer counts summing to n in the proportions of `mix`: floors, then one more for the largest
    remainders (ties to the earlier key of `mix`)."""
    raw = {name: n * share for name, share in mix.items()}
    counts = {name: int(np.floor(v)) for name, v in raw.items()}
    for name in sorted(raw, key=lambda name: counts[name] - raw[name])[: n - sum(counts.values())]:
        counts[name] += 1
    return counts


_COSMOLOGY_GRID: list = []  # computed once per process (importing astropy takes seconds)


def cosmology_grid():
    """Planck18 on a redshift grid: z, distance modulus, dV/dz (comoving, per steradian)."""
    if not _COSMOLOGY_GRID:
        from astropy.cosmology import Planck18

        z = np.geomspace(REDSHIFT_MIN, REDSHIFT_CAP, 3000)
        install_cosmology_grid((z, Planck18.distmod(z).value, Planck18.differential_comoving_volume(z).value))
    return _COSMOLOGY_GRID[0]


def install_cosmology_grid(grid) -> None:
    """Use `grid` (another process's cosmology_grid()) in this process."""
    _COSMOLOGY_GRID[:] = [grid]


def distance_modulus(z):
    grid_z, grid_mu, _ = cosmology_grid()
    return np.interp(z, grid_z, grid_mu)


def rate_evolution(z, kind: str):
    """Volumetric rate vs z: Madau & Dickinson 2014 star formation history, or constant."""
    if kind == "constant":
        return np.ones_like(z)
    return (1 + z) ** 2.7 / (1 + ((1 + z) / 2.9) ** 5.6)


def redshift_limit(label: str, survey: SurveyModel, bts_like: bool) -> float:
    """Largest z at which a bright member of the class (mean - 2.5 sigma) could pass the cut."""
    if label == "AGN":  # only the variable part is detected: ~1 mag fainter than the mean
        mean, sigma = lc.AGN_MEAN_MAGNITUDE
        brightest = mean - 2.5 * sigma + 1.0
    else:
        mean, sigma = lc.MODELS[label].peak_magnitude
        brightest = mean - 2.5 * sigma
    limit = (bts_selection.FAINTEST_MAGNITUDE if bts_like
             else max(survey.depth.values()) + survey.depth_scatter)
    z, mu, _ = cosmology_grid()
    apparent = brightest + mu - 2.5 * np.log10(1 + z) - 0.25  # margin for K-corrections
    visible = z[apparent < limit]
    return float(visible[-1]) if len(visible) else REDSHIFT_MIN * 2


def draw_redshifts(n, z_max, kind, rng):
    """z ~ dV/dz / (1+z) * rate(z) on [REDSHIFT_MIN, z_max] (inverse CDF on the grid)."""
    z, _, dvdz = cosmology_grid()
    density = np.where(z <= z_max, dvdz / (1 + z) * rate_evolution(z, kind), 0.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(z))])
    return np.interp(rng.random(n) * cdf[-1], cdf, z)


def _observation_window(label, params, z, survey, rng):
    """(first night, n nights) of each object's observed window around its peak."""
    n = len(z)
    if label == "AGN":
        first = rng.uniform(survey.start_mjd, survey.start_mjd + survey.duration_days, n)
        return np.floor(first).astype(int), np.full(n, 365), first
    peak = rng.uniform(survey.start_mjd, survey.start_mjd + survey.duration_days, n)
    before = np.minimum((3 * params["rise_days"] + 20) * (1 + z), 300)
    after_rest = np.minimum(5 * params["fade_days"] + 60, params["plateau_end_days"] + 60)
    after = np.minimum(after_rest * (1 + z), 500)
    first = np.floor(peak - before).astype(int)
    return first, np.ceil(peak + after).astype(int) - first + 1, peak


def simulate_batch(label, size, survey, bands, rng, bts_like, sampling=None):
    """Generate `size` objects of one class; return (objects, observations, reason code per object);
    `sampling`: a tl.cadence.Sampling (real-cadence library, randomised conditions; None: the survey model's)."""
    z = draw_redshifts(size, redshift_limit(label, survey, bts_like),
                       "constant" if label == "AGN" else lc.MODELS[label].rate_evolution, rng)
    mwebv = rng.exponential(MEAN_MWEBV, size)
    if label == "AGN":
        params = lc.draw_agn_parameters(size, rng)
    else:
        params = lc.draw_parameters(label, size, rng)
    first, n_nights, t_zero = _observation_window(label, params, z, survey, rng)
    season_offset = rng.integers(0, 365, size)  # each field's season phase (surveys.observed_nights)
    window = (first, n_nights, t_zero, season_offset)
    band_wavelength = np.array([BAND_BY_NAME[b].wavelength_nm for b in bands])
    rest = band_wavelength[None, :] / (1 + z[:, None])  # (object, band) rest-frame wavelength
    mw_extinction = 3.1 * mwebv[:, None] * lc.cardelli_extinction_ratio(band_wavelength)[None, :]
    extra_depth = 3 * sampling.vary_depth if sampling else 0.0  # deeper fields see fainter peaks
    reason_unseen = _could_pass(label, params, z, rest, mw_extinction, survey, bts_like, window, extra_depth)
    visible = reason_unseen == 0
    candidates = np.flatnonzero(visible)  # only these are observed: the rest cannot be selected
    if sampling is None:
        obj, mjd, band, limit = schedule_visits(survey, bands, first[candidates], n_nights[candidates], rng,
                                                season_offset[candidates])
    else:
        obj, mjd, band, limit = sampled_visits(survey, sampling, bands, first[candidates], n_nights[candidates],
                                               rng, season_offset[candidates])
    obj = candidates[obj]
    if label == "AGN":
        true_flux = _agn_difference_flux(obj, band, mjd - t_zero[obj], params, z, mw_extinction, rest, rng)
    else:
        true_flux = magnitude_to_flux(_transient_magnitude(lc.MODELS[label], params, z, rest, mw_extinction,
                                                           candidates, obj, band, mjd - t_zero[obj]))
    flux_limit = magnitude_to_flux(limit)  # flux_error's, computed once for both calls
    flux_err = flux_error_at(true_flux, flux_limit, survey)
    flux = true_flux + flux_err * rng.standard_normal(len(true_flux))
    detected = flux / flux_err >= survey.detection_snr
    background = flux_error_at(0.0, flux_limit, survey)  # the source-free part of flux_err: the 5-sigma limit / 5
    if survey.reported_error_factor != (1.0, 0.0):
        median, sigma = survey.reported_error_factor
        factor = median * np.exp(sigma * rng.standard_normal(len(flux_err)))
        flux_err = np.sqrt(flux_err ** 2 + (factor ** 2 - 1) * background ** 2)
    observations = pd.DataFrame({"obj": obj, "mjd": mjd, "band": band, "flux": flux, "flux_err": flux_err,
                                 "detected": detected, "limit_err": background})
    reported = bts_selection.catalogue_redshift(z, lc.CANONICAL_CLASS.get(label, label), rng) if bts_like else z
    objects = pd.DataFrame({"redshift": reported, "mwebv": mwebv})
    reason = _selection(observations, size, bands, bts_like, rng)
    reason[~visible] = reason_unseen[~visible]
    return objects, observations, reason


def faint_limit(survey: SurveyModel, bts_like: bool, extra_depth: float = 0.0) -> float:
    """A model peak fainter than this (AB mag) cannot be selected: 0.5 mag beyond BTS's faintest,
    or beyond a deep visit (+2 sigma of the night-to-night scatter). Checked in the tests."""
    if bts_like:
        return bts_selection.FAINTEST_MAGNITUDE + 0.5
    return max(survey.depth.values()) + 2 * survey.depth_scatter + 0.5 + extra_depth


def _transient_magnitude(model, params, z, rest, mw_extinction, candidates, obj, band, t_observer):
    """observed_magnitude + Milky-Way extinction per observation (obj, band, t_observer), its
    time-independent part computed once per observed object and band."""
    steady = np.empty_like(rest)
    steady[candidates] = _steady_magnitude(model, {key: value[candidates] for key, value in params.items()},
                                           z[candidates], rest[candidates], mw_extinction[candidates])
    per_obs = {key: value[obj] for key, value in params.items()}
    return steady[obj, band] + lc.changing_magnitude(model, per_obs, t_observer / (1 + z[obj]), rest[obj, band])


def _could_pass(label, params, z, rest, mw_extinction, survey, bts_like, window, extra_depth=0.0) -> np.ndarray:
    """Per object: 0 if it could be selected, else why it cannot (3: too faint, 4: out of season
    whenever bright enough); only objects with 0 are observed. rest, mw_extinction: (object, band)
    rest-frame wavelength and Milky-Way extinction; window: (first night, n nights, peak MJD,
    season offset) per object."""
    limit = faint_limit(survey, bts_like, extra_depth)
    if label == "AGN":
        return np.where(_agn_brightest_difference(params, z, rest, mw_extinction) < limit, 0, 3)
    model = lc.MODELS[label]
    steady = _steady_magnitude(model, params, z, rest, mw_extinction)
    coolest, hottest = lc.temperature_range(model, params["temperature_peak_k"])
    # the bluest colour the object reaches: blackbody colours are monotonic in temperature
    colour = np.minimum(lc.blackbody_colour(rest, coolest[:, None]), lc.blackbody_colour(rest, hottest[:, None]))
    brightest_possible = steady + colour  # a lower bound on the magnitude at any time
    bright = brightest_possible.min(axis=1) < limit  # the sampled check below can only agree where not
    sampled = {key: value[bright] for key, value in params.items()}
    bright[bright] = _brightest_sampled(model, sampled, rest[bright], steady[bright]) < limit
    in_season = _bright_in_season(model, params, z, brightest_possible.min(axis=1), limit, survey, window)
    return np.where(bright, np.where(in_season, 0, 4), 3)


def _steady_magnitude(model, params, z, rest, mw_extinction) -> np.ndarray:
    """(n, n_bands) time-independent part of observed_magnitude + Milky-Way extinction: peak
    magnitude, UV suppression, host extinction, distance modulus and K-correction."""
    per_band = {key: value[:, None] for key, value in params.items()}
    return lc.steady_magnitude(model, per_band, rest) + apparent_offset(z)[:, None] + mw_extinction


def _brightest_sampled(model, params, rest, steady) -> np.ndarray:
    """Noise-free brightest magnitude over the bands (observed_magnitude + Milky-Way extinction),
    at -2 rise, -rise, peak and +fade (rest frame)."""
    brightest = np.full(len(steady), np.inf)
    rise = params["rise_days"]
    for t_rest in (-2 * rise, -rise, 0 * rise, params["fade_days"]):
        per_band = {key: value[:, None] for key, value in params.items()}
        magnitude = steady + lc.changing_magnitude(model, per_band, t_rest[:, None], rest)
        brightest = np.minimum(brightest, magnitude.min(axis=1))
    return brightest


def _agn_brightest_difference(params, z, rest, mw_extinction) -> np.ndarray:
    """Magnitude of the largest difference flux an AGN can reach, over the bands: its damped
    random walk at AGN_VARIABILITY_SIGMAS standard deviations brighter than the mean."""
    to_apparent = apparent_offset(z)[:, None] + mw_extinction
    per_band = {"mean_magnitude": params["mean_magnitude"][:, None]}
    swing = -AGN_VARIABILITY_SIGMAS * params["sf_inf_mag"][:, None] / np.sqrt(2.0)
    mean = magnitude_to_flux(lc.agn_absolute_magnitude(per_band, 0.0, rest) + to_apparent)
    bright = magnitude_to_flux(lc.agn_absolute_magnitude(per_band, swing, rest) + to_apparent)
    return (AB_ZERO_POINT - 2.5 * np.log10(bright - mean)).min(axis=1)


def _bright_in_season(model, params, z, brightest_possible, limit, survey, window) -> np.ndarray:
    """False where every night on which the object could be brighter than `limit` falls outside
    its field's season. Exact bounds: magnitude >= brightest_possible (the bluest colour at peak
    luminosity) - 2.5 log10 s(t), and s(t) = 2^-(|t|/rise)^rise_power before peak, <= 2^(-(t - w) / the
    longer half-life) after, w = peak_rounding * fade (sqrt(t^2 + w^2) - w >= t - w; the plateau
    drop only lowers it)."""
    first, n_nights, t_zero, season_offset = window
    # s(t) must exceed 10^(-0.4 (limit - brightest)); halvings = log2 of its inverse
    halvings = 0.4 * np.log2(10.0) * (limit - brightest_possible)
    fast = lc.fast_component_half_life(params["fade_days"], model.tail_fraction, model.tail_half_life_days,
                                       model.peak_rounding, model.late_fraction, model.late_half_life_days)
    slowest = max(model.tail_half_life_days, model.late_half_life_days if model.late_fraction else 0.0)
    longest = np.maximum(fast, slowest)
    depth = np.maximum(halvings, 0.0)
    start = t_zero - params["rise_days"] * depth ** (1 / model.rise_power) * (1 + z)
    end = t_zero + (longest * depth + model.peak_rounding * params["fade_days"]) * (1 + z)
    # a night's visits fall in [night, night + 1): nights floor(start) - 1 .. floor(end), in the window
    last = first + n_nights - 1
    night_from = np.clip(np.floor(start) - 1, first, last).astype(int) - first
    night_to = np.clip(np.floor(end), first, last).astype(int) - first
    overlaps = (halvings > 0) & (np.floor(end) >= first) & (np.floor(start) - 1 <= last)
    day = (first - season_offset + night_from) % 365  # as surveys.observed_nights counts it
    next_in_season = np.where(day < survey.season_days, 0, 365 - day)
    return overlaps & (night_from + next_in_season <= night_to)


def observed_magnitude(label, params, z, t_observer, wavelength_nm):
    """Noise-free apparent AB magnitude (before Milky-Way extinction) of a transient.

    t_observer: observer-frame days from peak; wavelength_nm: observed wavelength. The rest-frame
    SED is evaluated at lambda / (1+z) and time t / (1+z); for f_nu, m = M + mu(z) - 2.5 log10(1+z)
    (the K-correction, Hogg et al. 2002).
    """
    absolute = lc.transient_absolute_magnitude(label, params, t_observer / (1 + z), wavelength_nm / (1 + z))
    return absolute + apparent_offset(z)


def apparent_offset(z):
    """Apparent minus absolute AB magnitude of f_nu: distance modulus - 2.5 log10(1+z)."""
    return distance_modulus(z) - 2.5 * np.log10(1 + z)


def _agn_difference_flux(obj, band, t_observer, params, z, mw_extinction, rest, rng):
    """AGN flux minus its mean (reference-image) flux, uJy, per observation.

    obj, band, t_observer: per observation, sorted by object then time; params, z: per object;
    mw_extinction, rest: (object, band) Milky-Way extinction and rest-frame wavelength. The
    difference is mean flux * (10^(-0.4 offset) - 1), the DRW offset scaled to the band
    (lc.agn_absolute_magnitude's variable minus its mean part); the mean flux and the scale
    depend on (object, band) alone: computed per pair, then taken per observation.
    """
    offsets = lc.damped_random_walk(obj, t_observer / (1 + z[obj]), params["tau_days"], params["sf_inf_mag"], rng)
    mean = lc.agn_absolute_magnitude({"mean_magnitude": params["mean_magnitude"][:, None]}, 0.0, rest)
    mean_flux = magnitude_to_flux(mean + apparent_offset(z)[:, None] + mw_extinction)
    pair = obj * rest.shape[1] + band  # flat (object, band)
    scale = lc.agn_variability_scale(rest).reshape(-1)[pair]
    return mean_flux.reshape(-1)[pair] * np.expm1(-0.4 * np.log(10.0) * offsets * scale)


def _selection(observations, size, bands, bts_like, rng) -> np.ndarray:
    """Reason code per object: 0 selected, 1 too few detections, 2 not in BTS at its observed
    peak (3 and 4, not observed, are set by the caller)."""
    detected = observations[observations["detected"]]
    n_detections = np.bincount(detected["obj"], minlength=size)
    reason = np.where(n_detections >= MIN_DETECTIONS, 0, 1)
    if bts_like:
        g_or_r = detected[np.isin(np.asarray(bands)[detected["band"]], ["ztf_g", "ztf_r"])]
        rise, fade, brightest = _observed_peak(g_or_r, size)
        with np.errstate(divide="ignore"):
            peak_magnitude = AB_ZERO_POINT - 2.5 * np.log10(brightest)  # inf where undetected
        kept = bts_selection.selected(peak_magnitude, rng.random(size), rise, fade)
        reason = np.where((reason == 0) & ~kept, 2, reason)
    return reason


def _observed_peak(detections: pd.DataFrame, size: int):
    """(rise, fade, brightest flux) per object index < size: days from the first detection to the
    brightest and from it to the last; 0 where an object has none."""
    rise, fade, brightest = np.zeros(size), np.zeros(size), np.zeros(size)
    if len(detections):
        by_object = detections.groupby("obj", sort=False)
        peak = detections.loc[by_object["flux"].idxmax(), ["obj", "mjd", "flux"]].to_numpy().T
        index = peak[0].astype(int)
        rise[index] = peak[1] - by_object["mjd"].min().reindex(index).to_numpy()
        fade[index] = by_object["mjd"].max().reindex(index).to_numpy() - peak[1]
        brightest[index] = peak[2]
    return rise, fade, brightest


def simulate_class(label, quota, survey, bands, rng, bts_like, max_batch=20000, sampling=None):
    """Batches of one class until `quota` objects are selected; returns (objects, obs, counts)."""
    kept_objects, kept_observations, counts = [], [], {"generated": 0, 1: 0, 2: 0, 3: 0, 4: 0}
    remaining, acceptance = quota, 0.3
    while remaining > 0:
        size = int(np.clip(remaining / acceptance * 1.2 + 16, 64, max_batch))
        objects, observations, reason = simulate_batch(label, size, survey, bands, rng, bts_like, sampling)
        selected = np.flatnonzero(reason == 0)
        # objects after the quota-filling one count as never generated (they are iid draws)
        used = size if len(selected) <= remaining else int(selected[remaining - 1]) + 1
        selected = selected[selected < used]
        counts["generated"] += used
        for code in REASONS:
            counts[code] += int(np.sum(reason[:used] == code))
        observations = observations[observations["obj"].isin(selected)]
        # renumber kept objects 0, 1, ... in the order they were selected
        offset = quota - remaining
        kept_observations.append(observations.assign(
            row=offset + np.searchsorted(selected, observations["obj"].to_numpy())))
        kept_objects.append(objects.iloc[selected])
        remaining -= len(selected)
        acceptance = max((quota - remaining) / counts["generated"], 1e-3)
        if counts["generated"] > 2000 * quota + 10**6:
            raise TLError(f"{label}: fewer than {quota} of {counts['generated']} simulated objects "
                          f"were selected; the survey cannot see this class")
    return kept_objects, kept_observations, counts


def model_quotas(quotas: dict[str, int]) -> list[tuple[str, str, int]]:
    """(canonical label, model name, quota) per light-curve model: each class's quota split over
    its sub-types in their BTS shares (lightcurve_models.SUBTYPE_SHARES), largest remainders."""
    out = []
    for label, quota in quotas.items():
        shares = lc.SUBTYPE_SHARES.get(label, {})
        mix = {label: 1.0 - sum(shares.values()), **shares}
        for model, count in largest_remainders(quota, mix).items():
            if count:
                out.append((label, model, count))
    return out


def shard_jobs(quotas: dict[str, int], seed: int, shard: int) -> list[tuple[str, str, int, np.random.SeedSequence]]:
    """(canonical label, model name, quota, seed sequence) of one shard's jobs: each light-curve
    model's quota in pieces of at most JOB_OBJECTS (so that processes share the work evenly), each
    with its own generator, fixed by (seed, shard, job number) alone."""
    jobs = []
    for label, model, quota in model_quotas(quotas):
        for piece in shard_quotas({model: quota}, -(-quota // JOB_OBJECTS)):
            jobs.append((label, model, piece[model],
                         np.random.SeedSequence([seed, shard], spawn_key=(len(jobs),))))
    return jobs


def alert_stream(observations: pd.DataFrame, upper_limits: bool) -> pd.DataFrame:
    """What a broker receives: the detections and, with `upper_limits`, every non-detection at
    most UPPER_LIMIT_DAYS before a later detection of its object, as an upper limit (flux 0,
    flux_err = the 5-sigma limit / 5: `limit_err`; the convention of tl.ingest.alerce).
    `observations`: one job's, sorted by object (`row`) then time."""
    detected = observations["detected"].to_numpy()
    if not upper_limits:
        return observations[detected]
    detection_mjd = observations["mjd"].where(observations["detected"])
    next_detection = detection_mjd.groupby(observations["row"]).bfill()  # at or after, NaN after the last
    keep = detected | (next_detection - observations["mjd"] <= UPPER_LIMIT_DAYS).to_numpy()
    kept = observations[keep].copy()
    limits = ~kept["detected"].to_numpy()
    kept.loc[limits, "flux"] = 0.0
    kept.loc[limits, "flux_err"] = kept.loc[limits, "limit_err"]
    return kept


def simulated_bands(survey_name: str, bts_like: bool) -> tuple[str, ...]:
    """The bands simulated for `survey_name`: BTS-like ZTF alerts are g and r only."""
    return tuple(b for b in survey_model(survey_name).bands if not (bts_like and b == "ztf_i"))


def simulate_job(survey_name, model, quota, bts_like, alerts_only, seed_sequence, upper_limits=False, sampling=None):
    """One job of shard_jobs: simulate_class with the job's own generator; with `alerts_only`
    the non-detections are dropped here (after the selection used them), before they travel,
    except the upper limits of alert packets when `upper_limits` (alert_stream)."""
    survey = survey_model(survey_name)
    bands = simulated_bands(survey_name, bts_like)
    objects, observations, counts = simulate_class(model, quota, survey, bands,
                                                   np.random.default_rng(seed_sequence), bts_like, sampling=sampling)
    if alerts_only:
        observations = [alert_stream(frame, upper_limits) for frame in observations]
    # `row` numbers the objects; limit_err was for alert_stream's upper limits only: neither travels
    observations = [frame.drop(columns=["obj", "limit_err"]) for frame in observations]
    return objects, observations, counts


def simulate_shard(survey_name, quotas, seed, shard, bts_like, alerts_only, upper_limits=False, sampling=None,
                   progress=False, pool=None):
    """One shard: `quotas` objects per class, the jobs of shard_jobs run in this process or in
    `pool` (a concurrent.futures executor; same output); `progress`: a tqdm bar over the jobs."""
    bands = simulated_bands(survey_name, bts_like)
    jobs = shard_jobs(quotas, seed, shard)
    results = _run_jobs(survey_name, jobs, bts_like, alerts_only, upper_limits, sampling, pool,
                        functools.partial(tqdm, desc=f"simulating {survey_name}", unit="job",
                                          total=len(jobs), disable=not progress, leave=False))
    objects, observations, dropped, generated = [], [], {}, {}
    for (label, model, _, _), (kept_objects, kept_observations, counts) in zip(jobs, results):
        offset = sum(len(o) for o in objects)
        objects.append(pd.concat(kept_objects, ignore_index=True).assign(label=label, raw_label=model))
        observations.append(pd.concat(kept_observations, ignore_index=True).assign(
            row=lambda frame: frame["row"] + offset))
        generated[label] = generated.get(label, 0) + counts["generated"]
        for code, reason in REASONS.items():
            if counts[code]:
                key = f"{reason} ({model})"
                dropped[key] = dropped.get(key, 0) + counts[code]
    objects, observations = _mix_and_name(pd.concat(objects, ignore_index=True),
                                          pd.concat(observations, ignore_index=True),
                                          f"sim-{survey_name}-{shard:03d}", np.random.default_rng([seed, shard]))
    observations = observations.assign(band=_strings_at(np.asarray(bands), observations["band"].to_numpy()))
    objects = objects.assign(survey=survey_name)
    return (objects[["object_id", "label", "raw_label", "redshift", "mwebv", "survey"]],
            observations[["object_id", "mjd", "band", "flux", "flux_err", "detected"]],
            dropped, generated)


def _run_jobs(survey_name, jobs, bts_like, alerts_only, upper_limits, sampling, pool, bar):
    """Results of simulate_job for every job, in job order."""
    arguments = [(survey_name, model, quota, bts_like, alerts_only, seed_sequence, upper_limits, sampling)
                 for _, model, quota, seed_sequence in jobs]
    if pool is None:
        return [simulate_job(*job) for job in bar(arguments)]
    futures = [pool.submit(simulate_job, *job) for job in arguments]
    return [future.result() for future in bar(futures)]


def _mix_and_name(objects, observations, prefix, rng):
    """Shuffle the objects (classes were made in blocks) and name them prefix-0000000, ... in the
    new order; observations (with `row` = object row) get the names, sorted by object then time."""
    order = rng.permutation(len(objects))  # new position k holds old row order[k]
    new_position = np.empty_like(order)
    new_position[order] = np.arange(len(order))
    object_ids = np.array([f"{prefix}-{k:07d}" for k in range(len(objects))])
    objects = objects.iloc[order].reset_index(drop=True).assign(object_id=object_ids)
    observation_position = new_position[observations["row"].to_numpy()]
    # each object's observations are already together and in time order (schedule_visits), so a
    # stable sort by the new position alone sorts by object, then time
    by_object = np.argsort(observation_position, kind="stable")
    observations = observations.iloc[by_object].assign(object_id=_strings_at(object_ids, observation_position[by_object]))
    return objects, observations.reset_index(drop=True)


def _strings_at(values: np.ndarray, index) -> pd.api.extensions.ExtensionArray:
    """values[index] as pandas' default string array, converting only the distinct values (one
    Python string per observation took seconds at 100k objects)."""
    return pd.Series(values).array.take(np.asarray(index))


def shard_quotas(quotas: dict[str, int], shards: int) -> list[dict[str, int]]:
    """Split per-class quotas as evenly as possible over shards."""
    return [{label: q // shards + (1 if k < q % shards else 0) for label, q in quotas.items()}
            for k in range(shards)]


def simulate(survey: str, n: int, seed: int, bts_like: bool = False, alerts_only: bool = False,
             class_mix: str | dict | None = None, shards: int = 1, use_ray: bool = False,
             address: str | None = None, progress: bool = False, workers: int = 1,
             upper_limits: bool = False, cadence_from: str | None = None, vary_depth: float = 0.0,
             vary_cadence: float = 0.0) -> Dataset:
    """Simulate `n` selected objects of `survey` as a canonical Dataset (splits assigned);
    `upper_limits` (with `alerts_only`): keep the alert packets' upper limits (alert_stream);
    `cadence_from`: a tl data set whose (train split's) light curves give the nightly sampling (tl.cadence);
    `vary_depth` (mag), `vary_cadence` (share): randomised survey conditions, field by field (tl.cadence.Sampling);
    `progress`: a bar per in-process shard on stderr; `workers`: processes for the in-process
    shards' jobs (> 1 starts fresh interpreters, which import the caller's main module as
    multiprocessing does: guard a script with `if __name__ == "__main__"`). The output depends on
    (seed, shards, settings), never on `workers` or Ray."""
    survey_model(survey)  # unknown survey -> TLError
    if bts_like and survey != "ztf":
        raise TLError("--bts-like applies the ZTF Bright Transient Survey cut: use --survey ztf")
    for flag, value in (("--n", n), ("--shards", shards), ("--workers", workers)):
        if value < 1:
            raise TLError(f"{flag} must be >= 1, got {value}")
    if not 0 <= seed <= MAX_SEED:
        raise TLError(f"--seed must be in [0, {MAX_SEED}], got {seed}")
    if upper_limits and not alerts_only:
        raise TLError("--upper-limits applies to an alert stream: add --alerts-only (without it every non-detection is kept)")
    mix = class_mix if isinstance(class_mix, dict) else parse_class_mix(class_mix)
    quotas = class_quotas(n, mix)
    if not 0 <= vary_depth <= MAX_VARY_DEPTH:
        raise TLError(f"--vary-depth must be in [0, {MAX_VARY_DEPTH}] mag, got {vary_depth}")
    if not 0 <= vary_cadence <= MAX_VARY_CADENCE:
        raise TLError(f"--vary-cadence must be in [0, {MAX_VARY_CADENCE}], got {vary_cadence}")
    cadence = load_library(cadence_from, simulated_bands(survey, bts_like)) if cadence_from else None
    sampling = Sampling(cadence, vary_depth, vary_cadence) if cadence or vary_depth or vary_cadence else None
    tasks = [(survey, q, seed, k, bts_like, alerts_only, upper_limits, sampling)
             for k, q in enumerate(shard_quotas(quotas, shards)) if sum(q.values()) > 0]
    if use_ray or address:
        results = _run_on_ray(tasks, address)
    elif workers > 1:
        with _process_pool(workers) as pool:
            results = [simulate_shard(*task, progress=progress, pool=pool) for task in tasks]
    else:
        results = [simulate_shard(*task, progress=progress) for task in tasks]
    objects = pd.concat([r[0] for r in results], ignore_index=True)
    observations = pd.concat([r[1] for r in results], ignore_index=True)
    dropped, generated = {}, {}
    for _, _, shard_dropped, shard_generated in results:
        for reason, count in shard_dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        for label, count in shard_generated.items():
            generated[label] = generated.get(label, 0) + count
    objects["split"] = assign_splits(objects, seed)
    meta = {
        "name": f"sim-{survey}{'-bts' if bts_like else ''}-n{n}-seed{seed}", "survey": survey,
        "source": "simulation", "dropped": dict(sorted(dropped.items())), "generated": generated,
        "settings": {"survey": survey, "n": n, "seed": seed, "bts_like": bts_like,
                     "alerts_only": alerts_only, "upper_limits": upper_limits,
                     "upper_limit_days": UPPER_LIMIT_DAYS if upper_limits else None, "class_mix": mix, "shards": shards,
                     "cadence_from": cadence_from, "cadence_stretches": len(cadence.start) if cadence else None,
                     "vary_depth": vary_depth, "vary_cadence": vary_cadence,
                     "cosmology": "Planck18", "min_detections": MIN_DETECTIONS,
                     "bts_peak_magnitude": BTS_PEAK_MAGNITUDE if bts_like else None,
                     "bts_completeness": list(bts_selection.COMPLETENESS_NODES) if bts_like else None},
    }
    return Dataset(objects, observations.reset_index(drop=True), meta)


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """Fresh worker processes (forkserver, else spawn: never a fork of this process, whose threads,
    Ray's among them, a fork would copy mid-state), given the cosmology grid so that none imports astropy."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["tl.simulate"])  # imported once, then forked per worker
    else:
        context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context,
                               initializer=install_cosmology_grid, initargs=(cosmology_grid(),))


def _run_on_ray(tasks, address):
    """Each shard as a Ray task (one CPU each); connects to `address` or starts a local Ray."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address)
    try:
        remote = ray.remote(num_cpus=1)(simulate_shard)
        return ray.get([remote.remote(*task) for task in tasks])
    finally:
        if started_here:
            ray.shutdown()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--survey", required=True, help="a survey model of tl/surveys.py: ztf, lsst or des")
    parser.add_argument("--n", type=int, required=True, help="number of selected objects to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output data set directory")
    parser.add_argument("--bts-like", action="store_true",
                        help="ZTF Bright Transient Survey selection: g/r only, observed peak < 18.5 mag "
                             "(and fainter to 19 mag with falling completeness)")
    parser.add_argument("--alerts-only", action="store_true",
                        help="keep detections only, as broker alert streams do")
    parser.add_argument("--upper-limits", action="store_true",
                        help="with --alerts-only: keep the non-detections of the 30 days before each "
                             "detection as upper limits (flux 0, flux_err = 5-sigma limit / 5), as ZTF "
                             "alert packets carry them")
    parser.add_argument("--cadence-from", default=None, metavar="DATA_DIR",
                        help="take the nightly sampling (nights, times, bands, pairs) from the detections of "
                             "this tl data set's light curves (its train split when it has one), laid end to "
                             "end; depth stays the survey model's (e.g. a `tl ingest bts` output for ZTF)")
    parser.add_argument("--match-real", default=None, metavar="DATA_DIR",
                        help="ZTF: keep each simulated object with a probability that grows with how real it "
                             "looks next to this tl data set's train split (a per-class classifier's density "
                             "ratio, tl/realism.py; ~3x the simulation time)")
    parser.add_argument("--vary-depth", type=float, default=0.0, metavar="MAG",
                        help="randomised conditions: each field's depth offset ~ N(0, MAG) (default 0)")
    parser.add_argument("--vary-cadence", type=float, default=0.0, metavar="SHARE",
                        help="randomised conditions: each field keeps a share U(1 - SHARE, 1] of its "
                             "observed nights (default 0; at most 0.9)")
    parser.add_argument("--class-mix", default="balanced",
                        help="balanced (default), bts (BTS observed fractions), or 'SN Ia=2,SN II=1,...'")
    parser.add_argument("--shards", type=int, default=1,
                        help="split the work into K seed-derived shards (output depends on K)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes for the in-process shards' jobs (default 1; more pays only on "
                             "idle CPUs; the output does not depend on it)")
    parser.add_argument("--ray", action="store_true", help="run the shards as Ray tasks (local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (shown on a terminal)")
    parser.add_argument("--address", default=None, help="Ray cluster address for the shards (implies --ray)")


def run(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", directory=True, marker="dataset.json", kind="tl data set")
    started = time.perf_counter()
    settings = dict(bts_like=args.bts_like, alerts_only=args.alerts_only, class_mix=args.class_mix, shards=args.shards,
                    workers=args.workers, upper_limits=args.upper_limits, cadence_from=args.cadence_from,
                    vary_depth=args.vary_depth, vary_cadence=args.vary_cadence,
                    use_ray=args.ray, address=args.address, progress=sys.stderr.isatty() and not args.quiet)
    if args.match_real:
        from tl.realism import simulate_matched  # which imports this module

        dataset = simulate_matched(args.survey, args.n, args.seed, args.match_real, **settings)
    else:
        dataset = simulate(args.survey, args.n, args.seed, **settings)
    dataset = write_dataset(dataset, args.out, **dataset.meta)
    total = sum(dataset.meta["generated"].values())
    print(f"simulated {total} objects, selected {len(dataset.objects)} "
          f"({len(dataset.observations)} observations) in {time.perf_counter() - started:.1f} s -> {args.out}")
    for reason, count in dataset.meta["dropped"].items():
        print(f"  {reason}: {count}")
    return 0
