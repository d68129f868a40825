"""The files `tl report` writes besides summary.json: tables (CSV and Markdown) and the figure.

table.csv/.md         one row per fraction and mode: logged means over seeds, the point estimate,
                      its 95% interval, the paired difference from scratch@1.0 and its interval,
                      balanced accuracy, ROC AUC, macro-F1 over classes with >= 10 test objects
per_class.csv/.md     F1 (mean over seeds) and support of every class at every point
selected_models.csv   every selected model: study, run, chosen settings, best epoch, epoch cap
convergence.csv/.md   per fraction: steps to the best validation score, transfer vs scratch (paired ratio)
data_efficiency.png   test macro-F1 against fraction with 95% intervals, baseline and zero-shot bands
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import pandas as pd

from tl.sweep.convergence import as_records, convergence_table

TABLE_COLUMNS = ["fraction", "mode", "n_seeds", "n_trials", "test_macro_f1_mean", "test_macro_f1_std",
                 "test_macro_f1_stderr", "n_folds", "macro_f1", "ci95_low", "ci95_high", "difference",
                 "difference_ci95_low", "difference_ci95_high", "matches", "balanced_accuracy", "roc_auc_macro",
                 "macro_f1_supported"]
STUDY_COLUMNS = ["fraction", "mode", "seed", "fold", "run_id", "n_trials", "best_val_macro_f1", "test_macro_f1",
                 "best_epoch", "best_step", "epochs", "at_epoch_cap"]


def write_tables(table: list[dict], studies: list[dict], out: str) -> None:
    """table.csv/.md, per_class.csv/.md, selected_models.csv and convergence.csv/.md in `out`."""
    frame = pd.DataFrame([_flat(row) for row in table], columns=TABLE_COLUMNS)
    _write(frame, out, "table")
    per_class = [{"fraction": row["fraction"], "mode": row["mode"], "class": name, "support": value["support"],
                  "f1": value["f1"]} for row in table for name, value in (row.get("per_class") or {}).items()]
    _write(pd.DataFrame(per_class, columns=["fraction", "mode", "class", "support", "f1"]), out, "per_class")
    selected = [{**{name: study.get(name) for name in STUDY_COLUMNS},
                 "at_epoch_cap": None if study["best_epoch"] is None or study["epochs"] is None
                 else study["best_epoch"] >= study["epochs"], **study["params"]} for study in studies]
    settings = sorted({name for study in studies for name in study["params"]})
    pd.DataFrame(selected, columns=STUDY_COLUMNS + settings).to_csv(
        os.path.join(out, "selected_models.csv"), index=False)
    _write(pd.DataFrame(as_records(convergence_table(studies))), out, "convergence")


def _flat(row: dict) -> dict:
    interval = row.get("ci95") or [None, None]
    difference = row.get("difference") or {}
    difference_interval = difference.get("ci95") or [None, None]
    return {**row, "ci95_low": interval[0], "ci95_high": interval[1], "difference": difference.get("macro_f1"),
            "difference_ci95_low": difference_interval[0], "difference_ci95_high": difference_interval[1]}


def _write(frame: pd.DataFrame, out: str, name: str) -> None:
    frame.to_csv(os.path.join(out, f"{name}.csv"), index=False)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for record in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in record) + " |")
    with open(os.path.join(out, f"{name}.md"), "w") as stream:
        stream.write("\n".join(lines) + "\n")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def efficiency_figure(table: list[dict], baseline: dict | None, zero_shot: dict | None, experiment: str):
    """Test macro-F1 against target fraction, transfer and scratch. Bars: the 95% interval (points
    without one: +-1 std over seeds of the logged value); bands: baseline and zero-shot intervals."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for mode, marker, shift in (("transfer", "o", 0.97), ("scratch", "s", 1.03)):  # shifted apart
        rows = sorted((row for row in table if row["mode"] == mode), key=lambda row: row["fraction"])
        if rows:
            low = [row["macro_f1"] - row["ci95"][0] if row.get("ci95") else row["test_macro_f1_std"] for row in rows]
            high = [row["ci95"][1] - row["macro_f1"] if row.get("ci95") else row["test_macro_f1_std"] for row in rows]
            axis.errorbar([row["fraction"] * shift for row in rows], [row["macro_f1"] for row in rows],
                          yerr=[low, high], marker=marker, capsize=3, label=mode)
    for level, colour, style, label in ((baseline, "grey", "--", "scratch, 100% of labels"),
                                        (zero_shot, "tab:red", ":", "zero-shot (base model)")):
        if level is not None and level.get("macro_f1") is not None:
            axis.axhline(level["macro_f1"], color=colour, linestyle=style, label=label)
            if level.get("ci95"):
                axis.axhspan(*level["ci95"], color=colour, alpha=0.15, linewidth=0)
    axis.set_xscale("log")
    fractions = sorted({row["fraction"] for row in table})
    if fractions:
        axis.set_xticks(fractions, [f"{f:g}" for f in fractions], rotation=45)  # 0.25 and 0.3 sit close
        axis.minorticks_off()
    axis.set_xlabel("fraction of target training labels")
    axis.set_ylabel("test macro-F1 (95% interval)")
    axis.set_title(experiment)
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    figure.tight_layout()
    plt.close(figure)
    return figure
