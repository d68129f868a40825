"""`tl report` on a hand-made MLflow store (SQLite, no Ray), against hand-computed values."""

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import f1_score

from tl.cli import main
from tl.sweep import tracking
from tl.sweep.report import summarize

# (fraction, mode, seed) -> trials as (outcome, best_val_macro_f1, test_macro_f1)
STUDIES = {
    (1.0, "scratch", 0): [("completed", 0.80, 0.70), ("completed", 0.60, 0.90), ("pruned", 0.95, None)],
    (1.0, "scratch", 1): [("completed", 0.70, 0.74), ("failed", None, None)],
    (0.25, "transfer", 0): [("completed", 0.90, 0.69)],
    (0.25, "transfer", 1): [("completed", 0.90, 0.70)],
    (0.5, "transfer", 0): [("completed", 0.85, 0.72), ("completed", 0.50, 0.99)],
    (0.5, "transfer", 1): [("completed", 0.88, 0.70)],
    (1.0, "transfer", 0): [("completed", 0.90, 0.75)],
    (1.0, "transfer", 1): [("completed", 0.90, 0.73)],
}
# Hand-computed: the selected trial is the best on validation among completed trials.
BASELINE = (0.70 + 0.74) / 2  # scratch at 1.0; std = 0.0283, std error = 0.02
BASELINE_STDERR = 0.02
TRANSFER_MEANS = {"0.25": (0.69 + 0.70) / 2, "0.5": (0.72 + 0.70) / 2, "1": (0.75 + 0.73) / 2}


def make_store(uri: str, experiment: str = "toy_sweep") -> str:
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(experiment)
    sweep = tracking.child_run(client, experiment_id, None, "sweep", {tracking.ROLE: "sweep"})
    fraction_runs = {}
    for (fraction, mode, seed), trials in STUDIES.items():
        if fraction not in fraction_runs:
            fraction_runs[fraction] = tracking.child_run(client, experiment_id, sweep, f"f{fraction}",
                                                         {tracking.ROLE: "fraction"})
        for k, (outcome, val, test) in enumerate(trials):
            run = tracking.child_run(client, experiment_id, fraction_runs[fraction], f"{mode}-{seed}-{k}",
                                     {tracking.ROLE: "trial", "mode": mode, tracking.OUTCOME: outcome})
            tracking.log_params(client, run, {"data.target_fraction": fraction, "data.seed": seed})
            metrics = {"best_val_macro_f1": val, "test_macro_f1": test}
            tracking.log_metrics(client, run, {k: v for k, v in metrics.items() if v is not None}, step=1)
    return sweep


def test_report_matches_hand_computed_values(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = make_store(uri)
    out = tmp_path / "report"
    assert main(["report", "--tracking-uri", uri, "--experiment", "toy_sweep", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sweep_run_id"] == sweep
    # no predictions.csv (an older sweep): the logged means, no intervals, the mean - s.e. rule
    assert summary["baseline"] == {"macro_f1": pytest.approx(BASELINE), "ci95": None, "converged": None}
    assert summary["fractions"]["0.5"]["transfer"]["ci95"] is None
    assert summary["fractions"]["0.5"]["transfer"]["difference"] == {"macro_f1": pytest.approx(0.71 - BASELINE),
                                                                      "ci95": None}
    assert "no predictions.csv" in summary["fractions"]["0.5"]["transfer"]["note"]
    assert summary["zero_shot"] is None and summary["bootstrap"]["n_objects"] == 0
    assert summary["protocol"] == {"folds": 1, "trials_per_study": None, "delta": 0.02, "confidence": 0.95,
                                   "selection_metric": "best_val_macro_f1"}
    assert summary["baseline_stderr"] == pytest.approx(BASELINE_STDERR)
    for fraction, mean in TRANSFER_MEANS.items():
        assert summary["fraction_of_baseline"][fraction] == pytest.approx(mean / BASELINE)
    # transfer matches where its mean >= 0.72 - 0.02: at 0.5 (0.71) but not at 0.25 (0.695)
    assert summary["matches"] == {"0.25": False, "0.5": True, "1": True}
    assert summary["reduction"] == pytest.approx(0.5)
    scratch = [row for row in summary["table"] if row["mode"] == "scratch"][0]
    assert scratch["n_seeds"] == 2 and scratch["n_trials"] == 3  # pruned and failed trials left out
    assert scratch["test_macro_f1_std"] == pytest.approx(math.sqrt(2 * 0.02 ** 2))
    for name in ("table.csv", "table.md", "data_efficiency.png"):
        assert (out / name).stat().st_size > 0
    assert "| 0.5000 | transfer | 2 | 3 | 0.7100 |" in (out / "table.md").read_text()
    logged = {item.path for item in MlflowClient(uri).list_artifacts(sweep, "report")}
    assert {"report/summary.json", "report/data_efficiency.png", "report/table.csv"} <= logged


def test_reduction_is_null_when_transfer_never_matches(tmp_path):
    from tl.sweep.report import reduction_summary

    table = [{"fraction": 1.0, "mode": "scratch", "macro_f1": 0.8, "test_macro_f1_stderr": 0.0, "difference": None},
             {"fraction": 0.5, "mode": "transfer", "macro_f1": 0.6, "test_macro_f1_stderr": 0.0,
              "difference": {"macro_f1": -0.2, "ci95": [-0.3, -0.1]}}]
    summary = reduction_summary(table)
    assert summary["reduction"] is None and summary["fraction_of_baseline"] == {"0.5": pytest.approx(0.75)}


def test_report_unknown_experiment_is_a_one_line_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri)
    assert main(["report", "--tracking-uri", uri, "--experiment", "nope", "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # MLflow logs its own lines before
    assert error.startswith("tl report: error:") and "nope" in error
    assert not (tmp_path / "r").exists()


# Protocol v2 store: 2 seeds x 2 outer folds, predictions.csv on every trial, zero-shot runs.
OBJECTS = [f"o{i:02d}" for i in range(60)]
TRUTH = ["a"] * 26 + ["b"] * 26 + ["c"] * 8  # "c" has fewer than 10 test objects
CLASSES = ["a", "b", "c"]
ERROR_RATES = {(1.0, "scratch"): 0.15, (0.5, "transfer"): 0.25, (1.0, "transfer"): 0.1}
EPOCHS = 10


def _predicted(point, seed, fold):
    """The selected model's classes for its fold's objects (every other object: index % 2 == fold)."""
    rng = np.random.default_rng([int(point[0] * 10), len(point[1]), seed, fold])
    result = {}
    for i in range(fold, len(OBJECTS), 2):
        wrong = rng.random() < ERROR_RATES[point]
        result[OBJECTS[i]] = CLASSES[(CLASSES.index(TRUTH[i]) + wrong) % 3]
    return result


def _log_predictions(client, run, predicted: dict, classes, tmp_path):
    labels = dict(zip(OBJECTS, TRUTH))
    frame = pd.DataFrame({"split": "test", "object_id": list(predicted),
                          "label": [labels[i] if labels[i] in classes else None for i in predicted]})
    for name in classes:
        frame[f"p_{name}"] = [0.8 if predicted[i] == name else 0.2 / (len(classes) - 1) for i in predicted]
    validation = frame.head(2).assign(split="val")  # val rows are ignored by the report
    path = tmp_path / run / "predictions.csv"
    path.parent.mkdir(parents=True)
    pd.concat([frame, validation]).to_csv(path, index=False)
    client.log_artifact(run, str(path))


def make_v2_store(uri: str, tmp_path, without_predictions=(), epoch_budget=None, missing_folds=()) -> str:
    """`without_predictions`: (fraction, mode, seed, fold) of selected models logged without predictions.csv;
    `epoch_budget`: logged by every trial as a train.max_steps budget does (None: not logged);
    `missing_folds`: (fraction, mode, fold) whose studies never ran (a sweep cut by --time-budget)."""
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("v2_sweep")
    sweep = tracking.child_run(client, experiment_id, None, "sweep", {tracking.ROLE: "sweep"})
    tracking.log_params(client, sweep, {"sweep.num_samples": 2, "sweep.folds": 2, "sweep.delta": 0.05})
    fraction_runs = {}
    for point in ERROR_RATES:
        fraction, mode = point
        if fraction not in fraction_runs:
            fraction_runs[fraction] = tracking.child_run(client, experiment_id, sweep, f"f{fraction}",
                                                         {tracking.ROLE: "fraction"})
        for seed, fold, selected in itertools.product((0, 1), (0, 1), (True, False)):
            if (*point, fold) in missing_folds:
                continue
            run = tracking.child_run(client, experiment_id, fraction_runs[fraction], f"{mode}-{seed}-{fold}",
                                     {tracking.ROLE: "trial", "mode": mode, tracking.OUTCOME: "completed"})
            tracking.log_params(client, run, {"data.target_fraction": fraction, "data.seed": seed, "data.fold": fold,
                                              "train.epochs": EPOCHS, "train.lr": 0.001 * (1 + seed + 2 * fold)})
            at_cap = point == (1.0, "scratch") and (seed, fold) == (1, 0)
            tracking.log_metrics(client, run, {"best_val_macro_f1": 0.9 if selected else 0.5, "test_macro_f1": 0.5,
                                               "best_epoch": EPOCHS if at_cap else 4}, step=1)
            if epoch_budget is not None:
                tracking.log_metrics(client, run, {"epoch_budget": epoch_budget}, step=1)
            if selected and (*point, seed, fold) in without_predictions:
                continue
            predicted = _predicted(point, seed, fold)
            if not selected:  # a worse trial on validation: every prediction wrong
                predicted = {i: CLASSES[(CLASSES.index(c) + 1) % 3] for i, c in predicted.items()}
            _log_predictions(client, run, predicted, CLASSES, tmp_path)
    for fold in (0, 1):  # the base model lacks class "c" and predicts "b" for it
        run = tracking.child_run(client, experiment_id, sweep, f"zero-shot-{fold}", {tracking.ROLE: "zero_shot"})
        tracking.log_params(client, run, {"data.fold": fold})
        predicted = {OBJECTS[i]: ("a" if TRUTH[i] == "a" else "b") for i in range(fold, len(OBJECTS), 2)}
        _log_predictions(client, run, predicted, ["a", "b"], tmp_path)
    return sweep


def _independent_intervals(n_boot, seed):
    """Estimates and bootstrap values by sklearn, object by object, with the same draws."""
    truth = np.array(TRUTH)
    pooled = {point: [np.array([{**_predicted(point, s, 0), **_predicted(point, s, 1)}[i] for i in OBJECTS])
                      for s in (0, 1)] for point in ERROR_RATES}
    pooled["zero_shot"] = [np.where(truth == "a", "a", "b")]
    draws = np.random.default_rng(seed).integers(0, len(OBJECTS), size=(n_boot, len(OBJECTS)))

    def score(drawn, point):
        return np.mean([f1_score(truth[drawn], p[drawn], average="macro", zero_division=0) for p in pooled[point]])

    estimates = {point: score(np.arange(len(OBJECTS)), point) for point in pooled}
    values = {point: np.array([score(drawn, point) for drawn in draws]) for point in pooled}
    return pooled, estimates, values


def test_report_v2_intervals_differences_and_matches_against_sklearn(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = make_v2_store(uri, tmp_path)
    out = tmp_path / "report"
    summary = summarize(MlflowClient(uri), "v2_sweep", str(out), n_boot=300, seed=3)
    pooled, estimates, values = _independent_intervals(300, 3)
    baseline = (1.0, "scratch")

    def interval(samples):
        return [pytest.approx(q) for q in np.quantile(samples, [0.025, 0.975])]

    assert summary["protocol"] == {"folds": 2, "trials_per_study": 2, "delta": 0.05, "confidence": 0.95,
                                   "selection_metric": "best_val_macro_f1"}
    assert summary["baseline"] == {"macro_f1": pytest.approx(estimates[baseline]),
                                   "ci95": interval(values[baseline]), "converged": False}  # one at the cap
    assert summary["zero_shot"] == {"macro_f1": pytest.approx(estimates["zero_shot"]),
                                    "ci95": interval(values["zero_shot"])}
    assert summary["bootstrap"]["n_objects"] == 60 and summary["bootstrap"]["n_objects_dropped"] == 0
    lows = {}
    for fraction, mode in ERROR_RATES:
        point = summary["fractions"][f"{fraction:g}"][mode]
        assert point["macro_f1"] == pytest.approx(estimates[(fraction, mode)])
        assert point["ci95"] == interval(values[(fraction, mode)])
        difference = values[(fraction, mode)] - values[baseline]
        assert point["difference"] == {"macro_f1": pytest.approx(estimates[(fraction, mode)] - estimates[baseline]),
                                       "ci95": interval(difference)}
        supported = np.mean(f1_score(TRUTH, pooled[(fraction, mode)][0], labels=["a", "b"], average=None)
                            + f1_score(TRUTH, pooled[(fraction, mode)][1], labels=["a", "b"], average=None)) / 2
        assert point["macro_f1_supported"] == pytest.approx(supported)
        assert point["per_class"]["c"]["support"] == 8
        if mode == "transfer":
            lows[fraction] = np.quantile(difference, 0.025)
    expected = {f"{f:g}": bool(all(lows[g] > -0.05 for g in lows if g >= f)) for f in lows}
    assert summary["matches"] == expected
    matching = [float(f) for f, value in expected.items() if value]
    assert summary["reduction"] == (pytest.approx(1 - min(matching)) if matching else None)
    assert summary["fraction_of_baseline"]["0.5"] == pytest.approx(estimates[(0.5, "transfer")] / estimates[baseline])
    assert len(summary["studies"]) == 12 and {row["fold"] for row in summary["studies"]} == {0, 1}
    selected = pd.read_csv(out / "selected_models.csv")
    assert len(selected) == 12 and selected["at_epoch_cap"].sum() == 1
    assert selected.loc[(selected["seed"] == 1) & (selected["fold"] == 1), "train.lr"].tolist() == [0.004] * 3
    per_class = pd.read_csv(out / "per_class.csv")
    assert len(per_class) == 9 and set(per_class["support"]) == {26, 8}
    table = pd.read_csv(out / "table.csv")
    assert table["ci95_low"].notna().all() and table["n_folds"].tolist() == [2, 2, 2]
    assert json.loads((out / "summary.json").read_text())["fractions"]["1"]["scratch"]["matches"] is True
    logged = {item.path for item in MlflowClient(uri).list_artifacts(sweep, "report")}
    assert {"report/selected_models.csv", "report/per_class.md", "report/table.md"} <= logged


def test_report_v2_point_without_every_prediction_falls_back_alone(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_v2_store(uri, tmp_path, without_predictions=[(0.5, "transfer", 1, 0)])
    summary = summarize(MlflowClient(uri), "v2_sweep", str(tmp_path / "report"), n_boot=100)
    half = summary["fractions"]["0.5"]["transfer"]
    assert half["ci95"] is None and half["macro_f1"] == pytest.approx(0.5)  # the logged test_macro_f1
    assert half["difference"]["ci95"] is None and "no predictions.csv" in half["note"]
    assert half["matches"] is False  # fallback rule: 0.5 < baseline - its standard error
    assert summary["fractions"]["1"]["transfer"]["ci95"] is not None and summary["baseline"]["ci95"] is not None


def test_a_point_with_folds_missing_is_left_out_instead_of_shrinking_every_comparison(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_v2_store(uri, tmp_path, missing_folds=[(0.5, "transfer", 1)])
    summary = summarize(MlflowClient(uri), "v2_sweep", str(tmp_path / "report"), n_boot=300, seed=3)
    _, estimates, _ = _independent_intervals(300, 3)
    assert summary["bootstrap"]["n_objects"] == 60  # not the 30 objects of fold 0
    assert summary["baseline"]["macro_f1"] == pytest.approx(estimates[(1.0, "scratch")])
    full = summary["fractions"]["1"]["transfer"]
    assert full["macro_f1"] == pytest.approx(estimates[(1.0, "transfer")]) and full["difference"]["ci95"] is not None
    half = summary["fractions"]["0.5"]["transfer"]
    assert half["ci95"] is None and half["matches"] is None and half["n_folds"] == 1
    assert half["note"].startswith("1 of 2 outer folds finished: left out")
    assert set(summary["matches"]) == {"1"} and set(summary["fraction_of_baseline"]) == {"1"}


def test_report_negative_delta_is_a_one_line_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri)
    out = tmp_path / "r"
    assert main(["report", "--tracking-uri", uri, "--experiment", "toy_sweep", "--out", str(out), "--delta", "-1"]) == 2
    assert "--delta -1.0" in capsys.readouterr().err and not out.exists()


def test_a_step_budget_sets_the_epoch_cap_of_convergence(tmp_path):
    """Under train.max_steps a trial may train past train.epochs: its logged epoch_budget is the cap."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_v2_store(uri, tmp_path, epoch_budget=3 * EPOCHS)
    summary = summarize(MlflowClient(uri), "v2_sweep", str(tmp_path / "report"), n_boot=50, seed=3)
    assert summary["baseline"]["converged"] is True  # best epoch EPOCHS < the budget 3 * EPOCHS
    selected = pd.read_csv(tmp_path / "report" / "selected_models.csv")
    assert set(selected["epochs"]) == {3 * EPOCHS}
    assert not selected["at_epoch_cap"].any()


def test_report_figures_copy_the_selected_trials_confusion_and_redraw_importances(tmp_path):
    from tl.sweep.report import collect

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = make_store(uri)
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("toy_sweep").experiment_id
    selected = {(row["fraction"], row["mode"], row["seed"]): row["run_id"]
                for row in collect(client, experiment_id, sweep)}
    png = b"\x89PNG\r\n\x1a\n" + b"selected trial"  # the trial's own file, copied byte for byte
    (tmp_path / "confusion_matrix.png").write_bytes(png)
    client.log_artifact(selected[(0.5, "transfer", 0)], str(tmp_path / "confusion_matrix.png"))
    fraction = tracking.find_runs(client, experiment_id, {tracking.ROLE: "fraction"})[0]
    tracking.log_json(client, fraction.info.run_id, {"stage": "transfer/f0.5/s0", "importances": {"train.lr": 0.7,
                      "model.dropout": 0.3}}, "importance_transfer_f0.5_s0.json")
    out = tmp_path / "report"
    assert main(["report", "--tracking-uri", uri, "--experiment", "toy_sweep", "--out", str(out)]) == 0
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["confusion_transfer_f0.5_s0.png", "importance_transfer_f0.5_s0.png"]  # others logged none
    assert (out / "figures" / "confusion_transfer_f0.5_s0.png").read_bytes() == png
    assert (out / "figures" / "importance_transfer_f0.5_s0.png").read_bytes()[:4] == b"\x89PNG"
