"""Ingesters: unit conversions against hand-computed values, the real raw files against counts a
person can check in the source, and bad input through the real CLI (exit 2, one line, no output)."""

from __future__ import annotations

import gzip
import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from tl.cli import main
from tl.data import read_dataset
from tl.errors import TLError
from tl.ingest import alerce, bts, common, plasticc, ztf_forced
from tl.taxonomy import canonical_label

LN10_OVER_2_5 = math.log(10) / 2.5


# ---------------------------------------------------------------- unit conversions


@pytest.mark.parametrize("magnitude, flux", [(23.9, 1.0), (18.9, 100.0), (13.9, 1e4), (26.4, 0.1)])
def test_magnitude_to_flux_known_values(magnitude, flux):
    value, error = common.magnitude_to_flux(magnitude, 0.1)
    assert value == pytest.approx(flux, rel=1e-12)
    # Propagated error equals |df/dm| * sigma_m, with the derivative taken numerically.
    step = 1e-6
    brighter, fainter = common.magnitude_to_flux(magnitude - step, 0)[0], common.magnitude_to_flux(magnitude + step, 0)[0]
    derivative = (brighter - fainter) / (2 * step)
    assert error == pytest.approx(derivative * 0.1, rel=1e-6)
    assert error == pytest.approx(flux * LN10_OVER_2_5 * 0.1, rel=1e-12)


def test_zero_point_conversions():
    assert plasticc.FLUXCAL_TO_UJY * 10**1.44 == pytest.approx(1.0, rel=1e-12)  # FLUXCAL 10**1.44 -> 1 uJy
    assert common.zero_point_scale(23.9) == pytest.approx(1.0)  # fpbot: ampl 1 on zp 23.9 -> 1 uJy
    assert 100 * common.zero_point_scale(28.9) == pytest.approx(1.0)
    # FLUXCAL and magnitudes agree: FLUXCAL 10**(0.4 * (27.5 - m)) is m, i.e. f(m) in uJy.
    assert 10 ** (0.4 * (27.5 - 20.0)) * plasticc.FLUXCAL_TO_UJY == pytest.approx(common.magnitude_to_flux(20.0, 0)[0])


# ---------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def bts_out(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "bts"
    assert main(["ingest", "bts", "--src", str(shared_data / "bts"), "--out", str(out), "--seed", "3"]) == 0
    return read_dataset(str(out))


@pytest.fixture(scope="module")
def plasticc_raw(shared_data):
    """The PLAsTiCC light curves as pandas reads them, independently of the ingester."""
    return pd.read_csv(shared_data / "plasticc" / "plasticc_train_lightcurves.csv.gz")


@pytest.fixture(scope="module")
def plasticc_out(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest") / "plasticc"
    plasticc.ingest(str(shared_data / "plasticc"), str(out), seed=0)
    return read_dataset(str(out))


def check_accounting(dataset, n_objects: int, n_observations: int) -> None:
    """Ingested + dropped adds up to the source, for objects and for observations."""
    dropped = dataset.meta["dropped"]
    assert len(dataset.objects) + sum(dropped["objects"].values()) == n_objects
    assert len(dataset.observations) + sum(dropped["observations"].values()) == n_observations
    assert dataset.meta["n_source_objects"] == n_objects
    assert dataset.meta["n_source_observations"] == n_observations


def test_bts_every_catalogue_object_accounted_for(shared_data, bts_out):
    catalogue = pd.read_csv(shared_data / "bts" / bts.CATALOGUE)
    paths = sorted((shared_data / "bts" / "lightcurves").glob("*.csv"))
    assert len(paths) == 2158
    rows = sum(len(path.read_text().splitlines()) - 1 for path in paths)  # minus the header line
    assert len(catalogue) == 2158
    check_accounting(bts_out, 2158, rows)
    dropped = bts_out.meta["dropped"]["objects"]
    ingested = bts_out.objects["raw_label"].value_counts()
    for raw_type, count in catalogue["type"].value_counts().items():
        assert ingested.get(raw_type, 0) + dropped.get(f"unmapped raw label {raw_type!r}", 0) == count, raw_type
        assert (raw_type in ingested) == (canonical_label("bts", raw_type) is not None)
    assert dropped["unmapped raw label 'nova'"] == 13
    assert bts_out.meta["raw_label_counts"] == catalogue["type"].value_counts().to_dict()


def test_bts_values_match_catalogue_and_light_curve(shared_data, bts_out):
    catalogue = pd.read_csv(shared_data / "bts" / bts.CATALOGUE).set_index("ZTFID")
    objects = bts_out.objects.set_index("object_id")
    expected = catalogue.loc[objects.index]
    assert (objects["raw_label"] == expected["type"]).all()
    assert (objects["label"] == [canonical_label("bts", t) for t in expected["type"]]).all()
    np.testing.assert_allclose(objects["mwebv"], expected["A_V"] / 3.1)
    np.testing.assert_array_equal(objects["redshift"].isna(), expected["redshift"].isna())
    np.testing.assert_allclose(objects["redshift"].dropna(), expected["redshift"].dropna())
    assert bts_out.observations["detected"].all()
    # One light curve, converted by hand from the raw file (it has no duplicate rows).
    raw = pd.read_csv(shared_data / "bts" / "lightcurves" / "ZTF17aaazdba.csv").sort_values("ant_mjd")
    ours = bts_out.observations[bts_out.observations["object_id"] == "ZTF17aaazdba"].sort_values("mjd")
    np.testing.assert_allclose(ours["mjd"], raw["ant_mjd"])
    np.testing.assert_allclose(ours["flux"], 10 ** ((23.9 - raw["ant_mag"]) / 2.5))
    np.testing.assert_allclose(ours["flux_err"], ours["flux"] * LN10_OVER_2_5 * raw["ant_magerr"].to_numpy())
    assert list(ours["band"]) == [{"g": "ztf_g", "R": "ztf_r"}[b] for b in raw["ant_passband"]]


def test_bts_other_snapshot_differences_recorded(shared_data, bts_out):
    new = pd.read_csv(shared_data / "bts" / bts.CATALOGUE).set_index("ZTFID")
    old = pd.read_csv(shared_data / "bts" / bts.OTHER_CATALOGUE).set_index("ZTFID").loc[new.index]
    changed = sorted(new.index[new["type"] != old["type"]])
    recorded = bts_out.meta["other_catalogue"]["type_differences"]
    assert sorted(recorded) == changed and len(changed) == 4
    assert all(recorded[k] == {"used": new.at[k, "type"], "other": old.at[k, "type"]} for k in changed)


def test_far_from_brightest_hand_case():
    observations = pd.DataFrame({"object_id": ["a", "a", "a", "a", "b", "b"],
                                 "mjd": [0.0, 100.0, 466.0, -300.0, 10.0, 400.0],
                                 "flux": [1.0, 5.0, 2.0, 1.0, 3.0, 1.0]})
    # a: brightest at 100; 466 is 366 days after it (far), -300 is 400 before (far); b: 390 after (far)
    assert bts.far_from_brightest(observations) == {"days": 365.0, "objects": 2, "detections": 3,
                                                    "most": {"a": 2, "b": 1}}
    assert bts.far_from_brightest(observations, days=395.0)["detections"] == 1


def test_bts_far_from_brightest_recounted(bts_out):
    """Recounted object by object on the ingested detections (a loop, not the ingester's groupby)."""
    counts = {}
    for object_id, lc in bts_out.observations.groupby("object_id"):
        mjd, flux = lc["mjd"].to_numpy(), lc["flux"].to_numpy()
        far = int((np.abs(mjd - mjd[np.argmax(flux)]) > 365.0).sum())
        if far:
            counts[object_id] = far
    recorded = bts_out.meta["far_from_brightest"]
    assert recorded["objects"] == len(counts) and recorded["detections"] == sum(counts.values())
    assert recorded["objects"] > 0 and all(counts[object_id] == n for object_id, n in recorded["most"].items())
    assert min(recorded["most"].values()) >= sorted(counts.values())[-len(recorded["most"])]


def test_plasticc_every_object_accounted_for(shared_data, plasticc_out, plasticc_raw):
    metadata = pd.read_csv(shared_data / "plasticc" / "plasticc_train_metadata.csv")
    assert len(metadata) == 7848
    check_accounting(plasticc_out, 7848, len(plasticc_raw))
    dropped = plasticc_out.meta["dropped"]["objects"]
    ingested = plasticc_out.objects["raw_label"].value_counts()
    for target, count in metadata["true_target"].value_counts().items():
        key = str(target)
        assert ingested.get(key, 0) + dropped.get(f"unmapped raw label {key!r}", 0) == count, target
        assert (key in ingested) == (canonical_label("plasticc", key) is not None)
    assert set(plasticc_out.objects["label"]) == {"SN Ia", "SN II", "SN Ibc", "SLSN", "TDE", "KN", "AGN"}


def test_plasticc_values(shared_data, plasticc_out, plasticc_raw):
    metadata = pd.read_csv(shared_data / "plasticc" / "plasticc_train_metadata.csv")
    metadata.index = metadata["object_id"].astype(str)
    objects = plasticc_out.objects.set_index("object_id")
    expected = metadata.loc[objects.index]
    # Every kept (extragalactic) object of this training set has a spectroscopic host redshift.
    np.testing.assert_allclose(objects["redshift"], expected["hostgal_specz"])
    np.testing.assert_allclose(objects["mwebv"], expected["mwebv"])
    raw = plasticc_raw[plasticc_raw["object_id"] == 713].sort_values(["mjd", "passband"])
    ours = plasticc_out.observations[plasticc_out.observations["object_id"] == "713"].sort_values(["mjd", "band"])
    assert len(ours) == len(raw) > 0
    np.testing.assert_allclose(ours["flux"], raw["flux"] * 10 ** (-1.44))
    np.testing.assert_allclose(ours["flux_err"], raw["flux_err"] * 10 ** (-1.44))
    assert list(ours["detected"]) == list(raw["detected_bool"] == 1)
    assert list(ours["band"]) == ["lsst_" + "ugrizy"[p] for p in raw["passband"]]


def test_ztf_forced_real_files(shared_data, tmp_path):
    folder = shared_data / "ztf_forced_photometry"
    dataset = ztf_forced.ingest(str(folder), str(tmp_path / "out"), seed=0)
    headers = {}
    n_rows = 0
    for path in sorted(folder.glob("*.csv")):
        lines = path.read_text().splitlines()
        header = dict(line[1:].split("=", 1) for line in lines if line.startswith("#"))
        headers[header["name"]] = header
        n_rows += len(lines) - len(header) - 1
    check_accounting(dataset, 10, n_rows)
    assert dataset.meta["dropped"]["objects"] == {"unmapped raw label '-'": 1}
    for object_id, row in dataset.objects.set_index("object_id").iterrows():
        assert row["raw_label"] == headers[object_id]["bts_class"]
        assert row["redshift"] == pytest.approx(float(headers[object_id]["bts_z"]))
    raw = pd.read_csv(folder / "ZTF19aapreis_bl.csv", comment="#").sort_values("obsmjd")
    ours = dataset.observations[dataset.observations["object_id"] == "ZTF19aapreis"].sort_values("mjd")
    assert len(ours) == len(raw)  # this file has no duplicate epochs
    np.testing.assert_allclose(ours["flux"], raw["ampl_corr"] * 10 ** ((23.9 - raw["magzp"]) / 2.5))
    assert list(ours["detected"]) == list(raw["ampl_corr"] / raw["ampl_err_corr"] >= 5)


def test_alerce_real_files(shared_data, tmp_path):
    folder = shared_data / "alerce"
    dataset = alerce.ingest(str(folder), str(tmp_path / "out"), seed=0)
    detections = pd.read_csv(folder / "30_sne_detections_corr.csv")
    limits = pd.read_csv(folder / "30_sne_non_detections.csv")
    check_accounting(dataset, 30, len(detections) + len(limits))
    duplicated = detections.duplicated(["objectId", "mjd", "fid"]).sum()
    assert dataset.meta["dropped"]["observations"]["duplicate observation (same object, mjd, band)"] == duplicated
    observations = dataset.observations
    assert (observations["detected"].sum() == len(detections) - duplicated)
    negative = detections[detections["isdiffpos"] < 0].iloc[0]
    row = observations[(observations["object_id"] == negative["objectId"]) & (observations["mjd"] == negative["mjd"])]
    assert row["flux"].item() == pytest.approx(-(10 ** ((23.9 - negative["magpsf"]) / 2.5)))
    limit = limits.iloc[0]
    row = observations[(observations["object_id"] == limit["objectId"])
                       & np.isclose(observations["mjd"], limit["jd"] - 2400000.5, rtol=0, atol=1e-6)]
    assert row["flux"].item() == 0 and not row["detected"].item()
    assert row["flux_err"].item() == pytest.approx(10 ** ((23.9 - limit["diffmaglim"]) / 2.5) / 5)


def test_splits_reproducible_and_stratified(shared_data):
    raw = alerce.read(str(shared_data / "alerce"))
    first, _ = common.assemble(raw, "alerce", "ztf", seed=5)
    again, _ = common.assemble(raw, "alerce", "ztf", seed=5)
    other, _ = common.assemble(raw, "alerce", "ztf", seed=6)
    pd.testing.assert_series_equal(first.objects["split"], again.objects["split"])
    assert not first.objects["split"].equals(other.objects["split"])
    sn_ia = first.objects[first.objects["label"] == "SN Ia"]["split"].value_counts()
    assert sn_ia["test"] == round(0.15 * 19) and sn_ia["val"] == round(0.15 * 19)


# ---------------------------------------------------------------- bad input through the CLI


def write_bts(folder, rows="58526.40,g,18.45,0.15\n", redshift="0.05"):
    (folder / "lightcurves").mkdir(parents=True)
    (folder / bts.CATALOGUE).write_text(",ZTFID,type,redshift,A_V\n"
                                         f"0,ZTF20aaaaaaa,SN Ia,{redshift},0.31\n0,ZTF20bbbbbbb,nova,-,0.1\n")
    (folder / "lightcurves" / "ZTF20aaaaaaa.csv").write_text(",ant_mjd,ant_passband,ant_mag,ant_magerr\n"
                                                              + "".join(f"{i},{r}\n" for i, r in enumerate(rows.splitlines())))
    (folder / "lightcurves" / "ZTF20bbbbbbb.csv").write_text(",ant_mjd,ant_passband,ant_mag,ant_magerr\n0,58526.4,R,18.0,0.1\n")
    return folder


def run_failing(argv, capsys, out, *expected):
    """The CLI exits 2 with one line naming what is at fault, and leaves no output behind."""
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith("tl ingest: error: ")
    for text in expected:
        assert text in message, message
    assert not out.exists()
    assert not [name for name in os.listdir(out.parent) if name.startswith(".tl-partial-")]


def test_tiny_bts_ingests_with_drops(tmp_path, capsys):
    src = write_bts(tmp_path / "bts", rows="58526.40,g,18.45,0.15\n58527.40,R,,0.1\n58528.40,R,23.9,0.1\n")
    out = tmp_path / "out"
    assert main(["ingest", "bts", "--src", str(src), "--out", str(out)]) == 0
    dataset = read_dataset(str(out))
    assert dataset.meta["dropped"] == {
        "objects": {"unmapped raw label 'nova'": 1},
        "observations": {"missing magnitude or error": 1, "object dropped (unmapped raw label)": 1}}
    assert sorted(dataset.observations["flux"]) == pytest.approx([1.0, 10 ** ((23.9 - 18.45) / 2.5)])
    assert dataset.objects["mwebv"].item() == pytest.approx(0.1)
    assert "unmapped raw label 'nova'" in capsys.readouterr().out


@pytest.mark.parametrize("rows, expected", [
    ("58526.40,g,abc,0.15\n", ["ZTF20aaaaaaa.csv: line 2", "'ant_mag'", "not a finite number"]),
    ("58526.40,g,18.0,0.15\n58527.40,g,18.0,0\n", ["ZTF20aaaaaaa.csv: line 3", "'ant_magerr'", "must be > 0"]),
    ("58526.40,g,18.0,-0.1\n", ["line 2", "'ant_magerr'", "must be > 0"]),
    ("58526.40,X,18.0,0.1\n", ["ZTF20aaaaaaa.csv: line 2", "unknown band 'X'", "tl/ingest/bts.py"]),
    ("58526.40,g,18.0\n", ["ZTF20aaaaaaa.csv: line 2", "4 fields"]),
])
def test_bts_bad_light_curve(tmp_path, capsys, rows, expected):
    src = write_bts(tmp_path / "bts", rows=rows)
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(tmp_path / "out")], capsys, tmp_path / "out", *expected)


def test_bts_missing_column_and_bad_catalogue(tmp_path, capsys):
    src = write_bts(tmp_path / "bts")
    (src / "lightcurves" / "ZTF20bbbbbbb.csv").write_text(",ant_mjd,ant_passband,ant_mag\n0,58526.4,R,18.0\n")
    out = tmp_path / "out"
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(out)], capsys, out,
                "ZTF20bbbbbbb.csv", "missing column 'ant_magerr'")
    src = write_bts(tmp_path / "bts2", redshift="0.05x")
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(out)], capsys, out,
                f"{bts.CATALOGUE}: line 2: column 'redshift'")
    (src / "lightcurves" / "ZTF20aaaaaaa.csv").rename(src / "lightcurves" / "ZTF20ccccccc.csv")
    (src / "lightcurves" / "ZTF20bbbbbbb.csv").unlink()
    (src / bts.CATALOGUE).write_text(",ZTFID,type,redshift,A_V\n0,ZTF20aaaaaaa,SN Ia,0.05,0.31\n")
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(out)], capsys, out, "no object left to ingest")
    (src / bts.CATALOGUE).unlink()
    run_failing(["ingest", "bts", "--src", str(src), "--out", str(out)], capsys, out, "missing the BTS catalogue")
    run_failing(["ingest", "bts", "--src", str(tmp_path / "nowhere"), "--out", str(out)], capsys, out,
                "--src", "no such file or directory")
    with pytest.raises(SystemExit) as exit_info:  # --src not given at all: argparse's usage error
        main(["ingest", "bts", "--out", str(out)])
    assert exit_info.value.code == 2


def write_plasticc(folder, rows="615,59750.42,2,-544.8,3.6,1\n"):
    folder.mkdir()
    (folder / "plasticc_train_metadata.csv").write_text(
        "object_id,hostgal_specz,hostgal_photoz,mwebv,true_target\n615,0.0,0.0,0.017,92\n713,0.0,1.6,0.007,88\n")
    with gzip.open(folder / "plasticc_train_lightcurves.csv.gz", "wt") as handle:
        handle.write("object_id,mjd,passband,flux,flux_err,detected_bool\n713,59750.4,5,27.54,1.0,0\n" + rows)
    return folder


def test_tiny_plasticc_photoz_fallback(tmp_path):
    dataset = plasticc.ingest(str(write_plasticc(tmp_path / "p")), str(tmp_path / "out"))
    assert dataset.objects[["object_id", "label", "redshift"]].values.tolist() == [["713", "AGN", 1.6]]
    assert dataset.observations["flux"].item() == pytest.approx(27.54 * 10 ** -1.44)
    assert dataset.meta["redshift_counts"] == {"hostgal_specz": 0, "hostgal_photoz": 1, "none": 1}


@pytest.mark.parametrize("rows, expected", [
    ("713,59751.4,6,1.0,1.0,0\n", ["line 3", "unknown band 6", "tl/ingest/plasticc.py"]),
    ("713,59751.4,1,1.0e,1.0,0\n", ["line 3", "'flux'", "not a finite number"]),
    ("713,59751.4,1,1.0,0.0,0\n", ["line 3", "'flux_err'", "must be > 0"]),
    ("713,59751.4,1,1.0,1.0,2\n", ["line 3", "'detected_bool'", "must be 0 or 1"]),
])
def test_plasticc_bad_input(tmp_path, capsys, rows, expected):
    src = write_plasticc(tmp_path / "p", rows=rows)
    out = tmp_path / "out"
    run_failing(["ingest", "plasticc", "--src", str(src), "--out", str(out)], capsys, out,
                "plasticc_train_lightcurves.csv.gz", *expected)


def test_plasticc_unreadable_file(tmp_path, capsys):
    src = write_plasticc(tmp_path / "p")
    (src / "plasticc_train_lightcurves.csv.gz").write_bytes(b"this is not gzip data")
    out = tmp_path / "out"
    run_failing(["ingest", "plasticc", "--src", str(src), "--out", str(out)], capsys, out,
                "plasticc_train_lightcurves.csv.gz", "unreadable CSV")


FPBOT = ("#name=ZTF21abcdefg\n#bts_class=SN Ic-BL\n#bts_z=0.05\n"
         ",ampl,ampl.err,filter,obsmjd,magzp,ampl_corr,ampl_err_corr\n"
         "a,1,1,ZTF_g,59000.1,26.0,100.0,10.0\nb,1,1,ZTF r,59000.2,23.9,40.0,10.0\n")


def test_tiny_fpbot_nan_amplitude_is_a_counted_drop(tmp_path):
    path = tmp_path / "ZTF21abcdefg_bl.csv"
    path.write_text(FPBOT + "c,1,1,ZTF_i,59000.3,26.0,,\n")
    dataset = ztf_forced.ingest(str(path), str(tmp_path / "out"))
    assert dataset.meta["dropped"]["observations"] == {"NaN amplitude or zero point": 1}
    observations = dataset.observations.sort_values("mjd")
    assert observations["flux"].tolist() == pytest.approx([100 * 10 ** ((23.9 - 26.0) / 2.5), 40.0])
    assert observations["detected"].tolist() == [True, False]  # SNR 10 and 4
    assert dataset.objects[["label", "redshift"]].values.tolist() == [["SN Ibc", 0.05]]


def test_fpbot_folder_with_unlabelled_file(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ZTF21abcdefg_bl.csv").write_text(FPBOT)
    (tmp_path / "src" / "ZTF21zzzzzzz_bl.csv").write_text(FPBOT.replace("#name=ZTF21abcdefg\n#bts_class=SN Ic-BL\n", ""))
    dataset = ztf_forced.ingest(str(tmp_path / "src"), str(tmp_path / "out"))
    assert dataset.objects["object_id"].tolist() == ["ZTF21abcdefg"]
    assert dataset.meta["dropped"] == {"objects": {"unmapped raw label '(no bts_class header)'": 1},
                                       "observations": {"object dropped (unmapped raw label)": 2}}
    (tmp_path / "src" / "ZTF21zzzzzzz_bl.csv").write_text(FPBOT.replace("#bts_z=0.05", "#bts_z=0.05?"))
    with pytest.raises(TLError, match=r"ZTF21zzzzzzz_bl.csv: header line '#bts_z=0.05\?': not a number"):
        ztf_forced.read(str(tmp_path / "src"))


def test_fpbot_bad_input(tmp_path, capsys):
    path = tmp_path / "ZTF21abcdefg_bl.csv"
    path.write_text(FPBOT + "c,1,1,ZTF_z,59000.3,26.0,1.0,1.0\n")
    out = tmp_path / "out"
    run_failing(["ingest", "ztf-forced", "--src", str(path), "--out", str(out)], capsys, out,
                "ZTF21abcdefg_bl.csv: line 7", "unknown band 'ZTF_z'")
    path.write_text(FPBOT.replace(",ampl_err_corr", ",ampl_err").replace(",ampl.err", ",ampl_err2"))
    run_failing(["ingest", "ztf-forced", "--src", str(path), "--out", str(out)], capsys, out,
                "ZTF21abcdefg_bl.csv", "missing column 'ampl_err_corr'")


def write_alerce(folder, detection="ZTF20aaaaaaa,1,59000.5,18.9,0.1,1\n"):
    folder.mkdir()
    (folder / "x_labels.csv").write_text("objectId,classALeRCE\nZTF20aaaaaaa,SNIa\n")
    (folder / "x_detections.csv").write_text("objectId,fid,mjd,magpsf,sigmapsf,isdiffpos\n" + detection)
    (folder / "x_non_detections.csv").write_text("objectId,fid,jd,diffmaglim\nZTF20aaaaaaa,2,2459000.0,20.4\n")
    return folder


def test_tiny_alerce(tmp_path):
    dataset = alerce.ingest(str(write_alerce(tmp_path / "a", "ZTF20aaaaaaa,1,59000.5,18.9,0.1,1\n"
                                             "ZTF20aaaaaaa,2,59001.5,,0.1,1\n")), str(tmp_path / "out"))
    observations = dataset.observations.sort_values("mjd")
    assert observations["mjd"].tolist() == pytest.approx([58999.5, 59000.5])
    assert observations["flux"].tolist() == pytest.approx([0.0, 100.0])
    assert observations["flux_err"].tolist() == pytest.approx([10 ** ((23.9 - 20.4) / 2.5) / 5, 100 * LN10_OVER_2_5 * 0.1])
    assert dataset.meta["dropped"]["observations"] == {"detection with missing magpsf or sigmapsf": 1}


@pytest.mark.parametrize("detection, expected", [
    ("ZTF20aaaaaaa,4,59000.5,18.9,0.1,1\n", ["x_detections.csv: line 2", "unknown band 4"]),
    ("ZTF20aaaaaaa,1,59000.5,18.9,0.1,maybe\n", ["x_detections.csv: line 2", "'isdiffpos'"]),
    ("ZTF20aaaaaaa,1,59000.5,bright,0.1,1\n", ["x_detections.csv: line 2", "'magpsf'"]),
])
def test_alerce_bad_input(tmp_path, capsys, detection, expected):
    src = write_alerce(tmp_path / "a", detection)
    out = tmp_path / "out"
    run_failing(["ingest", "alerce", "--src", str(src), "--out", str(out)], capsys, out, *expected)


def test_dataset_json_records_provenance(tmp_path):
    src = write_bts(tmp_path / "bts")
    bts.ingest(str(src), str(tmp_path / "out"), seed=11)
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["src"] == str(src) and meta["seed"] == 11 and meta["source"] == "bts"
    assert meta["raw_label_counts"] == {"SN Ia": 1, "nova": 1}
