"""SNANA ingest and export: hand-written text files and astropy-made FITS pairs (awkward cases
included) against hand-computed values and counts; a round trip of `tl simulate --survey des`
through both layouts; a survey added by rows in the test; bad input through the real CLI."""

from __future__ import annotations

import gzip
import math
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from tl.cli import main
from tl.data import read_dataset, write_dataset
from tl.encoding import encode_raw
from tl.errors import TLError
from tl.ingest import snana
from tl.simulate import simulate
from tl.snana_export import export
from tl.surveys import BAND_BY_NAME, BANDS, Band
from tl.taxonomy import canonical_label

UJY_PER_FLUXCAL = 10 ** ((23.9 - 27.5) / 2.5)  # = 10**-1.44, written out here, not imported

# Two objects in the SNANA manual's text layout, with the awkward parts: several keys on one line,
# keys split over lines and between comment lines, PRIVATE keys, NVAR without a table name and a
# VARLIST one name longer (as in real DES files), negative fluxes, PHOTFLAG detections, missing
# redshifts (REDSHIFT_FINAL -9 -> the host photo-z; nothing -> NaN), a sentinel error.
TEXT_A = """\
SURVEY: DES   SNID: 000123   IAUC: UNKNOWN
SNTYPE:  1     #  spectroscopic Ia
FILTERS: griz
# ---------------- host
MWEBV: 0.0310  +- 0.0016   # MW E(B-V)
REDSHIFT_FINAL:  -9.0 +- -9.0
HOST_GALAXY_PHOTO-Z:  0.3614 +-  0.0779
PRIVATE(DES_numepochs):  3

NOBS: 5
NVAR: 6
VARLIST: MJD  FLT FIELD  FLUXCAL  FLUXCALERR PHOTFLAG  NITE
OBS: 56534.185  g  E2   27.542287  1.0      4096
OBS: 56534.188  r  E2   -5.0       2.0         0
OBS: 56540.190  i  E2   1000.0     10.0     6144
OBS: 56540.192  z  E2   7.0        -9.0        0
OBS: 56545.001  Y  E2   3.0        1.0         0
END:
"""
TEXT_B = """\
SURVEY: DES
SNID: 000124
SNTYPE: -9
SIM_COMMENT:  SN Type = IIP , MODEL = Nugent+Scolnic_IIP
MWEBV: 0.05
NOBS: 2
NVAR: 5
VARLIST: MJD FLT FIELD FLUXCAL FLUXCALERR
OBS: 56600.0 g X1 60.0 10.0
OBS: 56601.0 r X1 40.0 10.0
END_PHOTOMETRY:
"""


def write_text(folder, files=None):
    folder.mkdir(exist_ok=True)
    for name, text in (files or {"DES_000123.DAT": TEXT_A, "DES_000124.DAT.gz": TEXT_B}).items():
        if name.endswith(".gz"):
            with gzip.open(folder / name, "wt") as handle:
                handle.write(text)
        else:
            (folder / name).write_text(text)
    return folder


def run_failing(argv, capsys, out, *expected):
    """The CLI exits 2 with one line naming what is at fault, and leaves no output behind."""
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("tl ingest: error: "), message
    for text in expected:
        assert text in message, message
    assert not out.exists()


# ---------------------------------------------------------------- band rows


def integral(values, x) -> float:
    """Trapezoid rule."""
    return float(np.sum(np.diff(x) * (values[1:] + values[:-1]) / 2))


def test_band_rows_are_the_pivot_wavelengths_of_the_shipped_filter_curves():
    filters = pytest.importorskip("speclite.filters")
    curves = {"des": "decamDR1-{}", "ps1": "panstarrs-{}", "sdss": "sdss2010-{}"}
    checked = 0
    for band in BANDS:
        if band.survey not in curves:
            continue
        curve = filters.load_filter(curves[band.survey].format(band.name.split("_")[1]))
        wavelength, response = curve.wavelength, curve.response  # Angstrom, throughput
        pivot = math.sqrt(integral(response * wavelength, wavelength) / integral(response / wavelength, wavelength)) / 10
        assert band.wavelength_nm == pytest.approx(pivot, abs=0.06), band.name
        checked += 1
    assert checked == 14  # des griz, ps1 grizy, sdss ugriz


# ---------------------------------------------------------------- text layout, by hand


def test_text_files_by_hand(tmp_path, capsys):
    src = write_text(tmp_path / "src")
    BAND_Y = Band("des_y", "des", 988.0)  # DES Y has no row: the first run refuses it
    with pytest.raises(TLError, match=r"DES_000123.DAT: line 17: column FLT/BAND: unknown band 'Y'"):
        snana.read(str(src))
    try:
        BAND_BY_NAME["des_y"] = BAND_Y
        dataset = snana.ingest(str(src), str(tmp_path / "out"))
    finally:
        del BAND_BY_NAME["des_y"]
    objects = dataset.objects.set_index("object_id")
    assert list(objects.index) == ["000123", "000124"]  # SNID as written, leading zeros kept
    assert objects["label"].tolist() == ["SN Ia", "SN II"]  # SNTYPE 1; SNTYPE -9 -> SIM_COMMENT IIP
    assert objects["raw_label"].tolist() == ["1", "IIP"]
    assert objects.loc["000123", "redshift"] == pytest.approx(0.3614)  # REDSHIFT_FINAL -9 -> photo-z
    assert np.isnan(objects.loc["000124", "redshift"])
    assert objects["mwebv"].tolist() == pytest.approx([0.031, 0.05])
    observations = dataset.observations.sort_values(["object_id", "mjd"])
    a = observations[observations["object_id"] == "000123"]
    assert a["band"].tolist() == ["des_g", "des_r", "des_i", "des_y"]
    # FLUXCAL 10**1.44 = 27.542287 is 1 uJy; 1000 FLUXCAL is 36.3078 uJy; negative fluxes stay
    assert a["flux"].tolist() == pytest.approx([1.0, -5 * 0.0363078, 36.3078, 3 * 0.0363078], rel=1e-5)
    assert a["flux_err"].tolist() == pytest.approx([0.0363078, 0.0726156, 0.363078, 0.0363078], rel=1e-5)
    assert a["detected"].tolist() == [True, False, True, False]  # PHOTFLAG & 4096, not S/N (3 is S/N 3)
    b = observations[observations["object_id"] == "000124"]
    assert b["detected"].tolist() == [True, False]  # no PHOTFLAG column: S/N 6 and 4
    assert dataset.meta["dropped"] == {"objects": {}, "observations": {snana.REASON_SENTINEL: 1}}
    assert dataset.meta["n_source_observations"] == 7
    assert dataset.meta["redshift_counts"] == {"HOST_GALAXY_PHOTO-Z": 1, "none": 1}
    assert dataset.meta["label_keys"] == {"SNTYPE": 1, "SIM_COMMENT": 1}
    assert "sentinel flux or error" in capsys.readouterr().out


def test_sim_redshift_only_when_asked_and_list_files(tmp_path):
    text = TEXT_B.replace("SNTYPE: -9", "SNTYPE: 22\nREDSHIFT_FINAL: 0.21 +- 0.01\nSIM_REDSHIFT_CMB: 0.2")
    src = write_text(tmp_path / "src", {"one.DAT": text, "ignored.DAT": TEXT_A})
    (src / "SIM.LIST").write_text("one.DAT\n")
    assert snana.read(str(src / "SIM.LIST"))[0].objects["redshift"].tolist() == [0.21]
    raw = snana.read(str(src / "SIM.LIST"), sim_redshift=True)[0]
    assert raw.objects["redshift"].tolist() == [0.2]


# ---------------------------------------------------------------- FITS layout, made with astropy


def write_fits(folder, heads, phot, survey="DES", gz=True, band_column="BAND"):
    """A HEAD/PHOT pair; `heads` rows are (SNID, SNTYPE, PTROBS_MIN, PTROBS_MAX, REDSHIFT_FINAL),
    `phot` rows (MJD, band, FLUXCAL, FLUXCALERR, PHOTFLAG)."""
    folder.mkdir(exist_ok=True)
    snid, sntype, first, last, z = zip(*heads)
    head = fits.BinTableHDU.from_columns([
        fits.Column("SNID", "16A", array=snid), fits.Column("SNTYPE", "J", array=sntype),
        fits.Column("NOBS", "J", array=np.subtract(last, first) + 1),
        fits.Column("PTROBS_MIN", "J", array=first), fits.Column("PTROBS_MAX", "J", array=last),
        fits.Column("MWEBV", "E", array=[0.02] * len(heads)), fits.Column("REDSHIFT_FINAL", "E", array=z)])
    mjd, band, flux, error, flag = zip(*phot)
    table = fits.BinTableHDU.from_columns([
        fits.Column("MJD", "D", array=mjd), fits.Column(band_column, "2A", array=band),
        fits.Column("FLUXCAL", "E", array=flux), fits.Column("FLUXCALERR", "E", array=error),
        fits.Column("PHOTFLAG", "J", array=flag)])
    primary = fits.PrimaryHDU()
    primary.header["SURVEY"] = survey
    suffix = ".FITS.gz" if gz else ".FITS"
    fits.HDUList([primary, head]).writeto(folder / f"TEST_HEAD{suffix}")
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(folder / f"TEST_PHOT{suffix}")
    return folder


FITS_HEADS = [("1", 1, 1, 3, 0.1), ("2", -9, 5, 5, 0.2), ("3", 2, 7, 8, -9.0)]
FITS_PHOT = [
    (56000.0, "g", 100.0, 5.0, 4096), (56001.0, "r", -20.0, 5.0, 0), (56002.0, "z", float("nan"), 5.0, 0),
    (-777.0, "-", 0.0, 0.0, 0),
    (56010.0, "i", 50.0, 5.0, 4096),
    (-777.0, "-", 0.0, 0.0, 0),
    (56020.0, "g", 30.0, 5.0, 0), (56021.0, "r", 30.0, -999.0, 0),
    (-777.0, "-", 0.0, 0.0, 0),
    (56030.0, "g", 1.0, 1.0, 0),  # a stray row that no object points at
]


def test_fits_pair_by_hand(tmp_path):
    dataset = snana.ingest(str(write_fits(tmp_path / "src", FITS_HEADS, FITS_PHOT)), str(tmp_path / "out"))
    assert dataset.objects[["object_id", "label"]].values.tolist() == [["1", "SN Ia"], ["3", "SN II"]]
    assert dataset.objects["redshift"].tolist()[0] == pytest.approx(0.1)
    assert np.isnan(dataset.objects["redshift"].tolist()[1])  # REDSHIFT_FINAL -9
    observations = dataset.observations.sort_values("mjd")
    assert observations["band"].tolist() == ["des_g", "des_r", "des_g"]
    assert observations["flux"].tolist() == pytest.approx([100 * UJY_PER_FLUXCAL, -20 * UJY_PER_FLUXCAL,
                                                            30 * UJY_PER_FLUXCAL], rel=1e-6)
    assert observations["detected"].tolist() == [True, False, False]  # PHOTFLAG, not S/N (S/N 6)
    assert dataset.meta["dropped"] == {
        "objects": {"unmapped raw label '(no type)'": 1},
        "observations": {snana.REASON_MARKER: 3, snana.REASON_MISSING: 1, snana.REASON_SENTINEL: 1,
                         snana.REASON_LOOSE: 1, "object dropped (unmapped raw label)": 1}}
    assert dataset.meta["n_source_objects"] == 3 and dataset.meta["n_source_observations"] == 10


def test_fits_bad_pointers_and_flt_column(tmp_path, capsys):
    heads = [("1", 1, 1, 3, 0.1), ("2", 1, 3, 4, 0.2)]  # overlapping light curves
    src = write_fits(tmp_path / "src", heads, FITS_PHOT[:5], gz=False, band_column="FLT")
    out = tmp_path / "out"
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out)], capsys, out,
                "TEST_HEAD.FITS: row 2: PTROBS_MIN..PTROBS_MAX 3..4")
    shutil.rmtree(src)
    src = write_fits(tmp_path / "src", [("1", 1, 1, 2, 0.1)], [(56000.0, "q", 1.0, 1.0, 0)] * 2, gz=False)
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out)], capsys, out,
                "TEST_PHOT.FITS: row 1: column FLT/BAND: unknown band 'q' of survey des")


# ---------------------------------------------------------------- round trip of the simulator


@pytest.fixture(scope="module")
def des_simulation():
    return simulate("des", 28, seed=3)


@pytest.mark.parametrize("layout", ["text", "fits"])
def test_round_trip_of_a_des_simulation(des_simulation, tmp_path, layout):
    source = write_dataset(des_simulation, str(tmp_path / "sim"), **des_simulation.meta)
    assert main(["export", "snana", "--data", str(tmp_path / "sim"), "--out", str(tmp_path / "snana"),
                 "--layout", layout]) == 0
    back = snana.ingest(str(tmp_path / "snana"), str(tmp_path / "back"), seed=3, labels="plasticc")
    n_objects, n_observations = len(source.objects), len(source.observations)
    assert back.meta["n_source_objects"] == n_objects and len(back.objects) == n_objects
    assert len(back.observations) == n_observations  # nothing lost...
    markers = {"text": {}, "fits": {snana.REASON_MARKER: n_objects}}[layout]
    assert back.meta["dropped"]["observations"] == markers  # ...and only the markers dropped
    key = ["object_id", "mjd"]
    a = source.observations.sort_values(key).reset_index(drop=True)
    b = back.observations.sort_values(key).reset_index(drop=True)
    assert (a["band"] == b["band"]).all() and (a["detected"] == b["detected"]).all()
    assert np.allclose(b["flux"], a["flux"], rtol=1e-6, atol=0) and np.allclose(b["mjd"], a["mjd"], atol=1e-6)
    objects_a, objects_b = (d.objects.sort_values("object_id").reset_index(drop=True) for d in (source, back))
    assert (objects_a[["object_id", "label", "split"]] == objects_b[["object_id", "label", "split"]]).all().all()
    assert np.allclose(objects_b["redshift"], objects_a["redshift"], atol=1e-6)


def test_exported_fluxcal_by_hand(des_simulation, tmp_path):
    export(des_simulation, str(tmp_path / "snana"), "text")
    first = des_simulation.observations.iloc[0]
    text = (tmp_path / "snana" / f"{first['object_id']}.DAT").read_text()
    row = next(line.split() for line in text.splitlines() if line.startswith(f"OBS: {first['mjd']:.6f}"))
    assert row[2] == first["band"][-1]  # des_g -> g
    assert float(row[4]) == pytest.approx(first["flux"] * 10 ** 1.44, rel=1e-9)
    assert int(row[6]) == (4096 if first["detected"] else 0)
    assert f"NOBS: {(des_simulation.observations['object_id'] == first['object_id']).sum()}" in text


# ---------------------------------------------------------------- a new survey: rows and a map


def test_a_new_survey_needs_only_its_band_rows_and_a_label_map(tmp_path, monkeypatch):
    text = TEXT_A.replace("SURVEY: DES", "SURVEY: SNLS").replace("SNTYPE:  1", "SNTYPE:  120")
    text = text.replace("OBS: 56545.001  Y  E2   3.0        1.0         0\n", "").replace("NOBS: 5", "NOBS: 4")
    src = write_text(tmp_path / "src", {"SNLS_1.DAT": text})
    labels = tmp_path / "snls.yaml"
    labels.write_text("keys: [SNTYPE]\nmap:\n  120: SN Ia\n")
    with pytest.raises(TLError, match="survey 'SNLS' has no rows in the band table"):
        snana.read(str(src), labels=str(labels))
    for name, wavelength in (("snls_g", 487.0), ("snls_r", 628.0), ("snls_i", 770.0), ("snls_z", 893.0)):
        monkeypatch.setitem(BAND_BY_NAME, name, Band(name, "snls", wavelength))
    dataset = snana.ingest(str(src), str(tmp_path / "out"), labels=str(labels))
    assert read_dataset(str(tmp_path / "out")).observations["band"].tolist() == ["snls_g", "snls_r", "snls_i"]
    assert dataset.objects["label"].tolist() == ["SN Ia"] and dataset.meta["survey"] == "snls"
    sequence = encode_raw(dataset, 10).sequences[0]  # the model reads the new bands by wavelength
    assert sorted(set(np.round(sequence[:, 3] * 200 + 600, 3))) == [487.0, 628.0, 770.0]


def test_known_label_maps():
    plasticc, snphotcc = snana.resolve_labels("plasticc"), snana.resolve_labels(None)
    assert snana.raw_label({"SIM_TYPE_INDEX": 42, "SNTYPE": 1}, plasticc) == ("42", "SIM_TYPE_INDEX")
    assert snana.raw_label({"SNTYPE": 33.0}, snphotcc) == ("33", "SNTYPE")
    comment = {"SNTYPE": 0, "SIM_COMMENT": "SN Type = Ia , MODEL = mlcs2k2"}
    assert snana.raw_label(comment, snphotcc) == ("Ia", "SIM_COMMENT")
    assert snana.raw_label({"SNTYPE": -9}, snphotcc) == (snana.NO_TYPE, None)
    assert [canonical_label("snphotcc", code) for code in ("1", "21", "22", "23", "32", "33", "2", "3")] == [
        "SN Ia"] + ["SN II"] * 3 + ["SN Ibc"] * 2 + ["SN II", "SN Ibc"]


# ---------------------------------------------------------------- bad input through the CLI


@pytest.mark.parametrize("old, new, expected", [
    ("27.542287", "27.5x", ["DES_000123.DAT: line 13", "'FLUXCAL'", "not a finite number"]),
    ("-5.0       2.0", "-5.0       0.0", ["DES_000123.DAT: line 14", "'FLUXCALERR'", "must be > 0"]),
    ("56540.190  i  E2   1000.0     10.0     6144", "56540.190  i  E2   1000.0",
     ["DES_000123.DAT: line 15", "4 values, NVAR is 6"]),
    ("NOBS: 5", "NOBS: 6", ["DES_000123.DAT", "NOBS: 6 but 5 OBS rows"]),
    ("SNID: 000123", "SNID: 000124", ["duplicate SNID '000124'"]),
    ("MWEBV: 0.0310", "MWEBV: high", ["DES_000123.DAT: MWEBV: not a number ('high')"]),
    ("SURVEY: DES   SNID", "SURVEY: KAIT   SNID", ["survey 'KAIT' has no rows in the band table", "tl/surveys.py"]),
])
def test_bad_text_input(tmp_path, capsys, old, new, expected):
    assert old in TEXT_A
    src = write_text(tmp_path / "src", {"DES_000123.DAT": TEXT_A.replace(old, new), "DES_000124.DAT.gz": TEXT_B})
    out = tmp_path / "out"
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out)], capsys, out, *expected)


def test_bad_options_and_files(tmp_path, capsys):
    src = write_text(tmp_path / "src")
    out = tmp_path / "out"
    (tmp_path / "map.yaml").write_text("keys: [SNTYPE]\nmap: {1: SN Iax}\n")
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out), "--labels", str(tmp_path / "map.yaml")],
                capsys, out, "map.yaml: map entry 1: 'SN Iax' is not a class")
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out), "--labels", "elasticc"],
                capsys, out, "--labels elasticc: neither a known map")
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(out), "--labels", "plasticc"],
                capsys, out, "--labels applies to snana only")
    (src / "DES_000123.DAT").write_bytes(b"\x1f\x8b not gzip")
    os.rename(src / "DES_000123.DAT", src / "DES_000123.DAT.gz")
    run_failing(["ingest", "snana", "--src", str(src), "--out", str(out)], capsys, out,
                "DES_000123.DAT.gz: unreadable file")
    run_failing(["ingest", "snana", "--src", str(tmp_path / "map.yaml"), "--out", str(out)], capsys, out,
                "map.yaml: not an SNANA object file (no SNID: key)")
