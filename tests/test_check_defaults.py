"""sweeps/check_defaults.py on a toy target (no Ray): its pooled points against sklearn on the
concatenated fold predictions, and its bad flags a one-line error."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

import tl.cli
from tl.data import read_dataset, write_dataset
from tl.evaluation import model_dir_table
from scripts import load_script
from toy import make_toy_dataset

TINY = ["--set", "model.gru_hidden=8", "--set", "model.metadata_hidden=4", "--set", "model.dense_hidden=8",
        "--set", "model.dense_second=8", "--set", "train.batch_size=16", "--set", "train.epochs=3"]
SCRIPT = "sweeps/check_defaults.py"


@pytest.mark.usefixtures("one_torch_thread")
def test_pooled_points_equal_sklearn_on_the_folds(tmp_path):
    write_dataset(make_toy_dataset(12, classes=("SN Ia", "SN II")), str(tmp_path / "base_data"), name="b")
    write_dataset(make_toy_dataset(10, seed=5, classes=("SN Ia", "SN II")), str(tmp_path / "target"), name="t")
    assert tl.cli.main(["train", "--data", str(tmp_path / "base_data"), "--out", str(tmp_path / "base"),
                        "--quiet", *TINY]) == 0
    script = load_script(SCRIPT)
    out = tmp_path / "check"
    assert script.main(["--base", str(tmp_path / "base"), "--data", str(tmp_path / "target"), "--fraction", "0.5",
                        "--folds", "2", "--out", str(out), *TINY]) == 0
    points = {(p["fraction"], p["mode"]): p for p in json.loads((out / "check.json").read_text())["points"]}
    assert set(points) == {(0.5, "transfer"), (0.5, "scratch")}
    for mode in ("transfer", "scratch"):
        target = read_dataset(str(tmp_path / "target"))
        tables = [model_dir_table(str(out / f"{mode}-f0.5-k{k}"), target) for k in (0, 1)]
        ids = np.concatenate([t.object_ids for t in tables])
        assert len(ids) == len(set(ids)) == 20  # every object tested once over the two folds
        truth = np.concatenate([t.labels for t in tables]).astype(str)
        predicted = np.concatenate([np.asarray(t.classes)[t.proba.argmax(axis=1)] for t in tables])
        expected = f1_score(truth, predicted, average="macro")
        assert points[(0.5, mode)]["macro_f1"] == pytest.approx(expected)
        low, high = points[(0.5, mode)]["ci95"]
        assert low <= expected <= high


def test_one_fold_is_refused(tmp_path, capsys):
    assert load_script(SCRIPT).main(["--base", "b", "--data", "d", "--fraction", "0.1", "--folds", "1",
                               "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "check_defaults: error: --folds must be >= 2, got 1"
