"""`tl report`: summarise a sweep's MLflow experiment into a figure, tables and summary.json.

For every target fraction, mode and seed, the trial with the best validation macro-F1
(`best_val_macro_f1`) is selected; its test macro-F1 is that study's result. Per fraction and mode
the table gives the mean over seeds, the standard deviation and the standard error (std / sqrt(n);
0 with one seed).

    baseline               = mean test macro-F1 of scratch at fraction 1.0
    fraction_of_baseline f = mean transfer test macro-F1 at f / baseline
    transfer "matches" the baseline at f  iff  transfer mean at f >= baseline - baseline std. error
    reduction              = 1 - the smallest fraction at which transfer matches (null if none)
"""

from __future__ import annotations

import json
import math
import os

import matplotlib.pyplot as plt
import pandas as pd
from mlflow.tracking import MlflowClient

from tl.errors import TLError
from tl.sweep import tracking
from tl.sweep.results import SELECTION_METRIC, best_completed_trial, is_completed

METRIC = "test_macro_f1"  # the reported score of a selected trial


def add_arguments(parser) -> None:
    parser.add_argument("--tracking-uri", required=True, help="MLflow tracking URI, e.g. sqlite:///out/mlflow.db")
    parser.add_argument("--experiment", required=True, help="MLflow experiment of the sweep (ztf_to_lsst, sims_to_bts)")
    parser.add_argument("--out", required=True, help="directory for summary.json, table.csv/.md, the figure")
    parser.add_argument("--sweep-run-id", default=None, help="the sweep run to summarise (default: the latest)")


def run(args) -> int:
    store = args.tracking_uri[len("sqlite:///"):] if args.tracking_uri.startswith("sqlite:///") else None
    if store is not None and not os.path.isfile(store):
        raise TLError(f"--tracking-uri {args.tracking_uri}: no such SQLite store ({store})")
    tracking.check_tracking_uri(args.tracking_uri)
    summary = summarize(MlflowClient(args.tracking_uri), args.experiment, args.out, sweep_run_id=args.sweep_run_id)
    print(json.dumps({key: summary[key] for key in ("reduction", "baseline", "fraction_of_baseline")},
                     indent=2))
    return 0


def collect(client, experiment_id: str, sweep_run_id: str) -> list[dict]:
    """One row per (fraction, mode, seed): the selected trial's metrics (best_completed_trial)."""
    rows = []
    fraction_runs = tracking.find_runs(client, experiment_id, {tracking.ROLE: "fraction",
                                                               "mlflow.parentRunId": sweep_run_id})
    for fraction_run in fraction_runs:
        trials = tracking.find_runs(client, experiment_id, {tracking.ROLE: "trial",
                                                            "mlflow.parentRunId": fraction_run.info.run_id})
        studies: dict[tuple, list] = {}
        for trial in trials:
            if not is_completed(trial):
                continue
            key = (float(trial.data.params["data.target_fraction"]), trial.data.tags["mode"],
                   int(trial.data.params["data.seed"]))
            studies.setdefault(key, []).append(trial)
        for (fraction, mode, seed), runs in studies.items():
            best = best_completed_trial(runs)
            rows.append({"fraction": fraction, "mode": mode, "seed": seed, "n_trials": len(runs),
                         "run_id": best.info.run_id, SELECTION_METRIC: best.data.metrics[SELECTION_METRIC],
                         **{name: best.data.metrics.get(name, math.nan) for name in
                            ("test_macro_f1", "test_balanced_accuracy", "test_roc_auc_macro")}})
    return sorted(rows, key=lambda row: (row["fraction"], row["mode"], row["seed"]))


def aggregate(rows: list[dict]) -> list[dict]:
    """Per (fraction, mode): mean, std (ddof 1) and standard error of METRIC over seeds."""
    groups: dict[tuple, list[float]] = {}
    trials: dict[tuple, int] = {}
    for row in rows:
        key = (row["fraction"], row["mode"])
        groups.setdefault(key, []).append(row[METRIC])
        trials[key] = trials.get(key, 0) + row["n_trials"]
    table = []
    for (fraction, mode), values in sorted(groups.items()):
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        table.append({"fraction": fraction, "mode": mode, "n_seeds": n, "n_trials": trials[(fraction, mode)],
                      f"{METRIC}_mean": mean, f"{METRIC}_std": std, f"{METRIC}_stderr": std / math.sqrt(n)})
    return table


def reduction_summary(table: list[dict]) -> dict:
    """baseline, fraction_of_baseline, matches and reduction (see the module docstring)."""
    by_key = {(row["fraction"], row["mode"]): row for row in table}
    scratch_full = by_key.get((1.0, "scratch"))
    transfer = sorted((row for row in table if row["mode"] == "transfer"), key=lambda row: row["fraction"])
    if scratch_full is None:
        return {"baseline": None, "baseline_stderr": None, "fraction_of_baseline": {}, "matches": {},
                "reduction": None, "note": "no completed scratch study at fraction 1.0"}
    baseline = scratch_full[f"{METRIC}_mean"]
    threshold = baseline - scratch_full[f"{METRIC}_stderr"]
    fraction_of_baseline = {f"{row['fraction']:g}": (row[f"{METRIC}_mean"] / baseline if baseline else None)
                            for row in transfer}
    matches = {f"{row['fraction']:g}": bool(row[f"{METRIC}_mean"] >= threshold) for row in transfer}
    matching = [row["fraction"] for row in transfer if row[f"{METRIC}_mean"] >= threshold]
    return {"baseline": baseline, "baseline_stderr": scratch_full[f"{METRIC}_stderr"],
            "fraction_of_baseline": fraction_of_baseline, "matches": matches,
            "smallest_matching_fraction": min(matching) if matching else None,
            "reduction": 1.0 - min(matching) if matching else None}


def summarize(client, experiment: str, out: str, sweep_run_id: str | None = None,
              extra: dict | None = None) -> dict:
    """Write summary.json, table.csv, table.md and data_efficiency.png to `out`; log them to the
    sweep run; return the summary."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise TLError(f"--experiment {experiment}: no such experiment at {client.tracking_uri}")
    if sweep_run_id is None:
        sweeps = tracking.find_runs(client, found.experiment_id, {tracking.ROLE: "sweep"})
        if not sweeps:
            raise TLError(f"--experiment {experiment}: no sweep run (tag {tracking.ROLE}=sweep) in it")
        sweep_run_id = sweeps[-1].info.run_id
    elif not _is_sweep_run(client, sweep_run_id, found.experiment_id):
        raise TLError(f"--sweep-run-id {sweep_run_id}: no sweep run with that id in experiment {experiment}")
    rows = collect(client, found.experiment_id, sweep_run_id)
    table = aggregate(rows)
    summary = {"experiment": experiment, "sweep_run_id": sweep_run_id, "metric": METRIC,
               "selection_metric": SELECTION_METRIC,
               "matches_definition": "transfer mean >= scratch@1.0 mean - scratch@1.0 standard error",
               **reduction_summary(table), "table": table, "studies": rows, **(extra or {})}
    os.makedirs(out, exist_ok=True)
    write_tables(table, out)
    figure = efficiency_figure(table, summary.get("baseline"), experiment)
    figure.savefig(os.path.join(out, "data_efficiency.png"), dpi=120)
    with open(os.path.join(out, "summary.json"), "w") as stream:
        json.dump(summary, stream, indent=2, default=str)
    client.log_artifacts(sweep_run_id, out, "report")
    return summary


def _is_sweep_run(client, run_id: str, experiment_id: str) -> bool:
    try:
        run = client.get_run(run_id)
    except Exception:  # MlflowException (unknown id) or a malformed id
        return False
    return run.info.experiment_id == experiment_id and run.data.tags.get(tracking.ROLE) == "sweep"


def write_tables(table: list[dict], out: str) -> None:
    frame = pd.DataFrame(table, columns=["fraction", "mode", "n_seeds", "n_trials", f"{METRIC}_mean",
                                         f"{METRIC}_std", f"{METRIC}_stderr"])
    frame.to_csv(os.path.join(out, "table.csv"), index=False)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for record in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in record) + " |")
    with open(os.path.join(out, "table.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")


def efficiency_figure(table: list[dict], baseline: float | None, experiment: str):
    """Test macro-F1 against target fraction, transfer and scratch; bars: +-1 std over seeds."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for mode, marker in (("transfer", "o"), ("scratch", "s")):
        rows = sorted((row for row in table if row["mode"] == mode), key=lambda row: row["fraction"])
        if rows:
            axis.errorbar([r["fraction"] for r in rows], [r[f"{METRIC}_mean"] for r in rows],
                          yerr=[r[f"{METRIC}_std"] for r in rows], marker=marker, capsize=3, label=mode)
    if baseline is not None:
        axis.axhline(baseline, color="grey", linestyle="--", label="scratch, 100% of labels")
    axis.set_xscale("log")
    fractions = sorted({row["fraction"] for row in table})
    if fractions:
        axis.set_xticks(fractions, [f"{f:g}" for f in fractions], rotation=45)  # 0.25 and 0.3 sit close
        axis.minorticks_off()
    axis.set_xlabel("fraction of target training labels")
    axis.set_ylabel("test macro-F1 (best trial on validation)")
    axis.set_title(experiment)
    axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure
