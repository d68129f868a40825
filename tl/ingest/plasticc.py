"""PLAsTiCC training set (LSST simulations): light curves in FLUXCAL + unblinded metadata.

`src` is the plasticc/ folder with one `*metadata.csv` and one `*lightcurves.csv[.gz]`.
Redshift: hostgal_specz when > 0, else hostgal_photoz when > 0, else NaN -- what a survey would
have, never the simulation truth `true_z`. Labels from `true_target`; mwebv from `mwebv`.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd

from tl.data import Dataset
from tl.errors import TLError
from tl.ingest import common

FLUXCAL_ZERO_POINT = 27.5  # SNANA FLUXCAL: m_AB = 27.5 - 2.5 log10(FLUXCAL)
FLUXCAL_TO_UJY = float(common.zero_point_scale(FLUXCAL_ZERO_POINT))  # 10**(-1.44)
BANDS = {0: "lsst_u", 1: "lsst_g", 2: "lsst_r", 3: "lsst_i", 4: "lsst_z", 5: "lsst_y"}  # `passband`
METADATA_COLUMNS = ["object_id", "true_target", "hostgal_specz", "hostgal_photoz", "mwebv"]
LIGHT_CURVE_COLUMNS = ["object_id", "mjd", "passband", "flux", "flux_err", "detected_bool"]


def find_one(src: str, pattern: str, what: str) -> str:
    matches = sorted(glob.glob(os.path.join(src, pattern)))
    if len(matches) != 1:
        found = ", ".join(os.path.basename(m) for m in matches) or "none"
        raise TLError(f"{src}: expected one {what} file matching {pattern!r}, found {found}")
    return matches[0]


def read_metadata(path: str) -> tuple[pd.DataFrame, dict]:
    """object_id (as text), raw_label (true_target as text), redshift, mwebv; and where z came from."""
    frame = common.read_csv(path, METADATA_COLUMNS, skipinitialspace=True)
    object_id = common.to_float(frame, "object_id")
    common.require_present(frame, "object_id", object_id)
    target = common.to_float(frame, "true_target")
    common.require_present(frame, "true_target", target)
    specz, photoz = common.to_float(frame, "hostgal_specz"), common.to_float(frame, "hostgal_photoz")
    has_specz, has_photoz = specz > 0, photoz > 0  # NaN compares False
    redshift = np.where(has_specz, specz, np.where(has_photoz, photoz, np.nan))
    redshift_counts = {"hostgal_specz": int(has_specz.sum()), "hostgal_photoz": int((~has_specz & has_photoz).sum()),
                       "none": int((~has_specz & ~has_photoz).sum())}
    objects = pd.DataFrame({"object_id": object_id.astype(np.int64).astype(str),
                            "raw_label": target.astype(np.int64).astype(str),
                            "redshift": redshift, "mwebv": common.to_float(frame, "mwebv")})
    repeated = objects["object_id"].duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise TLError(f"{common.where(frame, row)}: duplicate object_id {objects['object_id'].iloc[row]}")
    return objects, redshift_counts


def read_light_curves(path: str, drops: common.DropLog) -> tuple[pd.DataFrame, int]:
    """Observations in uJy; rows with an empty flux or error are counted drops."""
    raw = common.read_csv(path, LIGHT_CURVE_COLUMNS, skipinitialspace=True)
    object_id = common.to_float(raw, "object_id")
    common.require_present(raw, "object_id", object_id)
    mjd = common.to_float(raw, "mjd")
    common.require_present(raw, "mjd", mjd)
    bands = common.map_bands(raw, "passband", BANDS, "BANDS in tl/ingest/plasticc.py")
    flux, flux_err = common.to_float(raw, "flux"), common.to_float(raw, "flux_err")
    common.require_positive(raw, "flux_err", flux_err)
    detected = common.to_float(raw, "detected_bool")
    bad = ~np.isin(detected, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TLError(f"{common.where(raw, row)}: column 'detected_bool': must be 0 or 1, "
                      f"found {common.shown(raw['detected_bool'].iloc[row])}")
    observations = pd.DataFrame({
        "object_id": object_id.astype(np.int64).astype(str), "mjd": mjd, "band": bands,
        "flux": flux * FLUXCAL_TO_UJY, "flux_err": flux_err * FLUXCAL_TO_UJY, "detected": detected == 1.0,
    })
    missing = np.isnan(flux) | np.isnan(flux_err)
    return common.drop_rows(observations, missing, drops, "missing flux or error"), len(raw)


def read(src: str) -> common.RawSource:
    """Read the plasticc/ folder into a RawSource."""
    if not os.path.isdir(src):
        raise TLError(f"--src {src}: not a folder (expected the plasticc/ folder)")
    metadata_path = find_one(src, "*metadata.csv", "metadata")
    curves_path = find_one(src, "*lightcurves.csv*", "light-curve")
    objects, redshift_counts = read_metadata(metadata_path)
    drops = common.DropLog()
    observations, n_rows = read_light_curves(curves_path, drops)
    notes = {
        "redshift_source": "hostgal_specz when > 0, else hostgal_photoz when > 0, else NaN (not true_z)",
        "redshift_counts": redshift_counts,  # over all metadata rows, before any drop
        "flux_conversion": f"FLUXCAL (AB zero point {FLUXCAL_ZERO_POINT}) x 10**((23.9 - 27.5) / 2.5)",
        "mwebv": "metadata column mwebv",
        "files": [os.path.basename(metadata_path), os.path.basename(curves_path)],
    }
    return common.RawSource(objects, observations, drops, n_rows, objects["raw_label"].copy(), notes)


def ingest(src: str, out: str, seed: int = 0) -> Dataset:
    """Convert the plasticc/ folder into a canonical LSST data set at `out`."""
    return common.write(read(src), "plasticc", "lsst", src, out, seed)
