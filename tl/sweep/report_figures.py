"""`tl report`'s per-study figures: the selected (champion) trials' confusion matrices and the
per-fraction parameter importances.

The importances are the ones stage 2 computed and logged on each fraction run
(`importance_<study>.json`, tl.sweep.results.log_importances: Optuna's fANOVA over the completed
trials). Tune's OptunaSearch keeps its optuna.Study inside the searcher, which is not stored, so
Optuna's plot_param_importances has no study to read: the bar chart is redrawn from those values.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from tl.sweep import tracking

FIGURES = "figures"  # under the report's --out


def write_report_figures(client, experiment_id: str, sweep_run_id: str, rows: list[dict], out: str) -> list[str]:
    """Write out/figures/confusion_<mode>_f<fraction>_s<seed>[_k<fold>].png for every selected trial
    that logged one, and importance_<study>.png for every importance JSON on a fraction run;
    returns the paths written (a trial or fraction without the artifact is skipped)."""
    directory = os.path.join(out, FIGURES)
    os.makedirs(directory, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for row in rows:
            fold = "" if row.get("fold") is None else f"_k{row['fold']}"
            name = f"confusion_{row['mode']}_f{row['fraction']:g}_s{row['seed']}{fold}.png"
            source = _download(client, row["run_id"], "confusion_matrix.png", scratch)
            if source is not None:
                written.append(shutil.copyfile(source, os.path.join(directory, name)))
        fraction_runs = tracking.find_runs(client, experiment_id, {tracking.ROLE: "fraction",
                                                                   "mlflow.parentRunId": sweep_run_id})
        for run in fraction_runs:
            written += _importance_figures(client, run.info.run_id, directory, scratch)
    return written


def _download(client, run_id: str, path: str, scratch: str) -> str | None:
    target = os.path.join(scratch, run_id)
    os.makedirs(target, exist_ok=True)
    try:
        return client.download_artifacts(run_id, path, target)
    except Exception:  # MlflowException / OSError: the trial did not log it
        return None


def _importance_figures(client, run_id: str, directory: str, scratch: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tl.sweep.results import importance_figure

    written = []
    for artifact in client.list_artifacts(run_id):
        name = os.path.basename(artifact.path)
        if not (name.startswith("importance_") and name.endswith(".json")):
            continue
        local = _download(client, run_id, artifact.path, scratch)
        with open(local) as handle:
            payload = json.load(handle)
        figure = importance_figure(payload.get("importances") or {}, payload.get("stage", name[11:-5]))
        path = os.path.join(directory, name[:-5] + ".png")
        figure.savefig(path, dpi=120)
        plt.close(figure)
        written.append(path)
    return written
