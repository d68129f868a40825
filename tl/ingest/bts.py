"""ZTF Bright Transient Survey: ANTARES alert light curves (one CSV per object) + the BTS catalogue.

`src` is the bts/ folder: `lightcurves/<ZTFID>.csv` (ant_mjd, ant_passband, ant_mag, ant_magerr;
detections only) and the catalogue snapshot CATALOGUE (type, redshift, A_V). The older snapshot
OTHER_CATALOGUE is only compared: objects whose type or redshift differ are listed in dataset.json.
Detections more than FAR_FROM_BRIGHTEST_DAYS from their object's brightest detection are counted
and listed in dataset.json (`far_from_brightest`), not dropped.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd

from tl.data import Dataset
from tl.errors import TLError
from tl.ingest import common

CATALOGUE = "bts_catalog_2021-09-22.csv"
OTHER_CATALOGUE = "bts_catalog_2021-04-02.csv"
LIGHT_CURVES = "lightcurves"
# ANTARES passband names of ZTF filters.
BANDS = {"g": "ztf_g", "R": "ztf_r", "i": "ztf_i"}
R_V = 3.1  # mwebv = E(B-V) = A_V / R_V (Cardelli et al. 1989 Milky-Way value)
LIGHT_CURVE_COLUMNS = ["ant_mjd", "ant_passband", "ant_mag", "ant_magerr"]
CATALOGUE_COLUMNS = ["ZTFID", "type", "redshift", "A_V"]
# A supernova fades below the BTS depth within months; a detection a year from the brightest is
# another source at the position (a host-subtraction residual, a nuclear flare, a later transient).
FAR_FROM_BRIGHTEST_DAYS = 365.0
FAR_FROM_BRIGHTEST_LISTED = 10  # objects named in dataset.json, most such detections first


def read_catalogue(path: str) -> pd.DataFrame:
    """ZTFID, type, redshift (NaN when missing or '-'), A_V of one catalogue snapshot."""
    frame = common.read_csv(path, CATALOGUE_COLUMNS, dtype=str, keep_default_na=False)
    frame["ZTFID"] = frame["ZTFID"].str.strip()
    empty = (frame["ZTFID"] == "").to_numpy()
    if empty.any():
        raise TLError(f"{common.where(frame, int(np.flatnonzero(empty)[0]))}: column 'ZTFID': empty value")
    repeated = frame["ZTFID"].duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise TLError(f"{common.where(frame, row)}: duplicate ZTFID {frame['ZTFID'].iloc[row]!r}")
    frame["redshift"] = common.to_float(frame, "redshift")
    frame["A_V"] = common.to_float(frame, "A_V")
    frame["type"] = frame["type"].str.strip()
    return frame


def compare_snapshots(current: pd.DataFrame, other_path: str) -> dict:
    """Objects whose type or redshift differ in the other snapshot (for the record only)."""
    other = read_catalogue(other_path)
    both = current.merge(other, on="ZTFID", suffixes=("", "_other")).set_index("ZTFID")
    type_changed = both[both["type"] != both["type_other"]]
    z, z_other = both["redshift"].to_numpy(), both["redshift_other"].to_numpy()
    z_changed = both[~(np.isclose(z, z_other) | (np.isnan(z) & np.isnan(z_other)))]
    return {
        "file": os.path.basename(other_path),
        "n_objects": int(len(other)),
        "n_objects_in_both": int(len(both)),
        "type_differences": {k: {"used": r["type"], "other": r["type_other"]} for k, r in type_changed.iterrows()},
        "redshift_differences": {k: {"used": _number(r["redshift"]), "other": _number(r["redshift_other"])}
                                 for k, r in z_changed.iterrows()},
    }


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def object_id_of(path: str) -> str:
    """ZTFID from a light-curve file name, e.g. lightcurves/ZTF18aaqedfj.csv -> ZTF18aaqedfj."""
    return os.path.splitext(os.path.basename(path))[0]


def read_light_curves(paths: list[str], drops: common.DropLog) -> tuple[pd.DataFrame, int]:
    """All light-curve files -> observations in uJy (detections); returns them and the raw row count."""
    raw = common.read_small_csvs(paths, LIGHT_CURVE_COLUMNS)
    n_rows = len(raw)
    raw["object_id"] = raw["_file"].map({path: object_id_of(path) for path in paths})
    mjd = common.to_float(raw, "ant_mjd")
    common.require_present(raw, "ant_mjd", mjd)
    bands = common.map_bands(raw, "ant_passband", BANDS, "BANDS in tl/ingest/bts.py")
    magnitude, magnitude_err = common.to_float(raw, "ant_mag"), common.to_float(raw, "ant_magerr")
    common.require_positive(raw, "ant_magerr", magnitude_err)
    flux, flux_err = common.magnitude_to_flux(magnitude, magnitude_err)
    observations = pd.DataFrame({"object_id": raw["object_id"].to_numpy(), "mjd": mjd, "band": bands,
                                 "flux": flux, "flux_err": flux_err, "detected": True})
    missing = np.isnan(magnitude) | np.isnan(magnitude_err)
    return common.drop_rows(observations, missing, drops, "missing magnitude or error"), n_rows


def far_from_brightest(observations: pd.DataFrame, days: float = FAR_FROM_BRIGHTEST_DAYS) -> dict:
    """Detections more than `days` from their object's brightest detection: counts, and the objects
    with the most of them ({object_id: count})."""
    if observations.empty:
        return {"days": days, "objects": 0, "detections": 0, "most": {}}
    brightest_row = observations.groupby("object_id")["flux"].idxmax()
    brightest_mjd = observations.loc[brightest_row].set_index("object_id")["mjd"]
    offset = observations["mjd"] - observations["object_id"].map(brightest_mjd)
    per_object = observations.loc[offset.abs() > days, "object_id"].value_counts()
    return {"days": days, "objects": int(len(per_object)), "detections": int(per_object.sum()),
            "most": {str(k): int(v) for k, v in per_object.head(FAR_FROM_BRIGHTEST_LISTED).items()}}


def read(src: str) -> common.RawSource:
    """Read the bts/ folder into a RawSource (all catalogue objects, every light-curve row)."""
    catalogue_path = os.path.join(src, CATALOGUE)
    curves_dir = os.path.join(src, LIGHT_CURVES)
    if not os.path.isfile(catalogue_path):
        raise TLError(f"{src}: missing the BTS catalogue {CATALOGUE}")
    if not os.path.isdir(curves_dir):
        raise TLError(f"{src}: missing the folder {LIGHT_CURVES}/ of light-curve CSVs")
    catalogue = read_catalogue(catalogue_path)
    paths = sorted(glob.glob(os.path.join(curves_dir, "*.csv")))
    drops = common.DropLog()
    observations, n_rows = read_light_curves(paths, drops)

    with_curve = {object_id_of(path) for path in paths}
    no_curve = ~catalogue["ZTFID"].isin(with_curve)
    drops.drop_objects("no light curve file", int(no_curve.sum()))
    uncatalogued = sorted(with_curve - set(catalogue["ZTFID"]))
    drops.drop_objects("light curve without catalogue entry", len(uncatalogued))
    observations = common.drop_rows(observations, observations["object_id"].isin(uncatalogued).to_numpy(),
                                    drops, "object dropped (no catalogue entry)")
    kept = catalogue[~no_curve]
    objects = pd.DataFrame({"object_id": kept["ZTFID"], "raw_label": kept["type"],
                            "redshift": kept["redshift"], "mwebv": kept["A_V"] / R_V})
    notes = {"catalogue": CATALOGUE, "mwebv": f"A_V / {R_V} from the catalogue",
             "redshift_source": "catalogue redshift (NaN when missing)", "detections_only": True}
    other_path = os.path.join(src, OTHER_CATALOGUE)
    if os.path.isfile(other_path):
        notes["other_catalogue"] = compare_snapshots(catalogue, other_path)
    source_labels = pd.concat([catalogue["type"], pd.Series("(no catalogue entry)", index=uncatalogued)])
    return common.RawSource(objects, observations, drops, n_rows, source_labels, notes)


def ingest(src: str, out: str, seed: int = 0) -> Dataset:
    """Convert the bts/ folder into a canonical ZTF data set at `out`."""
    return common.write(read(src), "bts", "ztf", src, out, seed, quality=far_from_brightest_report)


def far_from_brightest_report(observations: pd.DataFrame) -> tuple[str, dict]:
    """The printed line and the dataset.json entry of far_from_brightest (ingested detections)."""
    far = far_from_brightest(observations)
    line = (f"bts: {far['detections']} detections of {far['objects']} objects lie more than {far['days']:g} days "
            "from their object's brightest detection (kept; listed in dataset.json, far_from_brightest)")
    return line, {"far_from_brightest": far}
