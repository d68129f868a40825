"""`tl predict` from the model registry (models:/name@champion, runs:/), from raw files read on the
fly, to Parquet or CSV; `tl calibrate` and `tl evaluate --plot`. The registry is a real sqlite
MLflow store made here, without Ray: a MODEL_DIR logged as a run's `model_dir` artifact and
registered with the `champion` alias, as tl.sweep.results.register_champion does."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import torch

import tl.cli
from tl.data import write_dataset
from toy import make_toy_dataset

TINY = ["--set", "model.gru_hidden=8", "--set", "model.metadata_hidden=4", "--set", "model.dense_hidden=8",
        "--set", "model.dense_second=8", "--set", "train.batch_size=16", "--epochs", "2", "--quiet"]
CLASSES = ["SN Ia", "SN II"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("predict")
    write_dataset(make_toy_dataset(80, classes=tuple(CLASSES)), str(root / "data"), name="base")  # 24 val objects: T is fitted
    torch.set_num_threads(1)
    assert tl.cli.main(["train", "--data", str(root / "data"), "--out", str(root / "model"), *TINY]) == 0
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("toy", artifact_location=(root / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_artifacts(run_id, str(root / "model"), "model_dir")
    client.create_registered_model("toy-model")
    version = client.create_model_version("toy-model", f"runs:/{run_id}/model_dir", run_id=run_id)
    client.set_registered_model_alias("toy-model", "champion", version.version)
    return {"root": root, "uri": uri, "run_id": run_id}


def _predict(*argv):
    assert tl.cli.main(["predict", *map(str, argv)]) == 0


def test_registry_and_run_uris_give_the_model_dirs_predictions(workspace, tmp_path):
    root = workspace["root"]
    _predict("--model", root / "model", "--data", root / "data", "--out", tmp_path / "local.parquet")
    _predict("--model", "models:/toy-model@champion", "--tracking-uri", workspace["uri"], "--data", root / "data",
             "--out", tmp_path / "champion.csv")
    _predict("--model", f"runs:/{workspace['run_id']}/model", "--tracking-uri", workspace["uri"],
             "--data", root / "data", "--out", tmp_path / "run.parquet")
    local = pd.read_parquet(tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(local, pd.read_parquet(tmp_path / "run.parquet"))
    champion = pd.read_csv(tmp_path / "champion.csv")
    np.testing.assert_allclose(champion[CLASSES].to_numpy(), local[CLASSES].to_numpy(), rtol=1e-9)
    assert list(champion["object_id"]) == list(local["object_id"])


def test_probabilities_are_the_tempered_softmax_and_count_observations(workspace, tmp_path):
    from tl.calibration import softmax
    from tl.data import read_dataset
    from tl.evaluation import adjusted_logits
    from tl.modeldir import load_model_dir
    from tl.encoding import encode

    root = workspace["root"]
    _predict("--model", root / "model", "--data", root / "data", "--out", tmp_path / "p.parquet")
    table = pd.read_parquet(tmp_path / "p.parquet")
    loaded = load_model_dir(str(root / "model"))
    assert loaded.calibration is not None  # fitted at the end of `tl train`
    stored = json.loads((root / "model" / "calibration.json").read_text())["temperature"]
    assert loaded.temperature == stored
    encoded = encode(read_dataset(str(root / "data")), loaded.classes, loaded.normalizer, loaded.config.data.max_length)
    expected = softmax(adjusted_logits(loaded.model, encoded, correction=loaded.prior_correction), stored)
    np.testing.assert_allclose(table[CLASSES].to_numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(table[CLASSES].sum(axis=1), 1.0, atol=1e-9)
    observations = read_dataset(str(root / "data")).observations.groupby("object_id").size()
    counts = np.minimum(observations.loc[table["object_id"]].to_numpy(), loaded.config.data.max_length)
    assert (table["n_observations"].to_numpy() <= counts).all() and (table["n_observations"] > 0).all()


def _plasticc(folder, target: int):
    """A one-object PLAsTiCC training folder whose label is `target` (999: no class in the taxonomy)."""
    folder.mkdir()
    (folder / "plasticc_train_metadata.csv").write_text(
        f"object_id,hostgal_specz,hostgal_photoz,mwebv,true_target\n713,0.0,0.1,0.007,{target}\n"
        f"714,0.0,0.1,0.007,{target}\n")
    rng = np.random.default_rng(0)
    rows = "".join(f"713,{59750 + 0.37 * i:.3f},{i % 6},{rng.normal(0, 50):.3f},{rng.uniform(1, 5):.3f},1\n"
                   for i in range(40))
    # 714 is in the metadata but has no light curve: named as dropped
    (folder / "plasticc_train_lightcurves.csv.gz").write_bytes(
        gzip.compress(("object_id,mjd,passband,flux,flux_err,detected_bool\n" + rows).encode(), mtime=0))
    return folder


def test_raw_files_with_unknown_labels_are_predicted_and_drops_named(workspace, tmp_path, capsys):
    src = _plasticc(tmp_path / "raw", target=999)
    out = tmp_path / "raw.csv"
    _predict("--model", workspace["root"] / "model", "--format", "plasticc", "--src", src, "--out", out)
    table = pd.read_csv(out)
    printed = capsys.readouterr().out
    assert list(table["object_id"].astype(str)) == ["713"]
    assert "left out 1 objects" in printed and "could not be used" in printed


def test_calibrate_and_evaluate_plot(workspace, tmp_path, capsys):
    import shutil

    from tl.calibration import load_calibration

    root = workspace["root"]
    model = tmp_path / "model"
    shutil.copytree(root / "model", model)
    (model / "calibration.json").unlink()
    assert tl.cli.main(["calibrate", "--model", str(model), "--data", str(root / "data")]) == 0
    assert load_calibration(str(model)) == load_calibration(str(root / "model"))  # same val split, same fit
    assert tl.cli.main(["evaluate", "--model", str(model), "--data", str(root / "data"), "--plot",
                        str(tmp_path / "plots"), "--json", str(tmp_path / "m.json")]) == 0
    assert "expected calibration error (15 bins)" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["temperature"] == load_calibration(str(model)).temperature
    for name in ("confusion_matrix.png", "reliability.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_an_absent_registered_model_is_a_one_line_error(workspace, tmp_path, capsys):
    code = tl.cli.main(["predict", "--model", "models:/absent@champion", "--tracking-uri", workspace["uri"],
                        "--data", str(workspace["root"] / "data"), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "--model models:/absent@champion: cannot be fetched" in err
    assert list(tmp_path.iterdir()) == []


def test_bts_light_curves_without_a_catalogue_entry_are_predicted(workspace, tmp_path):
    """A broker's new alerts are not in the BTS catalogue: each light curve is an object (unlabelled)."""
    from tl.ingest import bts

    src = tmp_path / "bts"
    (src / "lightcurves").mkdir(parents=True)
    (src / bts.CATALOGUE).write_text(",ZTFID,type,redshift,A_V\n0,ZTF20aaaaaaa,SN Ia,0.05,0.31\n")
    rows = "".join(f"{i},{58526.4 + 2 * i:.2f},{'gR'[i % 2]},{18.5 - 0.1 * i:.2f},0.1\n" for i in range(8))
    for name in ("ZTF20aaaaaaa", "ZTF21new", "ZTF22new"):
        (src / "lightcurves" / f"{name}.csv").write_text(",ant_mjd,ant_passband,ant_mag,ant_magerr\n" + rows)
    _predict("--model", workspace["root"] / "model", "--format", "bts", "--src", src, "--out", tmp_path / "p.parquet")
    table = pd.read_parquet(tmp_path / "p.parquet")
    assert sorted(table["object_id"]) == ["ZTF20aaaaaaa", "ZTF21new", "ZTF22new"]
    assert (table["n_observations"] == 8).all()
    np.testing.assert_allclose(table[CLASSES].sum(axis=1), 1.0, atol=1e-9)
