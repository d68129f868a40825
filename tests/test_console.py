"""The sweep console's lines and the MLflow run names (no Ray start-up)."""

import io
import logging
import os
import types

from tl.sweep import console
from tl.sweep.console import TrialConsole, key_params, study_line, summary_lines, trial_line, trial_number
from tl.sweep.runs import fraction_run_name, sweep_run_name
from tl.sweep.study import Study


def test_trial_lines_show_study_number_key_params_metrics_and_seconds():
    study = Study(0.05, "transfer", 1)
    config = {"train.lr": 0.0031622, "transfer.freeze_depth": 2, "transfer.strategy": "depth", "train.weight_decay": 1e-4}
    line = trial_line(study, 3, config, {"val_macro_f1": 0.61234, "test_macro_f1": 0.5987, "final": 1.0}, 23.4, "completed")
    assert line == "  transfer f=0.05 s1 #3  strategy=depth freeze=2 lr=0.0032  val 0.612  test 0.599  23 s"
    pruned = trial_line(Study(1.0, "scratch", 0), 2, {"model.dropout": 0.25}, {"val_macro_f1": 0.2, "epoch": 2},
                        5.0, "pruned")
    assert pruned == "  scratch f=1 s0 #2  dropout=0.25  val 0.200  pruned at epoch 2  5 s"
    assert trial_line(study, 1, {}, {}, 1.6, "failed") == "  transfer f=0.05 s1 #1  failed  2 s"
    assert trial_line(Study.base(), 0, {}, {"val_macro_f1": 0.7, "test_macro_f1": 0.69}, 28, "completed") == \
        "  base  val 0.700  test 0.690  28 s"


def test_key_params_keep_their_order_and_skip_the_rest():
    assert key_params({"train.lr": 1e-3, "model.dropout": 0.5, "other": 1}) == "lr=0.001 dropout=0.5"
    assert key_params({}) == ""


def test_study_line_names_the_best_trial_on_validation():
    study = Study(0.25, "scratch", 0, fold=1)
    assert study_line(study, {"val_macro_f1": 0.5, "test_macro_f1": 0.45}, 2, 61.2) == \
        "scratch f=0.25 s0 k1: best val 0.500, its test macro-F1 0.450 (2 trials, 61 s)"
    assert study_line(study, None, 2, 3) == "scratch f=0.25 s0 k1: no trial completed (2 trials, 3 s)"


def test_the_callback_prints_a_line_per_trial_and_keeps_the_best_on_validation():
    stream = io.StringIO()
    reporter = TrialConsole(Study(0.05, "transfer", 0), stream=stream)
    trials = [types.SimpleNamespace(trial_id=f"t{i}", experiment_tag=f"{i}_lr=x", config={"train.lr": 0.01},
                                    last_result={"final": 1.0, "val_macro_f1": val, "test_macro_f1": test})
              for i, (val, test) in enumerate([(0.4, 0.9), (0.6, 0.5)], start=1)]
    for trial in trials:
        reporter.on_trial_start(0, trials, trial)
        reporter.on_trial_complete(0, trials, trial)
    reporter.finish()
    lines = stream.getvalue().splitlines()
    assert [line.split("  ")[1] for line in lines[:2]] == ["transfer f=0.05 s0 #1", "transfer f=0.05 s0 #2"]
    assert lines[2].startswith("transfer f=0.05 s0: best val 0.600, its test macro-F1 0.500 (2 trials")


def test_a_restored_study_takes_its_line_from_the_mlflow_runs():
    """After --resume Tune reports to the callbacks it pickled, not to the new console."""
    def run(outcome, metrics):
        return types.SimpleNamespace(data=types.SimpleNamespace(tags={"tl.outcome": outcome}, metrics=metrics))

    stream = io.StringIO()
    runs = [run("completed", {"best_val_macro_f1": 0.4, "test_macro_f1": 0.9}),
            run("completed", {"best_val_macro_f1": 0.6, "test_macro_f1": 0.5}), run("pruned", {}),
            types.SimpleNamespace(data=types.SimpleNamespace(tags={}, metrics={}))]  # still running: not counted
    TrialConsole(Study(1.0, "scratch", 0), stream=stream).finish(runs)
    assert stream.getvalue().startswith("scratch f=1 s0: best val 0.600, its test macro-F1 0.500 (3 trials")


def test_trial_number_comes_from_tunes_experiment_tag():
    assert trial_number(types.SimpleNamespace(experiment_tag="12_train.lr=0.001")) == 12
    assert trial_number(types.SimpleNamespace(experiment_tag="")) == 0


def test_run_names_read_at_a_glance():
    assert sweep_run_name("ztf_to_lsst") == "sweep ztf_to_lsst"
    assert fraction_run_name(0.25) == "f=0.25" and fraction_run_name(1.0) == "f=1"
    assert Study(0.05, "transfer", 1).trial_run_name(3) == "transfer f=0.05 s1 #3"
    assert Study.base().trial_run_name(1) == "base"


def test_summary_table_has_a_row_per_fraction_and_a_column_per_mode():
    summary = {"table": [{"fraction": 0.05, "mode": "transfer", "macro_f1": 0.61, "ci95": [0.55, 0.66]},
                         {"fraction": 0.05, "mode": "scratch", "macro_f1": 0.30, "ci95": [0.25, 0.35]},
                         {"fraction": 1.0, "mode": "scratch", "macro_f1": 0.7, "ci95": None}],
               "zero_shot": {"macro_f1": 0.2}}
    lines = summary_lines(summary)
    assert lines[1].split() == ["fraction", "transfer", "scratch"]
    assert lines[2].split() == ["0.05", "0.610", "[0.55,", "0.66]", "0.300", "[0.25,", "0.35]"]
    assert lines[3].split() == ["1", "-", "0.700"]
    assert lines[4] == "  zero-shot (base model as it is): 0.200"


def test_quiet_ray_sends_library_logging_to_the_log_file(tmp_path, monkeypatch):
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
             for name in console.QUIET_LOGGERS}
    for name in console.QUIET_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    try:
        path = console.quiet_ray(str(tmp_path))
        logging.getLogger("ray.tune").warning("a Tune warning")
        for handler in logging.getLogger("ray").handlers:
            handler.flush()
        assert path == os.path.join(str(tmp_path), "logs", "sweep.log")
        assert "ray.tune: a Tune warning" in open(path).read()
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
    finally:
        logging.captureWarnings(False)
        for handler in logging.getLogger("ray").handlers:
            handler.close()
        for name, (handlers, propagate) in saved.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate
