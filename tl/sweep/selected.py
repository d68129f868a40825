"""A sweep's selected models, scored again: early classification, the defaults' fresh-object check
and comparisons across sweep runs (sweeps/) rebuild tl.stats points from the models themselves.

selected_at    `tl report`'s selected-model rows (one per study) at one fraction (and mode)
download       their MODEL_DIRs from MLflow
fold_points    {mode: points[seed][fold]}: each model on its own outer fold's test split, for tl.stats
"""

from __future__ import annotations

import os

from tl.errors import TLError


def selected_at(client, experiment: str, fraction: float, sweep_run_id: str | None = None,
                mode: str | None = None) -> list[dict]:
    """tl.sweep.report.collect's rows of `fraction` (and of `mode` if given) in `experiment` (its
    newest sweep run unless given)."""
    from tl.sweep.report import collect, sweep_run_for

    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise TLError(f"--experiment {experiment}: no such MLflow experiment")
    sweep = sweep_run_for(client, found.experiment_id, experiment, sweep_run_id)
    rows = [row for row in collect(client, found.experiment_id, sweep) if abs(row["fraction"] - fraction) < 1e-9]
    if not rows:
        raise TLError(f"--fraction {fraction:g}: the sweep {sweep} has no completed study at this fraction")
    if mode is not None:
        rows = [row for row in rows if row["mode"] == mode]
        if not rows:
            raise TLError(f"--fraction {fraction:g}: the sweep {sweep} has no completed {mode} study at this fraction")
    return rows


def download(client, rows: list[dict], directory: str) -> dict[str, str]:
    """{run_id: local MODEL_DIR} of the rows' models, downloaded under `directory`."""
    return {row["run_id"]: client.download_artifacts(row["run_id"], "model_dir", os.path.join(directory, row["run_id"]))
            for row in rows}


def fold_points(rows: list[dict], model_dirs: dict[str, str], dataset, days: float | None = None) -> dict:
    """{mode: [[PredictionTable per fold] per seed]}: each row's model on its own test split of
    `dataset` (light curves cut to `days` if given), folds and seeds in order."""
    from tl.evaluation import model_dir_table

    nested: dict = {}
    for row in rows:
        table = model_dir_table(model_dirs[row["run_id"]], dataset, days=days)
        fold = -1 if row["fold"] is None else row["fold"]
        nested.setdefault(row["mode"], {}).setdefault(row["seed"], {})[fold] = table
    return {mode: [[folds[f] for f in sorted(folds)] for _, folds in sorted(seeds.items())]
            for mode, seeds in nested.items()}
