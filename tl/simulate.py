"""`tl simulate`: physically motivated light curves of a survey, as a canonical data set.

Per object: a class model (tl/lightcurve_models.py) at a redshift drawn from the comoving volume
(dV/dz / (1+z) times a rate evolution, Planck18 cosmology) up to where the survey can see the
class; observed through the survey model (tl/surveys.py: nights, bands, depths, noise) with time
dilation, redshifted band wavelengths (the rest-frame SED at lambda / (1+z)), distance modulus
and Milky-Way extinction (Cardelli et al. 1989, R_V = 3.1). Kept only if selected like the survey
would: >= 2 detections (flux / err >= the survey's detection_snr: 5, or ZTF's alert threshold);
with --bts-like also the BTS selection on the observed g/r peak (tl/bts_selection.py: complete to
18.5 mag, a falling completeness to 19 mag). `n` counts kept objects; every generated object that
was not selected is counted by reason in dataset.json["dropped"].

Work is split into `shards` (per-shard seeds derived from `seed`); shards run in this process,
or as Ray tasks with --ray/--address. The output depends only on (seed, shards, settings).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tl import bts_selection
from tl import lightcurve_models as lc
from tl.config import MAX_SEED
from tl.data import Dataset, assign_splits, write_dataset
from tl.errors import TLError
from tl.paths import check_output
from tl.surveys import (AB_ZERO_POINT, BAND_BY_NAME, SurveyModel, flux_error, magnitude_to_flux,
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


@functools.lru_cache(maxsize=1)
def cosmology_grid():
    """Planck18 on a redshift grid: z, distance modulus, dV/dz (comoving, per steradian)."""
    from astropy.cosmology import Planck18

    z = np.geomspace(REDSHIFT_MIN, REDSHIFT_CAP, 3000)
    return z, Planck18.distmod(z).value, Planck18.differential_comoving_volume(z).value


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


def simulate_batch(label, size, survey, bands, rng, bts_like):
    """Generate `size` objects of one class; return (objects, observations, reason code per object)."""
    z = draw_redshifts(size, redshift_limit(label, survey, bts_like),
                       "constant" if label == "AGN" else lc.MODELS[label].rate_evolution, rng)
    mwebv = rng.exponential(MEAN_MWEBV, size)
    if label == "AGN":
        params = lc.draw_agn_parameters(size, rng)
    else:
        params = lc.draw_parameters(label, size, rng)
    first, n_nights, t_zero = _observation_window(label, params, z, survey, rng)
    band_wavelength = np.array([BAND_BY_NAME[b].wavelength_nm for b in bands])
    visible = _could_pass(label, params, z, mwebv, band_wavelength, survey, bts_like)
    candidates = np.flatnonzero(visible)  # only these are observed: the rest cannot be selected
    obj, mjd, band, limit = schedule_visits(survey, bands, first[candidates], n_nights[candidates], rng)
    obj = candidates[obj]
    wavelength = band_wavelength[band]
    extinction = 3.1 * mwebv[obj] * lc.cardelli_extinction_ratio(band_wavelength)[band]
    if label == "AGN":
        true_flux = _agn_difference_flux(obj, mjd - t_zero[obj], params, z, extinction, wavelength, rng)
    else:
        per_obs = {key: value[obj] for key, value in params.items()}
        true_flux = magnitude_to_flux(observed_magnitude(
            label, per_obs, z[obj], mjd - t_zero[obj], wavelength) + extinction)
    flux_err = flux_error(true_flux, limit, survey)
    flux = true_flux + flux_err * rng.standard_normal(len(true_flux))
    observations = pd.DataFrame({"obj": obj, "mjd": mjd, "band": band, "flux": flux, "flux_err": flux_err,
                                 "detected": flux / flux_err >= survey.detection_snr})
    objects = pd.DataFrame({"redshift": z, "mwebv": mwebv})
    reason = _selection(observations, size, bands, bts_like, rng)
    reason[~visible] = 3
    return objects, observations, reason


def faint_limit(survey: SurveyModel, bts_like: bool) -> float:
    """A model peak fainter than this (AB mag) cannot be selected: 0.5 mag beyond BTS's faintest,
    or beyond a deep visit (+2 sigma of the night-to-night scatter). Checked in the tests."""
    if bts_like:
        return bts_selection.FAINTEST_MAGNITUDE + 0.5
    return max(survey.depth.values()) + 2 * survey.depth_scatter + 0.5


def _could_pass(label, params, z, mwebv, band_wavelength, survey, bts_like) -> np.ndarray:
    """Objects whose noise-free brightest magnitude (over the bands, at -2 rise, -rise, peak and
    +fade) is brighter than faint_limit; AGN are always observed (their variability decides)."""
    if label == "AGN":
        return np.ones(len(z), dtype=bool)
    n, n_bands = len(z), len(band_wavelength)
    brightest = np.full(n, np.inf)
    extinction = 3.1 * mwebv[:, None] * lc.cardelli_extinction_ratio(band_wavelength)[None, :]
    for t_rest in (-2 * params["rise_days"], -params["rise_days"], 0 * z, params["fade_days"]):
        per_band = {key: np.repeat(value, n_bands) for key, value in params.items()}
        magnitude = observed_magnitude(label, per_band, np.repeat(z, n_bands),
                                       np.repeat(t_rest * (1 + z), n_bands), np.tile(band_wavelength, n))
        brightest = np.minimum(brightest, (magnitude.reshape(n, n_bands) + extinction).min(axis=1))
    return brightest < faint_limit(survey, bts_like)


def observed_magnitude(label, params, z, t_observer, wavelength_nm):
    """Noise-free apparent AB magnitude (before Milky-Way extinction) of a transient.

    t_observer: observer-frame days from peak; wavelength_nm: observed wavelength. The rest-frame
    SED is evaluated at lambda / (1+z) and time t / (1+z); for f_nu, m = M + mu(z) - 2.5 log10(1+z)
    (the K-correction, Hogg et al. 2002).
    """
    absolute = lc.transient_absolute_magnitude(label, params, t_observer / (1 + z), wavelength_nm / (1 + z))
    return absolute + distance_modulus(z) - 2.5 * np.log10(1 + z)


def _agn_difference_flux(obj, t_observer, params, z, extinction, wavelength, rng):
    """AGN flux minus its mean (reference-image) flux, uJy, per observation.

    obj, t_observer, extinction, wavelength: per observation, sorted by object then time;
    params, z: per object.
    """
    size = len(z)
    counts = np.bincount(obj, minlength=size)
    position = np.arange(len(obj)) - np.repeat(np.cumsum(counts) - counts, counts)
    times = np.full((size, max(int(counts.max(initial=0)), 1)), np.nan)  # (n_objects, max visits)
    one_plus_z = 1 + z[obj]
    times[obj, position] = t_observer / one_plus_z
    offsets = lc.damped_random_walk(times, params["tau_days"], params["sf_inf_mag"], rng)
    to_apparent = distance_modulus(z[obj]) - 2.5 * np.log10(one_plus_z) + extinction
    per_obs = {key: value[obj] for key, value in params.items()}
    variable = lc.agn_absolute_magnitude(per_obs, offsets[obj, position], wavelength / one_plus_z)
    mean = lc.agn_absolute_magnitude(per_obs, 0.0, wavelength / one_plus_z)
    return magnitude_to_flux(variable + to_apparent) - magnitude_to_flux(mean + to_apparent)


def _selection(observations, size, bands, bts_like, rng) -> np.ndarray:
    """Reason code per object: 0 selected, 1 too few detections, 2 not in BTS at its observed
    peak (3, too faint to observe, is set by the caller)."""
    detected = observations[observations["detected"]]
    n_detections = np.bincount(detected["obj"], minlength=size)
    reason = np.where(n_detections >= MIN_DETECTIONS, 0, 1)
    if bts_like:
        g_or_r = detected[np.isin(np.asarray(bands)[detected["band"]], ["ztf_g", "ztf_r"])]
        brightest = np.zeros(size)
        np.maximum.at(brightest, g_or_r["obj"].to_numpy(), g_or_r["flux"].to_numpy())
        with np.errstate(divide="ignore"):
            peak_magnitude = AB_ZERO_POINT - 2.5 * np.log10(brightest)  # inf where undetected
        kept = bts_selection.selected(peak_magnitude, rng.random(size))
        reason = np.where((reason == 0) & ~kept, 2, reason)
    return reason


def simulate_class(label, quota, survey, bands, rng, bts_like, max_batch=20000):
    """Batches of one class until `quota` objects are selected; returns (objects, obs, counts)."""
    kept_objects, kept_observations, counts = [], [], {"generated": 0, 1: 0, 2: 0, 3: 0}
    remaining, acceptance = quota, 0.3
    while remaining > 0:
        size = int(np.clip(remaining / acceptance * 1.2 + 16, 64, max_batch))
        objects, observations, reason = simulate_batch(label, size, survey, bands, rng, bts_like)
        selected = np.flatnonzero(reason == 0)
        # objects after the quota-filling one count as never generated (they are iid draws)
        used = size if len(selected) <= remaining else int(selected[remaining - 1]) + 1
        selected = selected[selected < used]
        counts["generated"] += used
        for code in (1, 2, 3):
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


def simulate_shard(survey_name, quotas, seed, shard, bts_like, alerts_only, progress=False):
    """One shard: `quotas` objects per class with a generator fixed by (seed, shard); `progress`:
    a tqdm bar over the light-curve models on stderr."""
    survey = survey_model(survey_name)
    bands = tuple(b for b in survey.bands if not (bts_like and b == "ztf_i"))  # alerts: g, r only
    rng = np.random.default_rng([seed, shard])
    objects, observations, dropped, generated = [], [], {}, {}
    for label, model, quota in tqdm(model_quotas(quotas), desc=f"simulating {survey_name}", unit="model",
                                    disable=not progress, leave=False):
        kept_objects, kept_observations, counts = simulate_class(
            model, quota, survey, bands, rng, bts_like)
        offset = sum(len(o) for o in objects)
        objects.append(pd.concat(kept_objects, ignore_index=True).assign(label=label, raw_label=model))
        observations.append(pd.concat(kept_observations, ignore_index=True).assign(
            row=lambda frame: frame["row"] + offset))
        generated[label] = generated.get(label, 0) + counts["generated"]
        for code, reason in ((1, REASON_DETECTIONS), (2, REASON_PEAK), (3, REASON_FAINT)):
            if counts[code]:
                dropped[f"{reason} ({model})"] = counts[code]
    objects, observations = _mix_and_name(pd.concat(objects, ignore_index=True),
                                          pd.concat(observations, ignore_index=True),
                                          f"sim-{survey_name}-{shard:03d}", rng)
    if alerts_only:
        observations = observations[observations["detected"]]
    observations["band"] = np.asarray(bands)[observations["band"].to_numpy()]
    objects = objects.assign(survey=survey_name)
    return (objects[["object_id", "label", "raw_label", "redshift", "mwebv", "survey"]],
            observations[["object_id", "mjd", "band", "flux", "flux_err", "detected"]],
            dropped, generated)


def _mix_and_name(objects, observations, prefix, rng):
    """Shuffle the objects (classes were made in blocks) and name them prefix-0000000, ... in the
    new order; observations (with `row` = object row) get the names, sorted by object then time."""
    order = rng.permutation(len(objects))  # new position k holds old row order[k]
    new_position = np.empty_like(order)
    new_position[order] = np.arange(len(order))
    object_ids = np.array([f"{prefix}-{k:07d}" for k in range(len(objects))])
    objects = objects.iloc[order].reset_index(drop=True).assign(object_id=object_ids)
    observation_position = new_position[observations["row"].to_numpy()]
    observations = observations.iloc[np.lexsort((observations["mjd"].to_numpy(), observation_position))]
    observations = observations.assign(object_id=object_ids[np.sort(observation_position)])
    return objects, observations.reset_index(drop=True)


def shard_quotas(quotas: dict[str, int], shards: int) -> list[dict[str, int]]:
    """Split per-class quotas as evenly as possible over shards."""
    return [{label: q // shards + (1 if k < q % shards else 0) for label, q in quotas.items()}
            for k in range(shards)]


def simulate(survey: str, n: int, seed: int, bts_like: bool = False, alerts_only: bool = False,
             class_mix: str | dict | None = None, shards: int = 1, use_ray: bool = False,
             address: str | None = None, progress: bool = False) -> Dataset:
    """Simulate `n` selected objects of `survey` as a canonical Dataset (splits assigned);
    `progress`: a bar per in-process shard on stderr."""
    survey_model(survey)  # unknown survey -> TLError
    if bts_like and survey != "ztf":
        raise TLError("--bts-like applies the ZTF Bright Transient Survey cut: use --survey ztf")
    if n < 1 or shards < 1:
        raise TLError(f"--n and --shards must be >= 1 (got n={n}, shards={shards})")
    if not 0 <= seed <= MAX_SEED:
        raise TLError(f"--seed must be in [0, {MAX_SEED}], got {seed}")
    mix = class_mix if isinstance(class_mix, dict) else parse_class_mix(class_mix)
    quotas = class_quotas(n, mix)
    tasks = [(survey, q, seed, k, bts_like, alerts_only)
             for k, q in enumerate(shard_quotas(quotas, shards)) if sum(q.values()) > 0]
    if use_ray or address:
        results = _run_on_ray(tasks, address)
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
                     "alerts_only": alerts_only, "class_mix": mix, "shards": shards,
                     "cosmology": "Planck18", "min_detections": MIN_DETECTIONS,
                     "bts_peak_magnitude": BTS_PEAK_MAGNITUDE if bts_like else None,
                     "bts_completeness": list(bts_selection.COMPLETENESS_NODES) if bts_like else None},
    }
    return Dataset(objects, observations.reset_index(drop=True), meta)


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
    parser.add_argument("--class-mix", default="balanced",
                        help="balanced (default), bts (BTS observed fractions), or 'SN Ia=2,SN II=1,...'")
    parser.add_argument("--shards", type=int, default=1,
                        help="split the work into K seed-derived shards (output depends on K)")
    parser.add_argument("--ray", action="store_true", help="run the shards as Ray tasks (local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (shown on a terminal)")
    parser.add_argument("--address", default=None, help="Ray cluster address for the shards (implies --ray)")


def run(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", directory=True, marker="dataset.json", kind="tl data set")
    started = time.perf_counter()
    dataset = simulate(args.survey, args.n, args.seed, bts_like=args.bts_like,
                       alerts_only=args.alerts_only, class_mix=args.class_mix, shards=args.shards,
                       use_ray=args.ray, address=args.address, progress=sys.stderr.isatty() and not args.quiet)
    dataset = write_dataset(dataset, args.out, **dataset.meta)
    total = sum(dataset.meta["generated"].values())
    print(f"simulated {total} objects, selected {len(dataset.objects)} "
          f"({len(dataset.observations)} observations) in {time.perf_counter() - started:.1f} s -> {args.out}")
    for reason, count in dataset.meta["dropped"].items():
        print(f"  {reason}: {count}")
    return 0
