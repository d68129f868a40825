"""What a sweep prints: one line per finished trial and per finished study (TrialConsole), while
Ray, Tune and Train log to OUT/logs/sweep.log (quiet_ray); `--verbose` keeps Ray's own output."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

from ray import tune

from tl.sweep import tracking
from tl.sweep.results import SELECTION_METRIC, best_completed_trial
from tl.sweep.study import Study

LOG_FILE = os.path.join("logs", "sweep.log")
# (setting, short name) of the searched settings a trial line shows, when the trial has them.
KEY_PARAMS = (("transfer.strategy", "strategy"), ("transfer.freeze_depth", "freeze"), ("train.lr", "lr"),
              ("train.class_weight_power", "cw"), ("model.dropout", "dropout"))
QUIET_LOGGERS = ("ray", "mlflow", "optuna", "alembic", "urllib3", "filelock", "py.warnings")
# Environment a quiet sweep sets before Ray starts: Tune's old, silenceable reporter; no per-trial
# logger files (Tune's JSON/CSV/TensorBoard callbacks and their hints).
QUIET_ENVIRONMENT = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
                     "RAY_DEDUP_LOGS": "1", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


def trial_number(trial) -> int:
    """The trial's number within its study, 1, 2, ... (Tune's experiment tag starts with it)."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_")[0]
    return int(head) if head.isdigit() else 0


def format_value(value) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.2g}"


def key_params(config: dict) -> str:
    """`freeze=1 lr=0.0032 cw=0.5`: the KEY_PARAMS a trial's config sets, in that order."""
    return " ".join(f"{short}={format_value(config[name])}" for name, short in KEY_PARAMS if name in config)


def metric(value) -> str:
    return "  -  " if value is None else f"{float(value):.3f}"


def trial_line(study: Study, number: int, config: dict, result: dict, seconds: float, outcome: str) -> str:
    """One finished trial: `transfer f=0.25 s0 #2  freeze=1 lr=0.0032  val 0.612  test 0.598  23 s`.

    outcome: "completed" (val and test of the selected epoch), "pruned" (val of its last epoch,
    with the epoch ASHA stopped it at) or "failed"."""
    val = metric(result.get("val_macro_f1"))
    if outcome == "failed":
        scores = "failed"
    elif outcome == "pruned":
        scores = f"val {val}  pruned at epoch {int(result.get('epoch', 0))}"
    else:
        scores = f"val {val}  test {metric(result.get('test_macro_f1'))}"
    parts = (study.trial_run_name(number), key_params(config), scores, f"{seconds:.0f} s")
    return "  " + "  ".join(part for part in parts if part)


def study_line(study: Study, best: dict | None, trials: int, seconds: float) -> str:
    """One finished study: its best trial on validation (the champion) and its time."""
    if best is None:
        return f"{study.label}: no trial completed ({trials} trials, {seconds:.0f} s)"
    return (f"{study.label}: best val {metric(best.get('val_macro_f1'))}, its test macro-F1 "
            f"{metric(best.get('test_macro_f1'))} ({trials} trials, {seconds:.0f} s)")


class TrialConsole(tune.Callback):
    """A Tune callback printing trial_line for every trial of one study as it ends, and study_line
    once the study ends (`finish`)."""

    def __init__(self, study: Study, stream=None):
        self.study = study
        self.stream = stream
        self.started: dict[str, float] = {}
        self.best: dict | None = None
        self.trials = 0
        self.study_start = time.monotonic()

    def __getstate__(self):  # Tune pickles callbacks with the experiment state; a stream does not pickle
        state = dict(self.__dict__)
        state["stream"] = None
        return state

    def echo(self, line: str) -> None:
        print(line, file=self.stream or sys.stdout, flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started.setdefault(trial.trial_id, time.monotonic())

    def _seconds(self, trial) -> float:
        return time.monotonic() - self.started.get(trial.trial_id, self.study_start)

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        completed = bool(result.get("final"))
        self.trials += 1
        if completed and (self.best is None or result.get("val_macro_f1", -1) > self.best.get("val_macro_f1", -1)):
            self.best = dict(result)
        self.echo(trial_line(self.study, trial_number(trial), trial.config, result, self._seconds(trial),
                             "completed" if completed else "pruned"))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.trials += 1
        self.echo(trial_line(self.study, trial_number(trial), trial.config, {}, self._seconds(trial), "failed"))

    def finish(self, study_runs=()) -> None:
        """Print the study line. A study restored by --resume reports to the callbacks Tune
        pickled with it, not to this one: then the line comes from the study's MLflow runs."""
        best, trials = self.best, self.trials
        if trials == 0:
            ended = [run for run in study_runs if tracking.OUTCOME in run.data.tags]
            champion = best_completed_trial(ended)
            trials = len(ended)
            best = None if champion is None else {"val_macro_f1": champion.data.metrics[SELECTION_METRIC],
                                                  "test_macro_f1": champion.data.metrics.get("test_macro_f1")}
        self.echo(study_line(self.study, best, trials, time.monotonic() - self.study_start))


def quiet_ray(out: str) -> str:
    """Send Ray, Tune, Train, MLflow and Optuna logging to OUT/logs/sweep.log and hide warnings a
    user cannot act on; returns the log file's path. Call before Ray starts (its environment is
    read then); pass `log_to_driver=False` to ray.init so workers' output stays in Ray's logs."""
    path = os.path.join(out, LOG_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.captureWarnings(True)  # warnings.warn -> the py.warnings logger -> the file
    logging.raiseExceptions = False  # a log line the full disk refuses is dropped, not a traceback
    warnings.simplefilter("default")
    return path


def summary_lines(summary: dict) -> list[str]:
    """The end of a sweep: a table of test macro-F1 (95% paired-bootstrap interval) per fraction
    and mode, with the baseline and zero-shot points, from tl report's summary."""
    cells: dict[tuple[float, str], str] = {}
    for row in summary.get("table", []):
        interval = row.get("ci95")
        spread = f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else ""
        cells[(float(row["fraction"]), row["mode"])] = f"{row['macro_f1']:.3f}{spread}"
    modes = [mode for mode in ("transfer", "scratch") if any(key[1] == mode for key in cells)]
    width = max([len(cell) for cell in cells.values()] + [len(mode) for mode in modes] + [8])
    lines = ["test macro-F1 (95% CI):", f"  {'fraction':>8}  " + "  ".join(f"{mode:<{width}}" for mode in modes)]
    for fraction in sorted({key[0] for key in cells}):
        lines.append(f"  {fraction:>8g}  " + "  ".join(f"{cells.get((fraction, mode), '-'):<{width}}" for mode in modes))
    zero_shot = summary.get("zero_shot") or {}
    if zero_shot.get("macro_f1") is not None:
        lines.append(f"  zero-shot (base model as it is): {zero_shot['macro_f1']:.3f}")
    return lines
