"""`tl export snana --data DIR --out DIR [--layout text|fits]`: a canonical data set in SNANA form.

The inverse of `tl ingest snana --labels plasticc`, for round trips and for SNANA-format tools.
Per object: SURVEY (the survey, upper-case), SNID, SNTYPE and SIM_TYPE_INDEX (the PLAsTiCC code
of its class), SIM_COMMENT (`SN Type = <class>`), MWEBV and REDSHIFT_FINAL (-9 when unknown). Per
observation: MJD, FLT (the band's letter: `des_g` -> g), FLUXCAL = flux in uJy x 10**((27.5 - 23.9)
/ 2.5), FLUXCALERR likewise, PHOTFLAG (4096 when detected, else 0).
Layouts: text, one `<SNID>.DAT` per object (the SNANA manual's keyed header, NOBS/NVAR/VARLIST and
OBS rows, END:) and a `<name>.LIST` of them; fits, `<name>_HEAD.FITS` and `<name>_PHOT.FITS` with
an MJD = -777 end-of-light-curve row after each light curve and PTROBS_MIN/MAX pointing at it.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from astropy.io import fits

from tl.atomic import staged_directory
from tl.data import Dataset, read_dataset
from tl.errors import TLError
from tl.paths import check_output
from tl.taxonomy import RAW_LABEL_MAPS

FLUXCAL_PER_UJY = 10 ** ((27.5 - 23.9) / 2.5)
PHOTFLAG_DETECT = 4096
END_OF_LIGHT_CURVE = -777.0
MARKER = "tl-export.json"
CLASS_CODE = {label: int(code) for code, label in reversed(list(RAW_LABEL_MAPS["plasticc"].items()))}
TYPE_NAME = {"SN Ia": "Ia", "SN II": "II", "SN Ibc": "Ibc"}  # SIM_COMMENT spelling (SNPhotCC's)


def band_letter(band: str, survey: str) -> str:
    prefix = f"{survey}_"
    if not band.startswith(prefix):
        raise TLError(f"band {band!r} is not a band of survey {survey!r}: export one survey at a time")
    return band[len(prefix):]


def _objects_and_photometry(dataset: Dataset):
    """(survey, objects sorted by id, observations sorted by object then mjd, with FLT/FLUXCAL/PHOTFLAG)."""
    surveys = sorted(set(dataset.objects["survey"]))
    if len(surveys) != 1:
        raise TLError(f"objects of several surveys ({', '.join(surveys)}): export one survey at a time")
    survey = surveys[0]
    objects = dataset.objects.sort_values("object_id").reset_index(drop=True)
    observations = dataset.observations.sort_values(["object_id", "mjd"], kind="stable").reset_index(drop=True)
    observations = observations.assign(
        FLT=[band_letter(band, survey) for band in observations["band"]],
        FLUXCAL=observations["flux"] * FLUXCAL_PER_UJY, FLUXCALERR=observations["flux_err"] * FLUXCAL_PER_UJY,
        PHOTFLAG=np.where(observations["detected"], PHOTFLAG_DETECT, 0))
    return survey, objects, observations


def _redshift(value: float) -> float:
    return float(value) if np.isfinite(value) else -9.0


def text_file(obj, rows, survey: str) -> str:
    """One object's SNANA text file."""
    code = CLASS_CODE[obj.label]
    lines = [f"SURVEY: {survey.upper()}", f"SNID: {obj.object_id}", f"SNTYPE: {code}",
             f"SIM_TYPE_INDEX: {code}",
             f"SIM_COMMENT: SN Type = {TYPE_NAME.get(obj.label, obj.label)} , MODEL = tl",
             f"MWEBV: {_redshift(obj.mwebv):.6f}  # MW E(B-V)",
             f"REDSHIFT_FINAL: {_redshift(obj.redshift):.6f} +- 0.001000", "",
             f"NOBS: {len(rows)}", "NVAR: 6", "VARLIST: MJD FLT FIELD FLUXCAL FLUXCALERR PHOTFLAG"]
    lines += [f"OBS: {r.mjd:.6f} {r.FLT} NULL {r.FLUXCAL:.9e} {r.FLUXCALERR:.9e} {r.PHOTFLAG}"
              for r in rows.itertuples()]
    return "\n".join(lines + ["END:", ""])


def write_text(dataset: Dataset, folder: str, name: str) -> int:
    """One .DAT per object and a .LIST of them; returns the number of files written."""
    survey, objects, observations = _objects_and_photometry(dataset)
    groups = dict(tuple(observations.groupby("object_id", sort=False)))
    names = []
    for obj in objects.itertuples():
        file_name = f"{obj.object_id.replace(os.sep, '_')}.DAT"
        rows = groups.get(obj.object_id, observations.iloc[:0])
        with open(os.path.join(folder, file_name), "w") as handle:
            handle.write(text_file(obj, rows, survey))
        names.append(file_name)
    with open(os.path.join(folder, f"{name}.LIST"), "w") as handle:
        handle.write("\n".join(names) + "\n")
    return len(names)


def write_fits(dataset: Dataset, folder: str, name: str) -> int:
    """<name>_HEAD.FITS and <name>_PHOT.FITS, a -777 row after each light curve; returns 2."""
    survey, objects, observations = _objects_and_photometry(dataset)
    counts = observations.groupby("object_id").size().reindex(objects["object_id"], fill_value=0).to_numpy()
    first = np.concatenate([[1], np.cumsum(counts + 1)[:-1] + 1])  # +1: each light curve's marker row
    order = np.repeat(np.arange(len(objects)), counts + 1)  # object of each PHOT row, markers included
    is_marker = np.zeros(len(order), dtype=bool)
    is_marker[np.cumsum(counts + 1) - 1] = True
    phot = {key: np.full(len(order), END_OF_LIGHT_CURVE if key == "MJD" else 0.0)
            for key in ("MJD", "FLUXCAL", "FLUXCALERR")}
    for key, source in (("MJD", "mjd"), ("FLUXCAL", "FLUXCAL"), ("FLUXCALERR", "FLUXCALERR")):
        phot[key][~is_marker] = observations[source].to_numpy()
    flt = np.full(len(order), "-", dtype=object)
    flt[~is_marker] = observations["FLT"].to_numpy()
    flag = np.zeros(len(order), dtype=np.int32)
    flag[~is_marker] = observations["PHOTFLAG"].to_numpy()
    labels = objects["label"].map(CLASS_CODE).to_numpy(dtype=np.int32)
    head = fits.BinTableHDU.from_columns([
        fits.Column("SNID", f"{max(objects['object_id'].str.len().max(), 1)}A", array=objects["object_id"].to_numpy()),
        fits.Column("SNTYPE", "J", array=labels), fits.Column("SIM_TYPE_INDEX", "J", array=labels),
        fits.Column("NOBS", "J", array=counts), fits.Column("PTROBS_MIN", "J", array=first),
        fits.Column("PTROBS_MAX", "J", array=first + counts - 1),
        fits.Column("MWEBV", "E", array=[_redshift(v) for v in objects["mwebv"]]),
        fits.Column("REDSHIFT_FINAL", "E", array=[_redshift(v) for v in objects["redshift"]])])
    photometry = fits.BinTableHDU.from_columns([
        fits.Column("MJD", "D", array=phot["MJD"]), fits.Column("FLT", "2A", array=flt.astype(str)),
        fits.Column("FLUXCAL", "E", array=phot["FLUXCAL"]), fits.Column("FLUXCALERR", "E", array=phot["FLUXCALERR"]),
        fits.Column("PHOTFLAG", "J", array=flag)])
    primary = fits.PrimaryHDU()
    primary.header["SURVEY"] = survey.upper()
    fits.HDUList([primary, head]).writeto(os.path.join(folder, f"{name}_HEAD.FITS"))
    fits.HDUList([primary.copy(), photometry]).writeto(os.path.join(folder, f"{name}_PHOT.FITS"))
    return 2


def export(dataset: Dataset, out: str, layout: str = "text", name: str | None = None) -> int:
    """Write `dataset` in SNANA `layout` to the folder `out`, all at once; returns the files written."""
    writers = {"text": write_text, "fits": write_fits}
    if layout not in writers:
        raise TLError(f"--layout {layout!r}: use text or fits")
    name = name or str(dataset.meta.get("name", "tl")).replace(os.sep, "_")
    with staged_directory(out, MARKER, "tl SNANA export") as staging:
        n_files = writers[layout](dataset, staging, name)
        with open(os.path.join(staging, MARKER), "w") as handle:
            json.dump({"layout": layout, "source": dataset.meta.get("name"), "n_objects": len(dataset.objects),
                       "n_observations": len(dataset.observations)}, handle, indent=2)
    return n_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=["snana"], help="format to write")
    parser.add_argument("--data", required=True, help="canonical data set directory")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--layout", default="text", choices=["text", "fits"],
                        help="text: one .DAT per object (default); fits: HEAD/PHOT pair")


def run(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", directory=True, inputs={"--data": args.data}, marker=MARKER,
                 kind="tl SNANA export")
    dataset = read_dataset(args.data)
    n_files = export(dataset, args.out, args.layout)
    print(f"wrote {args.out}: {len(dataset.objects)} objects, {len(dataset.observations)} observations "
          f"in {n_files} SNANA {args.layout} files")
    return 0
