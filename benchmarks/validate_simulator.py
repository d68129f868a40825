"""Compare the simulated ZTF BTS-like population with the real Bright Transient Survey.

    python benchmarks/validate_simulator.py [--n 10000] [--seed 0] [--bts DIR] [--out DIR]

Per class and quantity (peak absolute magnitude, rise and fade times, redshift, number of alert
detections), a two-sample Kolmogorov-Smirnov test between the simulation and the BTS catalogue
(restricted to the BTS cut, peak < 18.5 mag). Simulated quantities are measured the way the BTS
catalogue measures them (Perley et al. 2020; checked against the catalogue's own columns):
  peakmag  brightest g or r flux in the light curve; peakfilt = that band
  peakabs  peakmag - distmod(z; flat LCDM H0=70, Om=0.3) - A_band(MW) + 2.5 log10(1+z)
           (reproduces the catalogue's peakabs to 0.004 mag rms)
  rise     observer days from half-peak flux to peak in the peak band (linear interpolation;
           undefined when the light curve does not go below half-peak before the peak)
  fade     observer days from peak to half-peak flux, likewise
  n_det    alert detections in g and r (the ANTARES light curves hold detections only)
  g_r_peak g - r of the detected g/r pair (< 1 day apart) closest to the brightest detection
           (real: from the ANTARES light curves; not in the catalogue)
Writes table.csv, table.md and distributions.png to --out.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
import pandas as pd

from tl.lightcurve_models import cardelli_extinction_ratio
from tl.simulate import BTS_PEAK_MAGNITUDE, simulate
from tl.surveys import AB_ZERO_POINT, BAND_BY_NAME
from tl.taxonomy import CLASSES, canonical_label

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUANTITIES = ("peakabs", "rise", "fade", "redshift", "n_det", "g_r_peak")
MIN_REAL = 5  # compare classes with at least this many BTS objects


def half_peak_times(mjd: np.ndarray, flux: np.ndarray) -> tuple[float, float]:
    """(rise, fade) in days: interpolated half-peak crossings before and after the peak."""
    peak = int(np.argmax(flux))
    half = flux[peak] / 2
    rise = fade = np.nan
    below = np.flatnonzero(flux[:peak] < half)
    if len(below):
        k = below[-1]  # crossing between k and k + 1
        t_half = mjd[k] + (half - flux[k]) / (flux[k + 1] - flux[k]) * (mjd[k + 1] - mjd[k])
        rise = mjd[peak] - t_half
    below = np.flatnonzero(flux[peak + 1:] < half)
    if len(below):
        k = peak + 1 + below[0]  # crossing between k - 1 and k
        t_half = mjd[k - 1] + (flux[k - 1] - half) / (flux[k - 1] - flux[k]) * (mjd[k] - mjd[k - 1])
        fade = t_half - mjd[peak]
    return rise, fade


def peak_colour(mjd: np.ndarray, is_g: np.ndarray, magnitude: np.ndarray) -> float:
    """g - r of the g/r detection pair (< 1 day apart) nearest in time to the brightest point."""
    g, r = np.flatnonzero(is_g), np.flatnonzero(~is_g)
    if len(g) == 0 or len(r) == 0:
        return np.nan
    separation = np.abs(mjd[g][:, None] - mjd[r][None, :])  # (n_g, n_r) days
    t_peak = mjd[np.argmin(magnitude)]
    distance = np.abs((mjd[g][:, None] + mjd[r][None, :]) / 2 - t_peak)
    distance[separation > 1.0] = np.inf
    i, j = np.unravel_index(np.argmin(distance), distance.shape)
    return float(magnitude[g[i]] - magnitude[r[j]]) if np.isfinite(distance[i, j]) else np.nan


def measure_simulation(dataset) -> pd.DataFrame:
    """BTS-style quantities of every simulated object."""
    from astropy.cosmology import FlatLambdaCDM

    obs = dataset.observations[dataset.observations["band"].isin(["ztf_g", "ztf_r"])]
    rows = []
    for object_id, lc in obs.groupby("object_id", sort=False):
        detected = lc[lc["detected"]]
        best = detected.loc[detected["flux"].idxmax()]
        band_lc = lc[lc["band"] == best["band"]].sort_values("mjd")
        rise, fade = half_peak_times(band_lc["mjd"].to_numpy(), band_lc["flux"].to_numpy())
        magnitude = AB_ZERO_POINT - 2.5 * np.log10(detected["flux"].to_numpy())
        colour = peak_colour(detected["mjd"].to_numpy(), (detected["band"] == "ztf_g").to_numpy(), magnitude)
        rows.append((object_id, best["band"], magnitude.min(), rise, fade, len(detected), colour))
    measured = pd.DataFrame(rows, columns=["object_id", "peakfilt", "peakmag", "rise", "fade", "n_det",
                                           "g_r_peak"])
    table = dataset.objects.merge(measured, on="object_id")
    wavelength = table["peakfilt"].map(lambda b: BAND_BY_NAME[b].wavelength_nm).to_numpy()
    extinction = 3.1 * table["mwebv"].to_numpy() * cardelli_extinction_ratio(wavelength)
    distmod = FlatLambdaCDM(H0=70, Om0=0.3).distmod(table["redshift"].to_numpy()).value
    table["peakabs"] = (table["peakmag"] - distmod - extinction
                        + 2.5 * np.log10(1 + table["redshift"]))
    return table.rename(columns={"label": "class"})


def read_bts(bts_dir: str) -> pd.DataFrame:
    """The BTS catalogue, canonical classes, peak < 18.5, with detections per ANTARES light curve."""
    catalogue = pd.read_csv(os.path.join(bts_dir, "bts_catalog_2021-09-22.csv"))
    catalogue["class"] = [canonical_label("bts", t) for t in catalogue["type"]]
    for column in ("peakmag", "peakabs", "rise", "fade", "redshift"):
        catalogue[column] = pd.to_numeric(catalogue[column], errors="coerce")
    catalogue = catalogue[catalogue["class"].notna() & (catalogue["peakmag"] < BTS_PEAK_MAGNITUDE)]
    n_det, colour = {}, {}
    for path in glob.glob(os.path.join(bts_dir, "lightcurves", "*.csv")):
        lc = pd.read_csv(path).sort_values("ant_mjd")
        name = os.path.basename(path)[:-4]
        n_det[name] = len(lc)
        colour[name] = peak_colour(lc["ant_mjd"].to_numpy(), (lc["ant_passband"] == "g").to_numpy(),
                                   lc["ant_mag"].to_numpy())
    catalogue["n_det"] = catalogue["ZTFID"].map(n_det)
    catalogue["g_r_peak"] = catalogue["ZTFID"].map(colour)
    return catalogue


def compare(simulated: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    from scipy.stats import ks_2samp

    rows = []
    for label in CLASSES:
        real_class, sim_class = real[real["class"] == label], simulated[simulated["class"] == label]
        if len(real_class) < MIN_REAL or len(sim_class) == 0:
            continue
        for quantity in QUANTITIES:
            a, b = sim_class[quantity].dropna(), real_class[quantity].dropna()
            if len(a) < MIN_REAL or len(b) < MIN_REAL:
                continue
            test = ks_2samp(a, b)
            rows.append({"class": label, "quantity": quantity, "n_sim": len(a), "n_bts": len(b),
                         "median_sim": a.median(), "median_bts": b.median(),
                         "iqr_sim": a.quantile(0.75) - a.quantile(0.25),
                         "iqr_bts": b.quantile(0.75) - b.quantile(0.25),
                         "ks_statistic": test.statistic, "ks_pvalue": test.pvalue})
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def plot(simulated, real, table, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    labels = list(dict.fromkeys(table["class"]))
    fig, axes = plt.subplots(len(labels), len(QUANTITIES), figsize=(3.2 * len(QUANTITIES), 2.4 * len(labels)))
    for i, label in enumerate(labels):
        for j, quantity in enumerate(QUANTITIES):
            ax = axes[i, j]
            for frame, name, colour in ((simulated, "simulation", "C0"), (real, "BTS", "C3")):
                values = np.sort(frame.loc[frame["class"] == label, quantity].dropna())
                ax.step(values, np.arange(1, len(values) + 1) / max(len(values), 1), color=colour,
                        where="post", label=f"{name} ({len(values)})")
            row = table[(table["class"] == label) & (table["quantity"] == quantity)]
            if len(row):
                ax.set_title(f"{label}: KS D={row['ks_statistic'].iloc[0]:.2f}", fontsize=9)
            ax.set_xlabel(quantity, fontsize=8)
            ax.tick_params(labelsize=7)
            if quantity in ("rise", "fade", "n_det"):
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.legend(fontsize=6, loc="lower right")
    fig.suptitle("Simulated ZTF BTS-like vs real BTS (empirical CDFs)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bts", default=os.path.join(os.path.dirname(REPO), "shared", "data", "bts"))
    parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results", "simulator"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    dataset = simulate("ztf", args.n, args.seed, bts_like=True)
    print(f"simulated {args.n} BTS-like objects in {time.perf_counter() - started:.1f} s")
    simulated, real = measure_simulation(dataset), read_bts(args.bts)
    table = compare(simulated, real)
    os.makedirs(args.out, exist_ok=True)
    table.to_csv(os.path.join(args.out, "table.csv"), index=False, float_format="%.4g")
    with open(os.path.join(args.out, "table.md"), "w") as stream:
        stream.write(markdown_table(table))
    plot(simulated, real, table, os.path.join(args.out, "distributions.png"))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
