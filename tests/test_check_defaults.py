"""sweeps/check_defaults.py on a toy target (no Ray): its pooled points against sklearn on the
concatenated fold predictions, and its bad flags a one-line error."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

import tl.cli
from tl.data import Dataset, read_dataset, write_dataset
from tl.evaluation import model_dir_table
from scripts import load_script
from toy import make_toy_dataset

TINY = ["--set", "model.gru_hidden=8", "--set", "model.metadata_hidden=4", "--set", "model.dense_hidden=8",
        "--set", "model.dense_second=8", "--set", "train.batch_size=16", "--set", "train.epochs=3"]
SCRIPT = "sweeps/check_defaults.py"


def _base(tmp_path) -> str:
    """A tiny base MODEL_DIR trained on toy SN Ia and SN II."""
    write_dataset(make_toy_dataset(12, classes=("SN Ia", "SN II")), str(tmp_path / "base_data"), name="b")
    assert tl.cli.main(["train", "--data", str(tmp_path / "base_data"), "--out", str(tmp_path / "base"),
                        "--quiet", *TINY]) == 0
    return str(tmp_path / "base")


@pytest.mark.usefixtures("one_torch_thread")
def test_pooled_points_equal_sklearn_on_the_folds(tmp_path):
    write_dataset(make_toy_dataset(10, seed=5, classes=("SN Ia", "SN II")), str(tmp_path / "target"), name="t")
    base = _base(tmp_path)
    script = load_script(SCRIPT)
    out = tmp_path / "check"
    assert script.main(["--base", base, "--data", str(tmp_path / "target"), "--fraction", "0.5",
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


@pytest.mark.usefixtures("one_torch_thread")
def test_fresh_points_are_the_mean_over_fold_models_of_sklearn_on_the_kept_objects(tmp_path):
    """sweeps/check_fresh.py: objects of --exclude and non-detections dropped and counted, objects of
    a class the models lack left out, the point the mean of sklearn's macro-F1 over the fold models."""
    target = make_toy_dataset(10, seed=5, classes=("SN Ia", "SN II"))  # ids <class>-0000 .. -0009
    write_dataset(target, str(tmp_path / "target"), name="t")
    write_dataset(make_toy_dataset(14, seed=9, classes=("SN Ia", "SN II")), str(tmp_path / "fresh"), name="f")
    write_dataset(make_toy_dataset(3, seed=11, classes=("SLSN",)), str(tmp_path / "other"), name="o")
    assert load_script(SCRIPT).main(["--base", _base(tmp_path), "--data", str(tmp_path / "target"),
                                     "--fraction", "0.5", "--folds", "2", "--out", str(tmp_path / "check"),
                                     *TINY]) == 0
    out = tmp_path / "fresh_check"
    assert load_script("sweeps/check_fresh.py").main([
        "--defaults", str(tmp_path / "check"), "--fraction", "0.5", "--data", str(tmp_path / "fresh"),
        "--data", str(tmp_path / "other"), "--exclude", str(tmp_path / "target"), "--detections-only",
        "--out", str(out)]) == 0
    found = json.loads((out / "fresh.json").read_text())

    fresh = read_dataset(str(tmp_path / "fresh"))
    kept = fresh.objects[~fresh.objects["object_id"].isin(target.objects["object_id"])]
    assert len(kept) == 8  # 14 - 10 per class
    observations = fresh.observations[fresh.observations["object_id"].isin(kept["object_id"])]
    other = read_dataset(str(tmp_path / "other"))
    assert found["drops"]["objects in --exclude"] == 20
    assert found["drops"]["non-detections"] == (~observations["detected"]).sum() + (~other.observations["detected"]).sum()
    hand = Dataset(kept.reset_index(drop=True), observations[observations["detected"]].reset_index(drop=True),
                   fresh.meta)
    for row in found["modes"]:
        scores = []
        for k in (0, 1):
            table = model_dir_table(str(tmp_path / "check" / f"{row['mode']}-f0.5-k{k}"), hand, split="all")
            predicted = np.asarray(table.classes)[table.proba.argmax(axis=1)]
            scores.append(f1_score(table.labels.astype(str), predicted, average="macro"))
        point = row["estimates"]["defaults"]
        assert point["macro_f1"] == pytest.approx(np.mean(scores))
        assert row["bootstrap"]["n_objects"] == 8 and row["bootstrap"]["n_objects_dropped"] == 3  # the SLSN
        assert point["ci95"][0] <= point["macro_f1"] <= point["ci95"][1]


def test_fresh_objects_all_excluded_is_one_line(tmp_path, capsys):
    write_dataset(make_toy_dataset(2, classes=("SN Ia",)), str(tmp_path / "d"), name="d")
    assert load_script("sweeps/check_fresh.py").main([
        "--defaults", str(tmp_path), "--fraction", "0.5", "--data", str(tmp_path / "d"),
        "--exclude", str(tmp_path / "d"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == "check_fresh: error: --data: no object left after the drops"
