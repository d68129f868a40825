"""ZTF forced photometry in fpbot format: one CSV per object with a `#key=value` header.

`src` is a folder of such CSVs (or one file). The label and redshift come from the `#bts_class`
and `#bts_z` header lines ('-' means unknown); the object id from `#name` (else the file name).
Flux: f_uJy = ampl_corr * 10**((23.9 - magzp) / 2.5) (ampl / ampl.err when a file has no baseline-
corrected columns); detected = f / sigma_f >= 5. Rows with a NaN amplitude or zero point (fpbot's
failed fits) are counted drops. fpbot quality columns (`flag`, `data_hasnan`) are not used.
"""

from __future__ import annotations

import csv
import glob
import os

import numpy as np
import pandas as pd

from tl.data import Dataset
from tl.errors import TLError
from tl.ingest import common

# fpbot `filter` values (both spellings occur in the same files).
BANDS = {"ZTF_g": "ztf_g", "ZTF g": "ztf_g", "ZTF_r": "ztf_r", "ZTF r": "ztf_r",
         "ZTF_i": "ztf_i", "ZTF i": "ztf_i"}
AMPLITUDE_COLUMNS = (("ampl_corr", "ampl_err_corr"), ("ampl", "ampl.err"))  # preferred first
DETECTION_SNR = 5.0
NO_CLASS = "(no bts_class header)"


def read_header(path: str) -> tuple[dict[str, str], int, list[str]]:
    """The `#key=value` lines at the top of a file, how many lines they take, and the column names."""
    header, n_lines, columns = {}, 0, []
    try:
        with open(path, newline="") as handle:
            for line in handle:
                if not line.startswith("#"):
                    columns = [name.strip() for name in next(csv.reader([line]))]
                    break
                key, _, value = line[1:].rstrip("\r\n").partition("=")
                header[key.strip()] = value.strip()
                n_lines += 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise TLError(f"{path}: unreadable file ({common.first_line(error)})") from None
    return header, n_lines, columns


def header_redshift(path: str, header: dict[str, str]) -> float:
    text = header.get("bts_z", "-")
    if text in common.MISSING_TOKENS:
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise TLError(f"{path}: header line '#bts_z={text}': not a number") from None
    return value


def read_file(path: str, drops: common.DropLog) -> tuple[dict, pd.DataFrame, int, str]:
    """One fpbot file -> (object record, observations in uJy, raw row count, amplitude column used)."""
    header, n_header, columns = read_header(path)
    object_id = header.get("name") or os.path.basename(path).removesuffix(".csv").removesuffix("_bl")
    value_column, error_column = next(
        (pair for pair in AMPLITUDE_COLUMNS if set(pair) <= set(columns)), AMPLITUDE_COLUMNS[0])
    raw = common.read_csv(path, ["obsmjd", "filter", "magzp", value_column, error_column], skiprows=n_header)
    mjd = common.to_float(raw, "obsmjd")
    common.require_present(raw, "obsmjd", mjd)
    bands = common.map_bands(raw, "filter", BANDS, "BANDS in tl/ingest/ztf_forced.py")
    amplitude, amplitude_err = common.to_float(raw, value_column), common.to_float(raw, error_column)
    common.require_positive(raw, error_column, amplitude_err)
    scale = common.zero_point_scale(common.to_float(raw, "magzp"))
    flux, flux_err = amplitude * scale, amplitude_err * scale
    observations = pd.DataFrame({"object_id": object_id, "mjd": mjd, "band": bands, "flux": flux,
                                 "flux_err": flux_err, "detected": flux / flux_err >= DETECTION_SNR})
    missing = np.isnan(flux) | np.isnan(flux_err)
    observations = common.drop_rows(observations, missing, drops, "NaN amplitude or zero point")
    record = {"object_id": object_id, "raw_label": header.get("bts_class", NO_CLASS),
              "redshift": header_redshift(path, header), "mwebv": np.nan}
    return record, observations, len(raw), value_column


def read(src: str) -> common.RawSource:
    """Read a folder of fpbot CSVs (or one file) into a RawSource."""
    paths = [src] if os.path.isfile(src) else sorted(glob.glob(os.path.join(src, "*.csv")))
    if not paths:
        raise TLError(f"{src}: no fpbot .csv files")
    drops = common.DropLog()
    records, pieces, n_rows, used = [], [], 0, {}
    for path in paths:
        record, observations, n_file_rows, value_column = read_file(path, drops)
        if any(record["object_id"] == seen["object_id"] for seen in records):
            raise TLError(f"{path}: object {record['object_id']!r} already read from another file")
        records.append(record)
        pieces.append(observations)
        n_rows += n_file_rows
        used[value_column] = used.get(value_column, 0) + 1
    objects = pd.DataFrame(records, columns=common.OBJECT_FIELDS)
    notes = {"amplitude_columns_used": used, "detection": f"flux / flux_err >= {DETECTION_SNR}",
             "redshift_source": "#bts_z header ('-' -> NaN)", "mwebv": "not in fpbot files: NaN",
             "flux_conversion": "amplitude x 10**((23.9 - magzp) / 2.5)"}
    return common.RawSource(objects, pd.concat(pieces, ignore_index=True), drops, n_rows,
                            objects["raw_label"].copy(), notes)


def ingest(src: str, out: str, seed: int = 0) -> Dataset:
    """Convert fpbot forced-photometry CSVs into a canonical ZTF data set at `out`."""
    return common.write(read(src), "ztf-forced", "ztf", src, out, seed)
