"""Reading SNANA files: the text layout (one object per `.DAT` file) and FITS HEAD/PHOT pairs,
gzipped or not, through sncosmo's readers (`sncosmo.read_snana_ascii`, `sncosmo.read_snana_fits`).

What this module adds to them: finding the files (a folder, a `.LIST` file, or one file); where
every row came from (file and line, or FITS row) for error messages; the PHOT rows that
`read_snana_fits` does not return (those outside every object's PTROBS_MIN..PTROBS_MAX, i.e. the
MJD = -777 end-of-light-curve markers), so that every row is counted; and the checks the readers
do not make (a text OBS row with a number of values other than NVAR, NOBS disagreeing with the
rows, FITS pointers outside the PHOT table or overlapping). Text header values are taken as the
reader parses them (the first word after the key), except SNID and SURVEY (kept as written, so
`000123` stays `000123`) and SIM_COMMENT (the whole line).
"""

from __future__ import annotations

import glob
import gzip
import io
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sncosmo
from astropy.io import fits

from tl.errors import TLError
from tl.ingest.common import first_line

TEXT_SUFFIXES = (".dat", ".dat.gz")
HEAD_SUFFIXES = ("head.fits", "head.fits.gz", "head.fit", "head.fit.gz")
PHOT_COLUMNS = ("MJD", "FLT", "BAND", "FLUXCAL", "FLUXCALERR", "PHOTFLAG")  # those used, when present


@dataclass
class SnanaFile:
    """One text file or FITS pair: its objects' headers and every photometry row it holds."""
    path: str  # the text file, or the HEAD file of a FITS pair
    survey: str | None  # its SURVEY header value
    heads: list[dict]  # one header per object (key -> value as read), each with "_where" for errors
    phot: pd.DataFrame  # PHOT_COLUMNS present, SNID (None outside every object), _file, _line, _unit


def find_files(src: str) -> list[str]:
    """The text files and HEAD files of `src`: a folder (searched recursively), a `.LIST` file of
    names (relative to its folder, as SNANA writes them), or one file."""
    if os.path.isdir(src):
        paths = sorted(path for path in glob.glob(os.path.join(src, "**", "*"), recursive=True)
                       if os.path.isfile(path) and _is_snana(path))
    elif src.upper().endswith(".LIST"):
        with open(src) as handle:
            names = [line.split()[0] for line in handle if line.strip() and not line.startswith("#")]
        paths = [os.path.join(os.path.dirname(src), name) for name in names]
        missing = [path for path in paths if not os.path.isfile(path)]
        if missing:
            raise TLError(f"{src}: lists {os.path.basename(missing[0])}, which does not exist")
    else:
        paths = [src]
    if not paths:
        raise TLError(f"{src}: no SNANA files (*.DAT text files or *HEAD.FITS files, gzipped or not)")
    return paths


def _is_snana(path: str) -> bool:
    name = path.lower()
    return name.endswith(TEXT_SUFFIXES) or name.endswith(HEAD_SUFFIXES)


def read_file(path: str) -> SnanaFile:
    """A text file or, for a HEAD file, its FITS pair."""
    if path.lower().endswith(HEAD_SUFFIXES):
        return read_fits(path)
    return read_text(path)


# ---------------------------------------------------------------- text layout


def read_text(path: str) -> SnanaFile:
    """One SNANA text file (one object): header keys anywhere before or between rows, OBS rows."""
    try:
        opener = gzip.open if path.lower().endswith(".gz") else open
        with opener(path, "rt") as handle:
            text = handle.read()
        meta, tables = sncosmo.read_snana_ascii(io.StringIO(text), default_tablename="OBS")
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise TLError(f"{path}: unreadable file ({first_line(error)})") from None
    except Exception as error:  # sncosmo raises ValueError, IndexError and bare Exception on bad layouts
        raise TLError(f"{path}: not an SNANA text file ({first_line(error)})") from None
    raw, lines = _scan_text(path, text)
    table = tables.get("OBS")
    phot = table.to_pandas() if table is not None else pd.DataFrame(columns=["MJD"])
    if len(phot) != len(lines):
        raise TLError(f"{path}: {len(lines)} OBS lines but the reader found {len(phot)} rows")
    if "NOBS" in meta and _integer(meta["NOBS"]) != len(phot):
        raise TLError(f"{path}: NOBS: {meta['NOBS']} but {len(phot)} OBS rows")
    if "SNID" not in raw:
        raise TLError(f"{path}: not an SNANA object file (no SNID: key)")
    header = {**meta, **raw, "_where": path}
    phot = phot[[name for name in PHOT_COLUMNS if name in phot.columns]].copy()
    phot["SNID"] = raw["SNID"]
    phot["_file"], phot["_line"], phot["_unit"] = path, np.asarray(lines, dtype=np.int64), "line"
    return SnanaFile(path, raw.get("SURVEY"), [header], phot)


def _scan_text(path: str, text: str) -> tuple[dict, list[int]]:
    """(SNID, SURVEY, SIM_COMMENT as written; line number of each OBS row), checking each OBS row
    holds NVAR values and that the file describes one object."""
    raw, lines, nvar = {}, [], None
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#")[0].split()
        if not words:
            continue
        key = words[0]
        if key.startswith("NVAR") and len(words) > 1:
            nvar = _integer(words[1])
        elif key == "OBS:":
            if nvar is None or len(words) - 1 != nvar:
                raise TLError(f"{path}: line {number}: {len(words) - 1} values, NVAR is {nvar}")
            lines.append(number)
        elif key == "SIM_COMMENT:":
            raw["SIM_COMMENT"] = line.split(":", 1)[1].strip()
        else:  # keys may share a line: "SURVEY: DES   SNID: 000123   IAUC: UNKNOWN"
            for word, value in zip(words, words[1:]):
                if word in ("SNID:", "SURVEY:"):
                    if word == "SNID:" and "SNID" in raw:
                        raise TLError(f"{path}: line {number}: a second SNID: key (one object per text file)")
                    raw[word[:-1]] = value
    return raw, lines


def _integer(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- FITS layout


def phot_file_of(head_path: str) -> str:
    """The PHOT file beside a HEAD file: same name with PHOT for HEAD (SNANA's naming)."""
    folder, name = os.path.split(head_path)
    i = name.upper().rfind("HEAD")
    candidate = os.path.join(folder, name[:i] + ("PHOT" if name[i:i + 4].isupper() else "phot") + name[i + 4:])
    if not os.path.isfile(candidate):
        raise TLError(f"{head_path}: no PHOT file beside it (expected {os.path.basename(candidate)})")
    return candidate


def read_fits(head_path: str) -> SnanaFile:
    """A HEAD/PHOT pair: one object per HEAD row, its rows PTROBS_MIN..PTROBS_MAX (1-based) of PHOT."""
    phot_path = phot_file_of(head_path)
    try:
        survey = fits.getheader(head_path, 0).get("SURVEY")
        head = fits.getdata(head_path, 1)
        phot_all = fits.getdata(phot_path, 1)
    except (OSError, ValueError, IndexError, KeyError, EOFError) as error:
        raise TLError(f"{head_path}: unreadable FITS pair ({first_line(error)})") from None
    first, last = _check_pointers(head_path, phot_path, head, len(phot_all))
    objects = sncosmo.read_snana_fits(head_path, phot_path)  # one table per HEAD row
    heads = [{**{key: _text(value) for key, value in table.meta.items()}, "_where": f"{head_path}: row {number}"}
             for number, table in enumerate(objects, start=1)]
    counts = last - first + 1
    referenced = np.zeros(len(phot_all), dtype=bool)
    for start, stop in zip(first, last):
        referenced[start - 1:stop] = True
    loose = np.flatnonzero(~referenced)  # the -777 markers, and anything else between objects
    columns = [name for name in PHOT_COLUMNS if name in phot_all.columns.names]
    phot = pd.DataFrame({name: _column(np.concatenate([np.asarray(table[name]) for table in objects]
                                                      + [np.asarray(phot_all[name][loose])]))
                         for name in columns})
    snids = np.array([head["SNID"] for head in heads] + [None], dtype=object)
    phot["SNID"] = np.repeat(snids, np.append(counts, len(loose)))
    phot["_line"] = np.concatenate([np.arange(a, b + 1) for a, b in zip(first, last)] + [loose + 1])
    phot["_file"], phot["_unit"] = phot_path, "row"
    return SnanaFile(head_path, _text(survey) if survey is not None else None, heads, phot)


def _check_pointers(head_path: str, phot_path: str, head, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """PTROBS_MIN/MAX of every HEAD row: inside PHOT, not overlapping, agreeing with NOBS."""
    names = head.columns.names
    for name in ("SNID", "PTROBS_MIN", "PTROBS_MAX"):
        if name not in names:
            raise TLError(f"{head_path}: missing column {name!r}")
    first = np.asarray(head["PTROBS_MIN"], dtype=np.int64)
    last = np.asarray(head["PTROBS_MAX"], dtype=np.int64)
    bad = (first < 1) | (last > n_rows) | (last < first - 1)
    if "NOBS" in names:
        bad |= np.asarray(head["NOBS"], dtype=np.int64) != last - first + 1
    order = np.argsort(first, kind="stable")
    overlap = np.zeros(len(first), dtype=bool)
    overlap[order[1:]] = first[order[1:]] <= last[order[:-1]]
    bad |= overlap
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TLError(f"{head_path}: row {row + 1}: PTROBS_MIN..PTROBS_MAX {first[row]}..{last[row]} "
                      f"(NOBS, the {n_rows} rows of {os.path.basename(phot_path)}, or another object's rows disagree)")
    return first, last


def _text(value):
    """FITS bytes and numpy scalars as plain, stripped Python values."""
    if isinstance(value, bytes):
        return value.decode(errors="replace").strip()
    if isinstance(value, str):
        return value.strip()
    return value.item() if isinstance(value, np.generic) else value


def _column(values) -> np.ndarray:
    """A FITS column as a numpy array; text columns decoded and stripped."""
    array = np.asarray(values)
    if array.dtype.kind in "SU":
        return np.char.strip(array.astype(str)).astype(object)
    return array.astype(np.float64) if array.dtype.kind in "iuf" else array
