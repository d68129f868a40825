"""What a finished study yields: its best trial (one rule, for champions and `tl report` alike),
parameter importances, and the champion model.

All read the study's trials back from MLflow (the single record of what ran), so they work the
same for a study that was just run and one restored on --resume.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import optuna

from tl.config import Config
from tl.sweep import tracking
from tl.sweep.space import distributions
from tl.sweep.study import Study

CHAMPION = "champion"
SELECTION_METRIC = "best_val_macro_f1"  # trials are ranked on validation, never on test


def is_completed(run) -> bool:
    return run.data.tags.get(tracking.OUTCOME) == "completed" and SELECTION_METRIC in run.data.metrics


def best_completed_trial(runs):
    """The completed trial run with the highest validation score (the earliest on a tie), or None."""
    completed = [run for run in runs if is_completed(run)]
    return max(completed, key=lambda run: run.data.metrics[SELECTION_METRIC], default=None)


def completed_trials(client, experiment_id: str, study: Study, parent_run_id: str) -> list:
    """The completed trials of one study: its stage under its fraction run, so another sweep's
    study with the same stage label in the same experiment is not mixed in."""
    runs = tracking.find_runs(client, experiment_id, {tracking.STAGE: study.key, "mlflow.parentRunId": parent_run_id})
    return [run for run in runs if is_completed(run)]


def importances(runs, mode: str, config: Config) -> dict[str, float]:
    """optuna.importance (fANOVA) of the searched settings for `SELECTION_METRIC` over `runs`.

    Only parameters every run has are used (a conditional one is left out if any run lacks it).
    """
    known = distributions(mode, config)
    trials = []
    for run in runs:
        params = {name: _cast(known[name], run.data.params[name]) for name in known if name in run.data.params}
        trials.append(optuna.trial.create_trial(
            params=params, distributions={name: known[name] for name in params},
            value=run.data.metrics[SELECTION_METRIC]))
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return {name: float(value) for name, value in optuna.importance.get_param_importances(study).items()}


def _cast(distribution, text: str):
    """A param's MLflow text as the value its distribution holds."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return next(choice for choice in distribution.choices if str(choice) == text)
    return int(float(text)) if isinstance(distribution, optuna.distributions.IntDistribution) else float(text)


def log_importances(client, experiment_id: str, study: Study, fraction_run_id: str, config: Config) -> None:
    """Log importances of one study as JSON and a bar chart on its fraction run."""
    runs = completed_trials(client, experiment_id, study, fraction_run_id)
    payload = {"stage": study.key, "mode": study.mode, "n_trials": len(runs), "metric": SELECTION_METRIC}
    try:
        values = importances(runs, study.mode, config)
        payload["importances"] = values
    except (RuntimeError, ValueError) as error:  # e.g. fewer than two completed trials
        values = {}
        payload.update(importances={}, note=f"not computed: {str(error).splitlines()[0]}")
    tracking.log_json(client, fraction_run_id, payload, f"{study.importance_name}.json")
    figure = importance_figure(values, study.key)
    client.log_figure(fraction_run_id, figure, f"{study.importance_name}.png")
    plt.close(figure)


def importance_figure(values: dict[str, float], stage: str):
    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.4 * max(1, len(values))))
    names = list(values)[::-1]
    axis.barh(names, [values[n] for n in names])
    axis.set_xlabel(f"importance for {SELECTION_METRIC} (fANOVA)")
    axis.set_title(f"parameter importance, {stage}" + ("" if values else " (too few trials)"))
    figure.tight_layout()
    return figure


def register_champion(client, experiment_id: str, experiment: str, study: Study, fraction_run_id: str) -> str | None:
    """Register the best trial of `study` (best_completed_trial) as a version of
    `study.registered_name(experiment)`, its mlflow.pytorch model logged first; move alias
    `champion` to it if it beats the current champion (on validation, whichever sweep that came
    from). Idempotent: a trial already registered is not registered again. Returns the registered
    model name, or None if no trial completed."""
    best = best_completed_trial(completed_trials(client, experiment_id, study, fraction_run_id))
    if best is None:
        return None
    name = study.registered_name(experiment)
    score = best.data.metrics[SELECTION_METRIC]
    source = tracking.log_pytorch_model(client, best.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{best.info.run_id}'")
    version = versions[0] if versions else client.create_model_version(
        name, source, run_id=best.info.run_id,
        tags={"run_id": best.info.run_id, "stage": study.key, SELECTION_METRIC: str(score)})
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
        current_score = float(current.tags.get(SELECTION_METRIC, "-inf"))
    except Exception:  # no champion yet
        current_score = float("-inf")
    if score > current_score:
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return name
