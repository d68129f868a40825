"""What the sweep driver records after each study: parameter importances and the champion model.

Both read the study's trials back from MLflow (the single record of what ran), so they work the
same for a study that was just run and one restored on --resume.
"""

from __future__ import annotations

from tl import tracking
from tl.config import Config

CHAMPION = "champion"
SELECTION_METRIC = "best_val_macro_f1"  # trials are ranked on validation, never on test


def completed_trials(client, experiment_id: str, stage: str, parent_run_id: str) -> list:
    """The completed trials of one study: its stage under its fraction run, so another sweep's
    study with the same stage label in the same experiment is not mixed in."""
    runs = tracking.find_runs(client, experiment_id, {tracking.STAGE: stage, tracking.OUTCOME: "completed",
                                                      "mlflow.parentRunId": parent_run_id})
    return [run for run in runs if SELECTION_METRIC in run.data.metrics]


def importances(runs, mode: str, config: Config) -> dict[str, float]:
    """optuna.importance (fANOVA) of the searched settings for `SELECTION_METRIC` over `runs`.

    Only parameters every run has are used (a conditional one is left out if any run lacks it).
    """
    import optuna

    from tl.search import distributions

    known = distributions(mode, config)
    trials = []
    for run in runs:
        params = {name: _cast(known[name], run.data.params[name])
                  for name in known if name in run.data.params and _searched(name, mode)}
        trials.append(optuna.trial.create_trial(
            params=params, distributions={name: known[name] for name in params},
            value=run.data.metrics[SELECTION_METRIC]))
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return {name: float(value) for name, value in optuna.importance.get_param_importances(study).items()}


def _searched(name: str, mode: str) -> bool:
    if mode == "scratch":
        return not name.startswith("transfer.")
    return name != "model.dropout"


def _cast(distribution, text: str):
    import optuna

    return int(float(text)) if isinstance(distribution, optuna.distributions.IntDistribution) else float(text)


def log_importances(client, fraction_run_id: str, stage: str, mode: str, config: Config,
                    experiment_id: str) -> None:
    """Log importances of one study as JSON and a bar chart on its fraction run."""
    runs = completed_trials(client, experiment_id, stage, fraction_run_id)
    name = f"importance_{stage.replace('/', '_')}"
    try:
        values = importances(runs, mode, config)
        payload = {"stage": stage, "mode": mode, "n_trials": len(runs), "metric": SELECTION_METRIC,
                   "importances": values}
    except (RuntimeError, ValueError) as error:  # e.g. fewer than two completed trials
        values = {}
        payload = {"stage": stage, "mode": mode, "n_trials": len(runs), "metric": SELECTION_METRIC,
                   "importances": {}, "note": f"not computed: {str(error).splitlines()[0]}"}
    tracking.log_json(client, fraction_run_id, payload, f"{name}.json")
    client.log_figure(fraction_run_id, importance_figure(values, stage), f"{name}.png")


def importance_figure(values: dict[str, float], stage: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.4 * max(1, len(values))))
    names = list(values)[::-1]
    axis.barh(names, [values[n] for n in names])
    axis.set_xlabel(f"importance for {SELECTION_METRIC} (fANOVA)")
    axis.set_title(f"parameter importance, {stage}" + ("" if values else " (too few trials)"))
    figure.tight_layout()
    plt.close(figure)
    return figure


def registered_name(experiment: str, mode: str, fraction: float) -> str:
    return f"{experiment}-{mode}-{fraction:g}"


def register_champion(client, experiment_id: str, experiment: str, stage: str, fraction: float,
                      mode: str, fraction_run_id: str) -> str | None:
    """Register the best trial model of the study `stage` under `fraction_run_id`; move alias
    `champion` to it if it beats the current champion (on validation, whichever sweep that came
    from). Returns the registered model name, or None if no trial completed."""
    import mlflow

    runs = [run for run in completed_trials(client, experiment_id, stage, fraction_run_id)
            if "tl.model_uri" in run.data.tags]
    if not runs:
        return None
    best = max(runs, key=lambda run: run.data.metrics[SELECTION_METRIC])
    name = registered_name(experiment, mode, fraction)
    version = mlflow.register_model(best.data.tags["tl.model_uri"], name,
                                    tags={"run_id": best.info.run_id, "stage": stage,
                                          SELECTION_METRIC: str(best.data.metrics[SELECTION_METRIC])})
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
        current_score = float(current.tags.get(SELECTION_METRIC, "-inf"))
    except Exception:  # no champion yet
        current_score = float("-inf")
    if best.data.metrics[SELECTION_METRIC] > current_score:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return name
