"""benchmarks/simulator_matters.py on toy bases (no Ray): its replicate-mean points against sklearn
on each replicate's own predictions, paired replicates on the same subset, outer folds pooled (every
object tested once), and a bad --base or --folds refused."""

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

import tl.cli
from tl.data import read_dataset, write_dataset
from tl.evaluation import model_dir_table
from tl.modeldir import load_model_dir
from scripts import load_script
from toy import make_toy_dataset

TINY = ["--set", "model.gru_hidden=8", "--set", "model.metadata_hidden=4", "--set", "model.dense_hidden=8",
        "--set", "model.dense_second=8", "--set", "train.batch_size=16", "--set", "train.epochs=2"]
SCRIPT = "benchmarks/simulator_matters.py"


def macro_f1(table) -> float:
    predicted = np.asarray(table.classes)[table.proba.argmax(axis=1)]
    return f1_score(table.labels.astype(str), predicted, average="macro")


def toy_target_and_bases(tmp_path, replicates) -> tuple:
    """A toy target data set and tiny bases trained on toy simulations: (target, ["--base", "label=DIR", ...]);
    replicates: (label, seed) pairs."""
    classes = ("SN Ia", "SN II")
    target = tmp_path / "target"
    write_dataset(make_toy_dataset(16, seed=5, classes=classes), str(target), name="t")
    bases = []
    for label, seed in replicates:
        write_dataset(make_toy_dataset(10, seed=seed, classes=classes), str(tmp_path / f"sim{seed}"), name="s")
        assert tl.cli.main(["train", "--data", str(tmp_path / f"sim{seed}"), "--out", str(tmp_path / f"base{seed}"),
                            "--quiet", "--set", f"train.seed={seed}", *TINY]) == 0
        bases += ["--base", f"{label}=" + str(tmp_path / f"base{seed}")]
    return target, bases


@pytest.mark.usefixtures("one_torch_thread")
def test_points_are_replicate_means_of_sklearn(tmp_path):
    target, bases = toy_target_and_bases(tmp_path, (("a", 1), ("a", 2), ("b", 3), ("b", 4)))
    out = tmp_path / "out"
    assert load_script(SCRIPT).main([*bases, "--data", str(target), "--fraction", "0.5", "--out", str(out), *TINY]) == 0
    result = json.loads((out / "matters.json").read_text())
    dataset = read_dataset(str(target))
    points = result["transfer_test"]["points"]
    for label in ("a", "b"):
        tables = [model_dir_table(str(out / f"transfer-{label}-r{r}"), dataset) for r in (1, 2)]
        assert set(tables[0].object_ids) == set(dataset.objects.query("split == 'test'")["object_id"])
        replicates = [macro_f1(t) for t in tables]
        assert points[label]["replicates_macro_f1"] == pytest.approx(replicates)
        assert points[label]["macro_f1"]["estimate"] == pytest.approx(np.mean(replicates))
        low, high = points[label]["macro_f1"]["ci95"]
        assert low <= points[label]["macro_f1"]["estimate"] <= high
    difference = points["b"]["macro_f1"]["difference"]
    estimates = {label: points[label]["macro_f1"]["estimate"] for label in ("a", "b")}
    assert difference["estimate"] == pytest.approx(estimates["b"] - estimates["a"])
    assert difference["ci95"][0] <= difference["estimate"] <= difference["ci95"][1]
    for r in (1, 2):  # replicate r of both labels: the same seeds, so the same labelled subset
        configs = [load_model_dir(str(out / f"transfer-{label}-r{r}")).config for label in ("a", "b")]
        assert configs[0].data.seed == configs[1].data.seed == r
    zero_shot = result["zero_shot_val"]["points"]
    assert result["zero_shot_val"]["n_objects"] == int((dataset.objects["split"] == "val").sum())
    assert 0 <= zero_shot["a"]["balanced_accuracy"]["estimate"] <= 1
    assert (out / "matters.png").stat().st_size > 0


def test_unequal_replicates_are_refused(tmp_path, capsys):
    write_dataset(make_toy_dataset(6, classes=("SN Ia", "SN II")), str(tmp_path / "sim"), name="s")
    assert tl.cli.main(["train", "--data", str(tmp_path / "sim"), "--out", str(tmp_path / "base"), "--quiet",
                        *TINY]) == 0
    base = str(tmp_path / "base")
    code = load_script(SCRIPT).main(["--base", f"a={base}", "--base", f"a={base}", "--base", f"b={base}",
                               "--data", str(tmp_path / "sim"), "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "same number of replicates" in error[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("one_torch_thread")
def test_folds_pool_every_object_once_and_match_sklearn(tmp_path):
    target, bases = toy_target_and_bases(tmp_path, (("a", 1), ("b", 3)))
    out = tmp_path / "out"
    assert load_script(SCRIPT).main([*bases, "--data", str(target), "--fraction", "0.5", "--folds", "2",
                                     "--out", str(out), *TINY]) == 0
    result = json.loads((out / "matters.json").read_text())
    dataset = read_dataset(str(target))
    assert result["folds"] == 2
    assert result["transfer_test"]["n_objects"] == len(dataset.objects)  # every object tested once
    for label in ("a", "b"):
        folds = [model_dir_table(str(out / f"transfer-{label}-r1-k{k}"), dataset) for k in (0, 1)]
        assert not set(folds[0].object_ids) & set(folds[1].object_ids)
        labels = np.concatenate([t.labels for t in folds]).astype(str)
        predicted = np.concatenate([np.asarray(t.classes)[t.proba.argmax(axis=1)] for t in folds])
        expected = f1_score(labels, predicted, average="macro")
        assert result["transfer_test"]["points"][label]["macro_f1"]["estimate"] == pytest.approx(expected)
    assert "2 outer folds pooled" in (out / "matters.md").read_text()


def test_one_fold_is_refused(tmp_path, capsys):
    code = load_script(SCRIPT).main(["--base", "a=x", "--base", "b=y", "--data", str(tmp_path), "--folds", "1",
                                     "--out", str(tmp_path / "out")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--folds must be 0" in error[0]
    assert not (tmp_path / "out").exists()


def test_compare_validations_welch_interval_by_hand(tmp_path):
    """The version comparison against Welch's interval computed by hand (Welch-Satterthwaite df)."""
    compare = load_script("benchmarks/compare_validations.py")
    before, after = [0.80, 0.78, 0.79, 0.81], [0.75, 0.76, 0.74]
    difference, low, high = compare.welch_difference(after, before)
    va, vb = np.var(after, ddof=1) / 3, np.var(before, ddof=1) / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    from scipy.stats import t

    half = t.ppf(0.975, df) * np.sqrt(va + vb)
    assert difference == pytest.approx(0.75 - 0.795)
    assert (low, high) == pytest.approx((difference - half, difference + half))
    quantities = {"a": {"ks": 0.12, "null95": 0.05}, "b": {"ks": 0.12, "null95": 0.15}, "c": {"ks": 0.09, "null95": 0.05}}
    for version, seeds in (("v4", before), ("v5", after)):
        report = {"auc_by_seed": {"SN Ia": seeds}, "classes": {"SN Ia": {"quantities": quantities}}}
        (tmp_path / f"validation_{version}_train.json").write_text(json.dumps(report))
    out = tmp_path / "comparison.md"
    assert compare.main(["--dir", str(tmp_path), "--before", "v4", "--after", "v5", "--configs", "train",
                         "--out", str(out)]) == 0
    row = out.read_text().splitlines()[2]
    assert row == (f"| train | SN Ia | 0.795 [0.780, 0.810] (1) | 0.750 [0.740, 0.760] (1) | "
                   f"{difference:+.3f} [{low:+.3f}, {high:+.3f}] |")
    # the before version in a folder of its own: the same row
    (tmp_path / "old").mkdir()
    (tmp_path / "validation_v4_train.json").rename(tmp_path / "old" / "validation_v4_train.json")
    assert compare.main(["--dir", str(tmp_path), "--before-dir", str(tmp_path / "old"), "--before", "v4",
                         "--after", "v5", "--configs", "train", "--out", str(out)]) == 0
    assert out.read_text().splitlines()[2] == row
