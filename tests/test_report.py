"""`tl report` on a hand-made MLflow store (SQLite, no Ray), against hand-computed values."""

import json
import math

import pytest
from mlflow.tracking import MlflowClient

from tl.sweep import tracking
from tl.cli import main

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
    assert summary["baseline"] == pytest.approx(BASELINE)
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

    table = [{"fraction": 1.0, "mode": "scratch", "test_macro_f1_mean": 0.8, "test_macro_f1_stderr": 0.0},
             {"fraction": 0.5, "mode": "transfer", "test_macro_f1_mean": 0.6, "test_macro_f1_stderr": 0.0}]
    summary = reduction_summary(table)
    assert summary["reduction"] is None and summary["fraction_of_baseline"] == {"0.5": pytest.approx(0.75)}


def test_report_unknown_experiment_is_a_one_line_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri)
    assert main(["report", "--tracking-uri", uri, "--experiment", "nope", "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # MLflow logs its own lines before
    assert error.startswith("tl report: error:") and "nope" in error
    assert not (tmp_path / "r").exists()
