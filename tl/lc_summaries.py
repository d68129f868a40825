"""Per-object summaries of ZTF g/r light curves: what the simulator is compared to real data on.

One row per object with at least one positive g/r detection (flux > 0, `detected`):

  n_det           number of detections
  rise_obs        days from the first detection to the brightest one
  fade_obs        days from the brightest detection to the last one
  peak_mag        AB magnitude of the brightest detection (the observed peak the BTS cut applies to)
  g_r_peak        g - r of the g/r pair (< 1 day apart) whose midpoint is nearest the brightest detection
  first_gap       days between the first two detections
  median_gap      median days between consecutive detections
  same_night      fraction of consecutive detections < 0.5 day apart
  g_fraction      fraction of detections in g
  snr_median      median flux / flux_err
  flux_over_peak  median flux / peak flux (the network's encoded flux)
  redshift        as the metadata branch reads it

Vectorised over objects (grouped numpy), ~20x faster than a loop over objects; tests/test_lc_summaries.py
compares it with a per-object loop. Used by benchmarks/validate_simulator.py and tl.realism.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tl.surveys import AB_ZERO_POINT

QUANTITIES = ("n_det", "rise_obs", "fade_obs", "peak_mag", "g_r_peak", "first_gap", "median_gap",
              "same_night", "g_fraction", "snr_median", "flux_over_peak", "redshift")
PAIR_DAYS = 1.0  # a g/r pair: at most this far apart
SAME_NIGHT_DAYS = 0.5  # two detections less than this apart are on one night


def positive_detections(observations: pd.DataFrame) -> pd.DataFrame:
    """The detected ZTF g/r observations with flux > 0, sorted by object, then time (stable)."""
    obs = observations[observations["detected"] & observations["band"].isin(["ztf_g", "ztf_r"])
                       & (observations["flux"] > 0)]
    return obs.sort_values(["object_id", "mjd"], kind="stable")


def summaries(objects: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """One row per object (in `objects`' order) with >= 1 positive g/r detection: object_id, `class`
    (the label) and the QUANTITIES."""
    obs = positive_detections(observations)
    if obs.empty:
        return pd.DataFrame(columns=["object_id", "class", "redshift", *QUANTITIES[:-1]])
    codes, names = pd.factorize(obs["object_id"])  # sorted by object: codes ascend in blocks
    mjd, flux, flux_err = (obs[c].to_numpy(float) for c in ("mjd", "flux", "flux_err"))
    is_g = (obs["band"] == "ztf_g").to_numpy()
    start = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]  # first row of each object
    count = np.diff(np.r_[start, len(codes)])
    last = start + count - 1
    peak = _first_argmax(flux, codes, start)  # row of each object's brightest detection
    magnitude = AB_ZERO_POINT - 2.5 * np.log10(flux)
    gaps = np.diff(mjd)
    gaps[last[:-1]] = np.nan  # no gap across two objects
    gap_series = pd.Series(np.r_[gaps, np.nan]).groupby(codes)
    table = pd.DataFrame({
        "object_id": names, "n_det": count, "rise_obs": mjd[peak] - mjd[start], "fade_obs": mjd[last] - mjd[peak],
        "peak_mag": magnitude[peak],
        "g_r_peak": _peak_colour(mjd, is_g, magnitude, codes, peak, len(names)),
        "first_gap": np.where(count > 1, mjd[np.minimum(start + 1, last)] - mjd[start], np.nan),
        "median_gap": gap_series.median().to_numpy(),
        "same_night": _same_night(gaps, start, count),
        "g_fraction": pd.Series(is_g.astype(float)).groupby(codes).mean().to_numpy(),
        "snr_median": pd.Series(flux / flux_err).groupby(codes).median().to_numpy(),
        "flux_over_peak": pd.Series(flux / flux[peak][codes]).groupby(codes).median().to_numpy()})
    merged = objects[["object_id", "label", "redshift"]].merge(table, on="object_id")
    return merged.rename(columns={"label": "class"})


def _first_argmax(values: np.ndarray, codes: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per object (rows `start[k]` .. of code k), the first row holding its largest value (np.argmax's tie rule)."""
    largest = np.maximum.reduceat(values, start)
    rows = np.where(values == largest[codes], np.arange(len(values)), len(values))
    return np.minimum.reduceat(rows, start)


def _same_night(gaps: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per object, the share of its count - 1 gaps (NaN across objects) on one night; NaN with no gap."""
    short = np.r_[np.nan_to_num(gaps, nan=1.0) < SAME_NIGHT_DAYS, False].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 1, np.add.reduceat(short, start) / (count - 1), np.nan)


def _peak_colour(mjd, is_g, magnitude, codes, peak, n_objects) -> np.ndarray:
    """Per object, g - r of the g/r pair (<= PAIR_DAYS apart) whose midpoint is nearest the brightest
    detection; ties go to the earlier g, then the earlier r; NaN without such a pair."""
    g_rows, r_rows = np.flatnonzero(is_g), np.flatnonzero(~is_g)
    # rows are sorted by object then time, so (object, time) keys sort the r rows: search each g's window
    stride = mjd.max() - mjd.min() + 10 * PAIR_DAYS  # summaries() calls this with >= 1 detection
    key = codes * stride + (mjd - mjd.min())
    lo = np.searchsorted(key[r_rows], key[g_rows] - 1.01 * PAIR_DAYS, "left")
    hi = np.searchsorted(key[r_rows], key[g_rows] + 1.01 * PAIR_DAYS, "right")
    candidates = hi - lo  # r rows in each g's window
    g_pair = np.repeat(g_rows, candidates)
    within = np.arange(len(g_pair)) - np.repeat(np.cumsum(candidates) - candidates, candidates)  # 0, 1, .. per g
    r_pair = r_rows[np.repeat(lo, candidates) + within]
    real_pair = (codes[g_pair] == codes[r_pair]) & (np.abs(mjd[g_pair] - mjd[r_pair]) <= PAIR_DAYS)
    g_pair, r_pair = g_pair[real_pair], r_pair[real_pair]
    pair_code = codes[g_pair]
    distance = np.abs((mjd[g_pair] + mjd[r_pair]) / 2 - mjd[peak][pair_code])
    order = np.lexsort((r_pair, g_pair, distance, pair_code))  # by object, nearest first, then earlier g, r
    first = order[np.r_[True, np.diff(pair_code[order]) != 0]] if len(order) else order
    colour = np.full(n_objects, np.nan)
    colour[pair_code[first]] = magnitude[g_pair[first]] - magnitude[r_pair[first]]
    return colour
