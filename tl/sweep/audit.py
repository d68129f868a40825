"""A sweep store's consistency, read from MLflow: trials, how they ended, restarts, epochs
repeated, epochs missing or doubled in a trial's history, runs duplicated or left open. The chaos
benchmark and the fault tests check a sweep against it (the promise: one run per Tune trial, every
epoch once, nothing RUNNING after the sweep ends)."""

from __future__ import annotations

from collections import Counter

from mlflow.tracking import MlflowClient

from tl.sweep import tracking
from tl.sweep.trial_logger import EPOCHS_REPEATED, RESTARTS


def audit(store_uri: str, experiment: str = "ztf_to_lsst") -> dict:
    """Consistency figures of a finished sweep's MLflow store (trial runs are tagged with their
    Tune trial id and study; one run per trial is the promise)."""
    client = MlflowClient(store_uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=10_000) if found else []
    trials = [run for run in runs if tracking.TRIAL_ID in run.data.tags]
    keys = Counter((run.data.tags[tracking.STAGE], run.data.tags[tracking.TRIAL_ID]) for run in trials)
    missing = 0
    for run in trials:
        steps = [int(m.step) for m in client.get_metric_history(run.info.run_id, "val_macro_f1")]
        missing += len(set(range(1, max(steps, default=0) + 1)) - set(steps)) + len(steps) - len(set(steps))
    return {"trials": len(trials),
            "trials_finished": sum(run.info.status == "FINISHED" for run in trials),
            "runs_not_finished": sum(run.info.status != "FINISHED" for run in runs),
            "outcomes": dict(Counter(run.data.tags.get(tracking.OUTCOME, "none") for run in trials)),
            "restarts": sum(int(run.data.tags.get(RESTARTS, 0)) for run in trials),
            "epochs_repeated": sum(int(run.data.tags.get(EPOCHS_REPEATED, 0)) for run in trials),
            "epochs_missing_or_doubled": missing,
            "runs_duplicated": sum(count - 1 for count in keys.values())}
