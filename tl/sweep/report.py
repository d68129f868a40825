"""`tl report`: summarise a sweep's MLflow experiment into a figure, tables and summary.json.

For every target fraction, mode, seed (and outer fold), the trial with the best validation
macro-F1 (`best_val_macro_f1`) is selected. A point (fraction, mode) is scored on its selected
models' test predictions (predictions.csv), pooled over folds, averaged over seeds (tl.stats):

    baseline               = scratch at fraction 1.0
    point estimate         = mean over seeds of the macro-F1 of the predictions pooled over folds
    ci95                   = 95% percentile interval of a paired bootstrap over test objects
    difference f           = transfer(f) - baseline, drawn by drawn, with its ci95
    transfer "matches" at f iff the difference's lower bound > -delta at f and every larger fraction
    reduction              = 1 - the smallest fraction at which transfer matches (null if none)
    fraction_of_baseline f = transfer estimate at f / baseline estimate

A point whose selected models lack predictions.csv (older sweeps) falls back to the mean over
seeds of the logged test macro-F1 (ci95 null) and, for matches, to: mean >= baseline - baseline
standard error over seeds. The table also keeps the mean, std and standard error over seeds of
the logged test macro-F1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tl import stats
from tl.errors import TLError
from tl.evaluation import json_safe
from tl.sweep import tracking
from tl.sweep.report_figures import write_report_figures
from tl.sweep.report_files import efficiency_figure, write_tables
from tl.sweep.results import SELECTION_METRIC, best_completed_trial, is_completed
from tl.sweep.space import SEARCHED
from tl.sweep.tracking import PREDICTIONS_FILE

METRIC = "test_macro_f1"  # the logged score of a selected trial
LOGGED = ("test_macro_f1", "test_balanced_accuracy", "test_roc_auc_macro")
DEFAULT_DELTA = 0.02  # the matches margin when neither --delta nor the sweep run's sweep.delta is given
CONFIDENCE = 0.95
BASELINE = (1.0, "scratch")
ZERO_SHOT = "zero_shot"  # the tl.role of zero-shot runs, and their key among the points


def add_arguments(parser) -> None:
    parser.add_argument("--tracking-uri", required=True, help="MLflow tracking URI, e.g. sqlite:///out/mlflow.db")
    parser.add_argument("--experiment", required=True, help="MLflow experiment of the sweep (ztf_to_lsst, sims_to_bts)")
    parser.add_argument("--out", required=True, help="directory for summary.json, table.csv/.md, the figure")
    parser.add_argument("--sweep-run-id", default=None, help="the sweep run to summarise (default: the latest)")
    parser.add_argument("--delta", type=float, default=None,
                        help=f"matches margin (default: the sweep's sweep.delta, else {DEFAULT_DELTA})")


def run(args) -> int:
    store = args.tracking_uri[len("sqlite:///"):] if args.tracking_uri.startswith("sqlite:///") else None
    if store is not None and not os.path.isfile(store):
        raise TLError(f"--tracking-uri {args.tracking_uri}: no such SQLite store ({store})")
    if args.delta is not None and not (math.isfinite(args.delta) and args.delta >= 0):
        raise TLError(f"--delta {args.delta}: must be a number >= 0")
    tracking.check_tracking_uri(args.tracking_uri)
    summary = summarize(MlflowClient(args.tracking_uri), args.experiment, args.out,
                        sweep_run_id=args.sweep_run_id, delta=args.delta)
    print(json.dumps(json_safe({key: summary[key] for key in ("reduction", "baseline", "fraction_of_baseline")}),
                     indent=2))
    return 0


def collect(client, experiment_id: str, sweep_run_id: str) -> list[dict]:
    """One row per (fraction, mode, seed, fold): the selected trial (best_completed_trial)."""
    rows = []
    fraction_runs = tracking.find_runs(client, experiment_id, {tracking.ROLE: "fraction",
                                                               "mlflow.parentRunId": sweep_run_id})
    for fraction_run in fraction_runs:
        trials = tracking.find_runs(client, experiment_id, {tracking.ROLE: "trial",
                                                            "mlflow.parentRunId": fraction_run.info.run_id})
        studies: dict[tuple, list] = {}
        for trial in filter(is_completed, trials):
            params = trial.data.params
            key = (float(params["data.target_fraction"]), trial.data.tags["mode"], int(params["data.seed"]),
                   _fold(params))
            studies.setdefault(key, []).append(trial)
        for (fraction, mode, seed, fold), runs in studies.items():
            rows.append(_study_row(best_completed_trial(runs), fraction, mode, seed, fold, len(runs)))
    return sorted(rows, key=lambda row: (row["fraction"], row["mode"], row["seed"], _order(row["fold"])))


def _study_row(best, fraction, mode, seed, fold, n_trials) -> dict:
    metrics, params = best.data.metrics, best.data.params
    # The epoch cap: a train.max_steps budget logs its own (epoch_budget), else train.epochs.
    budget = metrics.get("epoch_budget")
    epochs = int(budget) if budget is not None else _number(params.get("train.epochs"))
    best_epoch = metrics.get("best_epoch")
    return {"fraction": fraction, "mode": mode, "seed": seed, "fold": fold, "n_trials": n_trials,
            "run_id": best.info.run_id, SELECTION_METRIC: metrics[SELECTION_METRIC],
            **{name: metrics.get(name, math.nan) for name in LOGGED},
            "best_epoch": None if best_epoch is None else int(best_epoch), "epochs": epochs,
            "best_step": None if metrics.get("best_step") is None else int(metrics["best_step"]),
            "params": {name: _number(params[name]) for name in SEARCHED if name in params}}


def _fold(params: dict) -> int | None:
    text = params.get("data.fold")
    return None if text in (None, "", "None") else int(text)


def _order(fold: int | None) -> int:
    return -1 if fold is None else fold


def _number(text):
    if text in (None, "None"):
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (fraction, mode): mean, std (ddof 1) and standard error over seeds of the logged METRIC
    (each seed's value: the mean over its folds)."""
    groups: dict[tuple, dict[int, list[float]]] = {}
    trials: dict[tuple, int] = {}
    folds: dict[tuple, set] = {}
    for row in rows:
        key = (row["fraction"], row["mode"])
        groups.setdefault(key, {}).setdefault(row["seed"], []).append(row[METRIC])
        trials[key] = trials.get(key, 0) + row["n_trials"]
        folds.setdefault(key, set()).add(row["fold"])
    table = []
    for (fraction, mode), by_seed in sorted(groups.items()):
        values = [sum(v) / len(v) for v in by_seed.values()]
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        table.append({"fraction": fraction, "mode": mode, "n_seeds": n, "n_trials": trials[(fraction, mode)],
                      f"{METRIC}_mean": mean, f"{METRIC}_std": std, f"{METRIC}_stderr": std / math.sqrt(n),
                      "n_folds": len(folds[(fraction, mode)])})
    return table


def protocol(client, sweep_run_id: str, delta: float | None) -> dict:
    """The declared protocol, from the sweep run's params (sweep.folds, .num_samples, .delta)."""
    params = client.get_run(sweep_run_id).data.params
    declared = _number(params.get("sweep.delta"))
    delta = delta if delta is not None else DEFAULT_DELTA if declared is None else float(declared)
    return {"folds": _number(params.get("sweep.folds")) or 1,
            "trials_per_study": _number(params.get("sweep.num_samples")), "delta": delta,
            "confidence": CONFIDENCE, "selection_metric": SELECTION_METRIC}


def prediction_sets(client, rows: list[dict], zero_shot_runs: list, directory: str) -> dict:
    """points[key][seed][fold]: the PredictionTable of each selected model (None where it has no
    predictions.csv); key (fraction, mode), or ZERO_SHOT for the zero-shot runs."""
    entries = [((row["fraction"], row["mode"]), row["seed"], row["fold"], row["run_id"]) for row in rows]
    entries += [(ZERO_SHOT, int(run.data.params.get("data.seed", 0)), _fold(run.data.params), run.info.run_id)
                for run in zero_shot_runs]
    nested: dict = {}
    for key, seed, fold, run_id in entries:
        nested.setdefault(key, {}).setdefault(seed, {})[_order(fold)] = _read_predictions(client, run_id, directory)
    return {key: [[folds[f] for f in sorted(folds)] for _, folds in sorted(seeds.items())]
            for key, seeds in nested.items()}


def _read_predictions(client, run_id: str, directory: str):
    if PREDICTIONS_FILE not in {item.path for item in client.list_artifacts(run_id)}:
        return None  # a run of an older sweep
    try:
        with _no_progress_bar():  # one bar per selected model otherwise
            path = client.download_artifacts(run_id, PREDICTIONS_FILE, os.path.join(directory, run_id))
        return stats.PredictionTable.from_frame(pd.read_csv(path, dtype={"object_id": str, "label": str},
                                                            keep_default_na=False))
    except (OSError, KeyError, ValueError, MlflowException):  # unreadable: the point falls back
        return None


@contextlib.contextmanager
def _no_progress_bar():
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def short_points(rows: list[dict], folds: int) -> set:
    """(fraction, mode) points with a selected model for fewer than `folds` outer folds (a sweep
    cut by --time-budget): pooled with the others they would shrink every comparison to the
    objects of their folds, so they are left out of it (and of the match rule)."""
    seen: dict[tuple, set] = {}
    for row in rows:
        seen.setdefault((row["fraction"], row["mode"]), set()).add(row["fold"])
    return {key for key, found in seen.items() if len(found) < folds}


def point_rows(table: list[dict], rows: list[dict], found: dict, short: set = frozenset(),
               folds: int = 1) -> list[dict]:
    """The table rows with every point's v2 columns: from `found`, else the logged means (and
    for a point in `short`, a note that it is left out of the comparison)."""
    logged = {}
    for row in rows:  # the mean over folds, then over seeds, of each logged metric
        logged.setdefault((row["fraction"], row["mode"]), {}).setdefault(row["seed"], []).append(row)
    result = []
    for row in table:
        key = (row["fraction"], row["mode"])
        point = found.get(key)
        if point is None:
            seeds = logged[key].values()
            means = {name: float(np.mean([np.mean([r[name] for r in folds]) for folds in seeds])) for name in LOGGED}
            point = {"macro_f1": means[METRIC], "ci95": None, "difference": None,
                     "balanced_accuracy": means["test_balanced_accuracy"],
                     "roc_auc_macro": means["test_roc_auc_macro"], "macro_f1_supported": None, "per_class": None,
                     "note": f"{row['n_folds']} of {folds} outer folds finished: left out of the pooled "
                             "comparison and the match rule; mean of the logged test_macro_f1" if key in short else
                             "no predictions.csv for every selected model: mean of the logged test_macro_f1",
                     "incomplete": key in short}
        result.append({**row, **point})
    return result


def reduction_summary(table: list[dict], delta: float = DEFAULT_DELTA) -> dict:
    """baseline, fraction_of_baseline, matches and reduction (see the module docstring). Rows
    without a `difference` interval use the fallback rule."""
    by_key = {(row["fraction"], row["mode"]): row for row in table}
    scratch_full = by_key.get(BASELINE)
    transfer = sorted((row for row in table if row["mode"] == "transfer" and not row.get("incomplete")),
                      key=lambda row: row["fraction"])
    if scratch_full is None:
        return {"baseline": None, "baseline_stderr": None, "fraction_of_baseline": {}, "matches": {},
                "smallest_matching_fraction": None, "reduction": None,
                "note": "no completed scratch study at fraction 1.0"}
    baseline = scratch_full["macro_f1"]
    matched = matched_fractions(table, "transfer", delta)
    return {"baseline": {"macro_f1": baseline, "ci95": scratch_full.get("ci95"), "converged": None},
            "baseline_stderr": scratch_full[f"{METRIC}_stderr"],
            "fraction_of_baseline": {f"{row['fraction']:g}": row["macro_f1"] / baseline if baseline else None
                                     for row in transfer},
            "matches": {f"{fraction:g}": value for fraction, value in matched.items()},
            "smallest_matching_fraction": stats.smallest_matching_fraction(matched),
            "reduction": stats.reduction(matched)}


def matched_fractions(table: list[dict], mode: str, delta: float) -> dict[float, bool]:
    """stats.matches of `mode`'s rows against the baseline row ({} without one)."""
    baseline = next((row for row in table if (row["fraction"], row["mode"]) == BASELINE), None)
    if baseline is None:
        return {}
    return stats.matches({row["fraction"]: within_margin(row, baseline["macro_f1"], baseline[f"{METRIC}_stderr"], delta)
                          for row in table if row["mode"] == mode and not row.get("incomplete")})


def within_margin(row: dict, baseline: float, baseline_stderr: float, delta: float) -> bool:
    """The lower bound of the row's paired difference > -delta; without one, the fallback rule."""
    if row.get("difference") and row["difference"].get("ci95"):
        return stats.within_margin(row["difference"]["ci95"][0], delta)
    return bool(row["macro_f1"] >= baseline - baseline_stderr)


def converged(rows: list[dict]) -> bool | None:
    """Every selected scratch-at-1.0 model's best epoch is below its epoch cap (None: unknown)."""
    selected = [row for row in rows if (row["fraction"], row["mode"]) == BASELINE]
    if not selected or any(row["best_epoch"] is None or row["epochs"] is None for row in selected):
        return None
    return all(row["best_epoch"] < row["epochs"] for row in selected)


def zero_shot_summary(found: dict, runs: list) -> dict | None:
    if not runs:
        return None
    if ZERO_SHOT in found:
        return {"macro_f1": found[ZERO_SHOT]["macro_f1"], "ci95": found[ZERO_SHOT]["ci95"]}
    logged = [run.data.metrics[METRIC] for run in runs if METRIC in run.data.metrics]
    return {"macro_f1": float(np.mean(logged)) if logged else None, "ci95": None,
            "note": "zero-shot predictions missing or not covering the test objects: mean of the logged "
                    f"{METRIC}"}


def by_fraction(table: list[dict], delta: float) -> dict:
    """fractions[f][mode]: the point, its ci95, the difference and matches (both modes)."""
    baseline = next((row for row in table if (row["fraction"], row["mode"]) == BASELINE), None)
    result: dict = {}
    for mode in ("transfer", "scratch"):
        matched = matched_fractions(table, mode, delta)
        for row in (row for row in table if row["mode"] == mode):
            point = {name: row.get(name) for name in ("macro_f1", "ci95", "difference", "balanced_accuracy",
                                                       "roc_auc_macro", "macro_f1_supported", "per_class",
                                                       "n_seeds", "n_folds", "note")}
            if point["difference"] is None and baseline:
                point["difference"] = {"macro_f1": row["macro_f1"] - baseline["macro_f1"], "ci95": None}
            point["matches"] = matched.get(row["fraction"])
            result.setdefault(f"{row['fraction']:g}", {})[mode] = point
    return result


def summarize(client, experiment: str, out: str, sweep_run_id: str | None = None, extra: dict | None = None,
              delta: float | None = None, n_boot: int = 2000, seed: int = 0) -> dict:
    """Write summary.json, the tables and data_efficiency.png to `out`; log them to the sweep run;
    return the summary. `delta` None: the sweep run's sweep.delta, else DEFAULT_DELTA."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise TLError(f"--experiment {experiment}: no such experiment at {client.tracking_uri}")
    sweep_run_id = sweep_run_for(client, found.experiment_id, experiment, sweep_run_id)
    declared = protocol(client, sweep_run_id, delta)
    rows = collect(client, found.experiment_id, sweep_run_id)
    zero_shot_runs = tracking.find_runs(client, found.experiment_id, {tracking.ROLE: ZERO_SHOT,
                                                                      "mlflow.parentRunId": sweep_run_id})
    with tempfile.TemporaryDirectory() as directory:
        points = prediction_sets(client, rows, zero_shot_runs, directory)
    short = short_points(rows, declared["folds"])  # cut by --time-budget: not on the pooled objects
    estimates, bootstrap = stats.point_estimates({key: seeds for key, seeds in points.items() if key not in short},
                                                 BASELINE, (ZERO_SHOT,), n_boot, seed)
    table = point_rows(aggregate(rows), rows, estimates, short, declared["folds"])
    reduced = reduction_summary(table, declared["delta"])
    if reduced["baseline"] is not None:
        reduced["baseline"]["converged"] = converged(rows)
    fractions = by_fraction(table, declared["delta"])
    for row in table:
        row["matches"] = fractions[f"{row['fraction']:g}"][row["mode"]]["matches"]
    summary = {"experiment": experiment, "sweep_run_id": sweep_run_id, "metric": METRIC,
               "selection_metric": SELECTION_METRIC, "protocol": declared, "bootstrap": bootstrap,
               "matches_definition": matches_definition(declared["delta"]),
               **reduced, "zero_shot": zero_shot_summary(estimates, zero_shot_runs), "fractions": fractions,
               "table": [{k: v for k, v in row.items() if k not in ("per_class", "difference")} for row in table],
               "studies": rows, **(extra or {})}
    os.makedirs(out, exist_ok=True)
    write_tables(table, rows, out)
    write_report_figures(client, found.experiment_id, sweep_run_id, rows, out)
    figure = efficiency_figure(table, summary["baseline"], summary["zero_shot"], experiment)
    figure.savefig(os.path.join(out, "data_efficiency.png"), dpi=120)
    with open(os.path.join(out, "summary.json"), "w") as stream:
        json.dump(json_safe(summary), stream, indent=2, default=str)
    client.log_artifacts(sweep_run_id, out, "report")
    return summary


def matches_definition(delta: float) -> str:
    return (f"transfer at f matches iff the lower bound of the {CONFIDENCE:.0%} paired-bootstrap interval of "
            f"transfer(g) - scratch@1.0 test macro-F1 is above -delta ({delta:g}) at g = f and at every larger "
            "fraction g; a point without predictions.csv instead needs its mean >= scratch@1.0 mean - "
            "scratch@1.0 standard error over seeds")


def sweep_run_for(client, experiment_id: str, experiment: str, sweep_run_id: str | None) -> str:
    """The id of `experiment`'s sweep run: `sweep_run_id` checked to be one, else its newest; TLError if none."""
    if sweep_run_id is None:
        sweeps = tracking.find_runs(client, experiment_id, {tracking.ROLE: "sweep"})
        if not sweeps:
            raise TLError(f"--experiment {experiment}: no sweep run (tag {tracking.ROLE}=sweep) in it")
        return sweeps[-1].info.run_id
    try:
        run = client.get_run(sweep_run_id)
    except Exception:  # MlflowException (unknown id) or a malformed id
        run = None
    if run is None or run.info.experiment_id != experiment_id or run.data.tags.get(tracking.ROLE) != "sweep":
        raise TLError(f"--sweep-run-id {sweep_run_id}: no sweep run with that id in experiment {experiment}")
    return sweep_run_id
