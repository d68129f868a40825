"""SNANA data sets (text `.DAT` files and FITS HEAD/PHOT pairs, gzipped or not) -> a canonical data set.

    tl ingest snana --src PATH --out DIR [--labels NAME|MAP.yaml] [--survey NAME] [--sim-redshift]

Files are read by tl/ingest/snana_files.py (sncosmo's readers). Per object (a text file, a HEAD row):
- object_id: SNID. raw_label: the first of the label map's header keys holding a known value
  (default map `snphotcc`: SNTYPE, then the type named in SIM_COMMENT), mapped to a class by the
  map (tl/taxonomy.py SNANA_LABELS, or a YAML file: `keys: [SNTYPE]` and `map: {code: class}`).
- redshift: the first of REDSHIFT_KEYS that is > 0 (SNANA writes -9 when unknown), never a SIM_
  true redshift unless --sim-redshift (then SIM_REDSHIFT_KEYS come first). mwebv: MWEBV (< 0: NaN).
Per photometry row: FLUXCAL and FLUXCALERR (AB zero point 27.5) x 10**((23.9 - 27.5) / 2.5) -> uJy;
band: the row of the band table named `<survey>_<FLT or BAND letter>` (case-insensitive), with the
survey from the SURVEY header (or --survey); detected: the PHOTFLAG detection bit (4096, SNANA's
PHOTFLAG_DETECT) in files where any row carries it, else flux / error >= 5.
Counted drops: MJD = -777 end-of-light-curve markers, FITS rows outside every object, a missing
(NaN) or sentinel (-9, -99, -999, -9999) flux or error, an object without a mapped type.
Bad input (TLError naming file and line or row): a non-numeric value, an error <= 0 that is not a
sentinel, a band or survey with no row in the band table, a duplicate SNID, files of two surveys.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import numpy as np
import pandas as pd
import yaml

from tl.data import Dataset
from tl.errors import TLError
from tl.ingest import common
from tl.ingest.snana_files import SnanaFile, find_files, read_file
from tl.surveys import BAND_BY_NAME, survey_bands
from tl.taxonomy import CLASSES, SNANA_LABELS, SnanaLabels

FLUXCAL_ZERO_POINT = 27.5  # SNANA FLUXCAL: m_AB = 27.5 - 2.5 log10(FLUXCAL)
FLUXCAL_TO_UJY = float(common.zero_point_scale(FLUXCAL_ZERO_POINT))  # 10**(-1.44)
END_OF_LIGHT_CURVE = -777.0  # MJD of SNANA's end-of-light-curve marker rows
SENTINELS = (-9.0, -99.0, -999.0, -9999.0)  # SNANA's "undefined" values
PHOTFLAG_DETECT = 4096  # SNANA's detection bit of PHOTFLAG
DETECTION_SNR = 5.0
REDSHIFT_KEYS = ("REDSHIFT_FINAL", "REDSHIFT_HELIO", "REDSHIFT_SPEC", "HOSTGAL_SPECZ",
                 "HOSTGAL_PHOTOZ", "HOST_GALAXY_PHOTO-Z")
SIM_REDSHIFT_KEYS = ("SIM_REDSHIFT_CMB", "SIM_REDSHIFT", "SIM_REDSHIFT_HELIO")
UNKNOWN_TYPES = {"", "0", "-9", "-99", "-999", "None", "NULL", "UNKNOWN"}
NO_TYPE = "(no type)"
SURVEY_ALIASES = {"ps1md": "ps1", "panstarrs": "ps1", "sdss-ii": "sdss"}  # SNANA SURVEY spellings
REASON_MARKER = "end-of-light-curve marker (MJD -777)"
REASON_LOOSE = "FITS PHOT row outside every object's PTROBS_MIN..PTROBS_MAX"
REASON_MISSING = "missing flux or error (NaN)"
REASON_SENTINEL = "sentinel flux or error (-9, -99, -999, -9999)"


# ---------------------------------------------------------------- labels, redshift, survey


def resolve_labels(labels: str | None) -> SnanaLabels:
    """A known map by name (default snphotcc), or a YAML file with `keys` (or `key`) and `map`."""
    if labels is None:
        return SNANA_LABELS["snphotcc"]
    if labels in SNANA_LABELS:
        return SNANA_LABELS[labels]
    if not os.path.isfile(labels):
        raise TLError(f"--labels {labels}: neither a known map ({', '.join(SNANA_LABELS)}) nor a YAML file")
    try:
        with open(labels) as handle:
            spec = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TLError(f"{labels}: unreadable YAML ({common.first_line(error)})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("map"), dict):
        raise TLError(f"{labels}: expected a mapping with 'map: {{raw label: class}}' and 'keys: [...]'")
    keys = spec.get("keys", spec.get("key", ["SNTYPE"]))
    keys = [keys] if isinstance(keys, str) else keys
    if not keys or not all(isinstance(key, str) for key in keys):
        raise TLError(f"{labels}: 'keys' must be header key names, e.g. [SNTYPE]")
    for raw, label in spec["map"].items():
        if label not in CLASSES:
            raise TLError(f"{labels}: map entry {raw!r}: {label!r} is not a class ({', '.join(CLASSES)})")
    mapping = {_label_text(raw): label for raw, label in spec["map"].items()}
    return SnanaLabels(os.path.basename(labels), tuple(keys), mapping)


def _label_text(value) -> str:
    """A header type value as map text: 22.0 and 22 -> '22'; text stripped."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def raw_label(header: dict, labels: SnanaLabels) -> tuple[str, str | None]:
    """(raw label, the key it came from) of one object; NO_TYPE when no key holds a known value."""
    for key in labels.keys:
        value = header.get(key)
        if value is None:
            continue
        text = _label_text(value)
        if key == "SIM_COMMENT":  # "SN Type = IIP , MODEL = ..." -> IIP
            match = re.search(r"Type\s*=\s*([^\s,]+)", text)
            text = match.group(1) if match else text
        if text not in UNKNOWN_TYPES:
            return text, key
    return NO_TYPE, None


def header_number(header: dict, key: str) -> float:
    """A header value as a float (NaN when absent); a value that is not a number raises."""
    value = header.get(key)
    if value is None or (isinstance(value, str) and value.strip() in common.MISSING_TOKENS):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TLError(f"{header['_where']}: {key}: not a number ({value!r})") from None
    if not np.isfinite(number):
        raise TLError(f"{header['_where']}: {key}: not a finite number ({value!r})")
    return number


def header_redshift(header: dict, keys: tuple[str, ...]) -> tuple[float, str]:
    """The first of `keys` holding a redshift > 0, and which key; (NaN, 'none') when none does."""
    for key in keys:
        z = header_number(header, key)
        if z > 0:
            return z, key
    return float("nan"), "none"


def resolve_survey(files: list[SnanaFile], override: str | None) -> str:
    """The band-table survey of all files: --survey, else each file's SURVEY (one survey only)."""
    known = dict.fromkeys(band.survey for band in BAND_BY_NAME.values())
    found = {}
    for file in files:
        name = override or file.survey
        if not name:
            raise TLError(f"{file.path}: no SURVEY header; pass --survey (one of {', '.join(known)})")
        survey = SURVEY_ALIASES.get(name.lower(), name.lower())
        if survey not in known:
            raise TLError(f"{file.path}: survey {name!r} has no rows in the band table (known: "
                          f"{', '.join(known)}); add its rows to BANDS in tl/surveys.py, or pass --survey")
        found.setdefault(survey, file.path)
    if len(found) > 1:
        (a, path_a), (b, path_b) = list(found.items())[:2]
        raise TLError(f"files of two surveys: {a} ({path_a}) and {b} ({path_b}); ingest them separately")
    return next(iter(found))


# ---------------------------------------------------------------- objects and observations


def read_objects(files: list[SnanaFile], labels: SnanaLabels, redshift_keys) -> tuple[pd.DataFrame, dict]:
    """One row per object (OBJECT_FIELDS) and the counts of where labels and redshifts came from."""
    rows, first_seen = [], {}
    label_keys, redshift_counts = Counter(), Counter()
    for header in (header for file in files for header in file.heads):
        snid = str(header["SNID"]).strip()
        if snid in first_seen:
            raise TLError(f"{header['_where']}: duplicate SNID {snid!r} (first in {first_seen[snid]})")
        first_seen[snid] = header["_where"]
        label, key = raw_label(header, labels)
        redshift, source = header_redshift(header, redshift_keys)
        mwebv = header_number(header, "MWEBV")
        rows.append((snid, label, redshift, mwebv if mwebv >= 0 else np.nan))
        label_keys[key or "none"] += 1
        redshift_counts[source] += 1
    objects = pd.DataFrame(rows, columns=common.OBJECT_FIELDS)
    return objects, {"label_keys": dict(label_keys), "redshift_counts": dict(redshift_counts)}


def band_names(phot: pd.DataFrame, survey: str) -> np.ndarray:
    """FLT (or BAND) letters -> band-table names `<survey>_<letter>`; an unknown letter raises."""
    table = {band.name[len(survey) + 1:].lower(): band.name for band in survey_bands(survey)}
    letters = phot["FLT"].astype(str).str.strip()
    # some SNANA files spell a filter with its survey, e.g. DES-g or PS1::g: keep the letter
    names = letters.str.split(r"[-:]+").str[-1].str.lower().map(table)
    unknown = names.isna().to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise TLError(f"{common.where(phot, row)}: column FLT/BAND: unknown band {letters.iloc[row]!r} of "
                      f"survey {survey} (known: {', '.join(table)}; add a row {survey}_<letter> to BANDS "
                      "in tl/surveys.py)")
    return names.to_numpy(dtype=object)


def read_observations(files: list[SnanaFile], survey: str, drops: common.DropLog) -> tuple[pd.DataFrame, int]:
    """Every photometry row -> observations in uJy, with counted drops; and the raw row count."""
    pieces = []
    for file in files:
        phot = file.phot.reset_index(drop=True)
        if "FLT" not in phot.columns:  # newer FITS files call the filter column BAND
            if "BAND" not in phot.columns:
                raise TLError(f"{file.path}: no FLT or BAND column")
            phot = phot.rename(columns={"BAND": "FLT"})
        flags = phot.get("PHOTFLAG")
        by_flag = flags is not None and bool((flags.fillna(0).astype(np.int64) & PHOTFLAG_DETECT).any())
        pieces.append(phot.drop(columns=["BAND"], errors="ignore").assign(_by_flag=by_flag))
    phot = pd.concat(pieces, ignore_index=True)
    n_rows = len(phot)
    mjd = common.to_float(phot, "MJD")
    common.require_present(phot, "MJD", mjd)
    phot = common.drop_rows(phot, phot["SNID"].isna().to_numpy() & (mjd != END_OF_LIGHT_CURVE), drops, REASON_LOOSE)
    phot = common.drop_rows(phot, common.to_float(phot, "MJD") == END_OF_LIGHT_CURVE, drops, REASON_MARKER)
    flux, error = common.to_float(phot, "FLUXCAL"), common.to_float(phot, "FLUXCALERR")
    missing = np.isnan(flux) | np.isnan(error)
    phot, flux, error = phot[~missing], flux[~missing], error[~missing]
    drops.drop_observations(REASON_MISSING, int(missing.sum()))
    sentinel = np.isin(error, SENTINELS) | np.isin(flux, SENTINELS[2:])
    phot, flux, error = phot[~sentinel], flux[~sentinel], error[~sentinel]
    drops.drop_observations(REASON_SENTINEL, int(sentinel.sum()))
    common.require_positive(phot, "FLUXCALERR", error)
    flags = phot["PHOTFLAG"].fillna(0).astype(np.int64).to_numpy() if "PHOTFLAG" in phot else 0
    detected = np.where(phot["_by_flag"].to_numpy(), (flags & PHOTFLAG_DETECT) > 0, flux / error >= DETECTION_SNR)
    observations = pd.DataFrame({
        "object_id": phot["SNID"].astype(str).str.strip().to_numpy(), "mjd": common.to_float(phot, "MJD"),
        "band": band_names(phot, survey), "flux": flux * FLUXCAL_TO_UJY,
        "flux_err": error * FLUXCAL_TO_UJY, "detected": detected.astype(bool)})
    return observations, n_rows


def read(src: str, labels: str | None = None, survey: str | None = None,
         sim_redshift: bool = False) -> tuple[common.RawSource, SnanaLabels, str]:
    """Read an SNANA data set into a RawSource; also the label map and the survey used."""
    label_map = resolve_labels(labels)
    files = [read_file(path) for path in find_files(src)]
    survey_name = resolve_survey(files, survey)
    redshift_keys = (SIM_REDSHIFT_KEYS if sim_redshift else ()) + REDSHIFT_KEYS
    objects, counts = read_objects(files, label_map, redshift_keys)
    drops = common.DropLog()
    observations, n_rows = read_observations(files, survey_name, drops)
    notes = {
        "label_map": label_map.name, "label_keys_tried": list(label_map.keys), **counts,
        "redshift_source": f"first of {', '.join(redshift_keys)} that is > 0, else NaN",
        "flux_conversion": f"FLUXCAL (AB zero point {FLUXCAL_ZERO_POINT}) x 10**((23.9 - 27.5) / 2.5)",
        "detected": f"PHOTFLAG & {PHOTFLAG_DETECT} in files where a row has that bit, else S/N >= {DETECTION_SNR}",
        "mwebv": "header MWEBV (NaN when absent or < 0)",
        "files": [os.path.relpath(file.path, src) if os.path.isdir(src) else os.path.basename(file.path)
                  for file in files][:1000],
        "n_files": len(files),
    }
    raw = common.RawSource(objects, observations, drops, n_rows, objects["raw_label"].copy(), notes)
    return raw, label_map, survey_name


def ingest(src: str, out: str, seed: int = 0, labels: str | None = None, survey: str | None = None,
           sim_redshift: bool = False) -> Dataset:
    """Convert an SNANA data set (folder, .LIST file or one file) into a canonical data set at `out`."""
    raw, label_map, survey_name = read(src, labels, survey, sim_redshift)
    return common.write(raw, "snana", survey_name, src, out, seed, label_map.raw_labels)
