"""ALeRCE alert photometry: detections, non-detections and labels of ZTF objects.

`src` is the alerce/ folder with one `*labels.csv` (objectId, classALeRCE), one `*detections*.csv`
(objectId, fid, mjd, magpsf, sigmapsf, isdiffpos) and one `*non_detections.csv` (objectId, fid, jd,
diffmaglim). Detections: flux from magpsf (difference-image photometry; the `*_corr` columns
are not used), negative when isdiffpos < 0 (a negative difference
image; magpsf is the magnitude of |flux|), detected True. Non-detections: flux 0 and
flux_err = f(diffmaglim) / 5 (diffmaglim is the 5-sigma limiting magnitude), detected False,
mjd = jd - 2400000.5. Redshift and mwebv are not in these files: NaN.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pandas as pd

from tl.data import Dataset
from tl.errors import TLError
from tl.ingest import common

BANDS = {1: "ztf_g", 2: "ztf_r", 3: "ztf_i"}  # ZTF `fid`
LIMIT_SIGMA = 5.0  # diffmaglim is a 5-sigma limit
JD_TO_MJD = 2400000.5
SIGN = {"1": 1.0, "1.0": 1.0, "t": 1.0, "true": 1.0, "-1": -1.0, "-1.0": -1.0, "f": -1.0, "false": -1.0}
LABEL_COLUMNS = ["objectId", "classALeRCE"]
DETECTION_COLUMNS = ["objectId", "fid", "mjd", "magpsf", "sigmapsf", "isdiffpos"]
NON_DETECTION_COLUMNS = ["objectId", "fid", "jd", "diffmaglim"]


def find_files(src: str) -> dict[str, str]:
    """The labels, detections and non-detections files in `src` (exactly one of each)."""
    if not os.path.isdir(src):
        raise TLError(f"--src {src}: not a folder (expected the alerce/ folder)")
    names = sorted(os.path.basename(path) for path in glob.glob(os.path.join(src, "*.csv")))
    kinds = {
        "labels": [n for n in names if n.endswith("labels.csv")],
        "non_detections": [n for n in names if "non_detections" in n],
        "detections": [n for n in names if "detections" in n and "non_detections" not in n],
    }
    for kind, found in kinds.items():
        if len(found) != 1:
            raise TLError(f"{src}: expected one {kind} CSV, found {', '.join(found) or 'none'}")
    return {kind: os.path.join(src, found[0]) for kind, found in kinds.items()}


def read_labels(path: str) -> pd.DataFrame:
    frame = common.read_csv(path, LABEL_COLUMNS, dtype=str, keep_default_na=False)
    frame["objectId"] = frame["objectId"].str.strip()
    repeated = frame["objectId"].duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise TLError(f"{common.where(frame, row)}: duplicate objectId {frame['objectId'].iloc[row]!r}")
    return pd.DataFrame({"object_id": frame["objectId"], "raw_label": frame["classALeRCE"].str.strip(),
                         "redshift": np.nan, "mwebv": np.nan})


def read_detections(path: str, drops: common.DropLog) -> tuple[pd.DataFrame, int]:
    raw = common.read_csv(path, DETECTION_COLUMNS, dtype={"objectId": str, "isdiffpos": str})
    mjd = common.to_float(raw, "mjd")
    common.require_present(raw, "mjd", mjd)
    bands = common.map_bands(raw, "fid", BANDS, "BANDS in tl/ingest/alerce.py")
    sign = raw["isdiffpos"].astype(str).str.strip().str.lower().map(SIGN)
    unknown = sign.isna().to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise TLError(f"{common.where(raw, row)}: column 'isdiffpos': expected 1/-1 or t/f, "
                      f"found {raw['isdiffpos'].iloc[row]!r}")
    magnitude, magnitude_err = common.to_float(raw, "magpsf"), common.to_float(raw, "sigmapsf")
    common.require_positive(raw, "sigmapsf", magnitude_err)
    flux, flux_err = common.magnitude_to_flux(magnitude, magnitude_err)
    observations = pd.DataFrame({"object_id": raw["objectId"].to_numpy(), "mjd": mjd, "band": bands,
                                 "flux": flux * sign.to_numpy(dtype=float), "flux_err": flux_err,
                                 "detected": True})
    missing = np.isnan(magnitude) | np.isnan(magnitude_err)
    return common.drop_rows(observations, missing, drops, "detection with missing magpsf or sigmapsf"), len(raw)


def read_non_detections(path: str, drops: common.DropLog) -> tuple[pd.DataFrame, int]:
    raw = common.read_csv(path, NON_DETECTION_COLUMNS, dtype={"objectId": str})
    jd = common.to_float(raw, "jd")
    common.require_present(raw, "jd", jd)
    bands = common.map_bands(raw, "fid", BANDS, "BANDS in tl/ingest/alerce.py")
    limit = common.to_float(raw, "diffmaglim")
    limit_flux, _ = common.magnitude_to_flux(limit, 0.0)
    observations = pd.DataFrame({"object_id": raw["objectId"].to_numpy(), "mjd": jd - JD_TO_MJD, "band": bands,
                                 "flux": 0.0, "flux_err": limit_flux / LIMIT_SIGMA, "detected": False})
    missing = np.isnan(limit)
    return common.drop_rows(observations, missing, drops, "non-detection with missing diffmaglim"), len(raw)


def read(src: str) -> common.RawSource:
    """Read the alerce/ folder into a RawSource (objects are the rows of the labels file)."""
    paths = find_files(src)
    objects = read_labels(paths["labels"])
    drops = common.DropLog()
    detections, n_detections = read_detections(paths["detections"], drops)
    non_detections, n_non_detections = read_non_detections(paths["non_detections"], drops)
    observations = pd.concat([detections, non_detections], ignore_index=True)
    notes = {
        "files": {kind: os.path.basename(path) for kind, path in paths.items()},
        "n_source_detections": n_detections, "n_source_non_detections": n_non_detections,
        "detections": "magpsf/sigmapsf -> uJy, sign from isdiffpos, detected True",
        "non_detections": f"flux 0, flux_err = f(diffmaglim) / {LIMIT_SIGMA}, detected False, mjd = jd - {JD_TO_MJD}",
        "redshift_source": "none (NaN)", "mwebv": "none (NaN)",
    }
    return common.RawSource(objects, observations, drops, n_detections + n_non_detections,
                            objects["raw_label"].copy(), notes)


def ingest(src: str, out: str, seed: int = 0) -> Dataset:
    """Convert the alerce/ folder into a canonical ZTF data set at `out`."""
    return common.write(read(src), "alerce", "ztf", src, out, seed)
