"""A Tune callback that logs every trial of one study to MLflow, in the sweep driver process.

One MLflow run per Tune trial, nested under the study's parent run (a fraction run, or the sweep
run for the base model). The Tune trial id is a tag: when a restored study restarts an
unfinished trial, the logger finds the trial's run and continues it instead of creating a
duplicate, and does not log again the epochs it logged before (a trial interrupted before its
first checkpoint reached storage starts again from epoch 1). A trial that raises is marked FAILED (tag tl.outcome=failed, tl.error); one stopped
early by ASHA is FINISHED with tl.outcome=pruned and has no model. Tune reports no end for trials
stopped by the --time-budget stopper; the sweep marks those KILLED (tl.sweep.runs.SweepRuns.cut_short).
Fault accounting on the run: tag tl.restarts (Tune's failures of the trial, each restored from its
last checkpoint) when it ends, tag tl.epochs_repeated (epochs reported again after a restore).

The client is made from the tracking URI in this process (Tune pickles callbacks with the
experiment state, and a client does not pickle); nothing sets MLflow's global tracking URI.
"""

from __future__ import annotations

import os
import tempfile

from mlflow.tracking import MlflowClient
from ray import tune

from tl.config import Config
from tl.sweep import tracking
from tl.sweep.console import trial_number
from tl.sweep.storage import StorageFault, fault_message, probe_fault, storage_fault
from tl.sweep.study import Study
from tl.transfer import transfer_config

LOGGED_PREFIXES = ("train_", "val_", "lr", "epoch")
RESTARTS, EPOCHS_REPEATED = "tl.restarts", "tl.epochs_repeated"


class TrialLogger(tune.Callback):
    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, study: Study,
                 tags: dict, overrides: dict, storage: str, base_config: Config | None = None):
        self.tracking_uri = tracking_uri
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.study = study  # its key is the dedupe scope of trial ids
        self.tags = dict(tags)
        self.overrides = dict(overrides)
        self.storage = storage
        self.base_config = base_config  # transfer trials build the base model's architecture
        self._runs: dict[str, str] = {}
        self._logged_epochs: dict[str, int] = {}  # trial id -> the last epoch whose metrics are logged
        self._repeated: dict[str, int] = {}  # trial id -> epochs reported again after a restore
        self._client = None

    def __getstate__(self):  # Tune pickles callbacks with the experiment state
        state = dict(self.__dict__)
        state["_client"], state["_runs"], state["_logged_epochs"], state["_repeated"] = None, {}, {}, {}
        return state

    @property
    def client(self):
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def run_id(self, trial) -> str:
        """The MLflow run of `trial`: found by its Tune trial id, or created (with its params)."""
        if trial.trial_id in self._runs:
            return self._runs[trial.trial_id]
        found = tracking.find_runs(self.client, self.experiment_id,
                                   {tracking.TRIAL_ID: trial.trial_id, tracking.STAGE: self.study.key})
        if found:  # a restored trial: it may start again before its last logged epoch
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            history = self.client.get_metric_history(run_id, "val_macro_f1")
            self._logged_epochs[trial.trial_id] = max((int(m.step) for m in history), default=0)
            self._repeated[trial.trial_id] = int(found[0].data.tags.get(EPOCHS_REPEATED, 0))
        else:
            tags = {**self.tags, tracking.ROLE: self.tags.get(tracking.ROLE, "trial"),
                    tracking.TRIAL_ID: trial.trial_id, tracking.STAGE: self.study.key}
            run_id = tracking.child_run(self.client, self.experiment_id, self.parent_run_id,
                                        self.study.trial_run_name(trial_number(trial)), tags)
            settings = Config().override({**self.overrides, **trial.config})
            if self.base_config is not None:
                settings = transfer_config(settings, self.base_config)
            tracking.log_params(self.client, run_id, used_settings(settings, self.tags.get("mode")))
        self._runs[trial.trial_id] = run_id
        return run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_id(trial)
        if result.get("final"):
            final = {key: value for key, value in result.items() if key.startswith("test_")}
            final["best_val_macro_f1"] = result["val_macro_f1"]
            final["best_epoch"] = result["epoch"]
            final.update({key: result[key] for key in ("epoch_budget", "best_step", "converged") if key in result})
            tracking.log_metrics(self.client, run_id, final, step=int(result["epoch"]))
            return
        epoch = int(result.get("epoch", 0))
        if epoch <= self._logged_epochs.get(trial.trial_id, 0):
            # a restored trial repeating an epoch logged before the interruption (same seed: same values)
            self._repeated[trial.trial_id] = self._repeated.get(trial.trial_id, 0) + 1
            self.client.set_tag(run_id, EPOCHS_REPEATED, str(self._repeated[trial.trial_id]))
            return
        metrics = {key: value for key, value in result.items() if key.startswith(LOGGED_PREFIXES)}
        tracking.log_metrics(self.client, run_id, metrics, step=epoch)
        self._logged_epochs[trial.trial_id] = epoch  # only once logged: a failed write is retried on resume

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_id(trial)
        self.client.set_tag(run_id, RESTARTS, str(getattr(trial, "num_failures", 0)))
        result = trial.last_result or {}
        checkpoint_path = final_checkpoint_path(trial)
        if result.get("final") and checkpoint_path:
            try:
                with tempfile.TemporaryDirectory() as directory:
                    copy_from_storage(self.storage, checkpoint_path, directory)
                    tracking.log_trial_artifacts(self.client, run_id, directory, title=trial.trial_id)
            except Exception as error:  # keep the sweep going; the run says what went wrong
                reason = storage_fault(error)
                if reason:  # stop the sweep: --resume logs it again (the trial has no outcome yet)
                    raise StorageFault(fault_message(reason, [self.storage])) from None
                self.client.set_tag(run_id, "tl.error", f"logging the model failed: {error}"[:500])
                self.client.set_tag(run_id, tracking.OUTCOME, "failed")
                self.client.set_terminated(run_id, "FAILED")
                return
            self.client.set_tag(run_id, tracking.OUTCOME, "completed")
        else:
            self.client.set_tag(run_id, tracking.OUTCOME, "pruned")
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        """A failed trial ends as such, unless its storage failed it: then the sweep stops (a
        StorageFault) with the trial not ended, and --resume runs it again from its checkpoint.
        The error file itself may be what the full disk refused, so the storage is probed too."""
        run_id = self.run_id(trial)
        error = _error_line(trial)
        reason = storage_fault(RuntimeError(error)) or probe_fault(self.storage)
        if reason:
            self.client.set_tag(run_id, "tl.error", f"stopped by the storage: {reason}")
            raise StorageFault(fault_message(reason, [self.storage]))
        self.client.set_tag(run_id, RESTARTS, str(getattr(trial, "num_failures", 0)))
        self.client.set_tag(run_id, tracking.OUTCOME, "failed")
        self.client.set_tag(run_id, "tl.error", error)
        self.client.set_terminated(run_id, "FAILED")


def used_settings(settings: Config, mode: str | None) -> dict:
    """The settings a trial uses, flat: a scratch model (or the base model) has no transfer.*."""
    flat = settings.flat()
    if mode == "transfer":
        return flat
    return {key: value for key, value in flat.items() if not key.startswith("transfer.")}


def final_checkpoint_path(trial) -> str | None:
    """Where the trial's final checkpoint is: reported by Train workers (executor `train`, through
    TuneReportCallback) or Tune's own latest checkpoint (executor `tune`)."""
    path = (trial.last_result or {}).get("checkpoint_path")
    if path:
        return path
    return trial.checkpoint.path if trial.checkpoint is not None else None


def copy_from_storage(storage: str, path: str, destination: str) -> None:
    """Copy a checkpoint directory `path` of Tune/Train storage `storage` to a local directory."""
    import pyarrow.fs as pafs

    if "://" in storage:
        filesystem, _ = pafs.FileSystem.from_uri(storage)
    else:
        filesystem = pafs.LocalFileSystem()
    pafs.copy_files(path, destination, source_filesystem=filesystem,
                    destination_filesystem=pafs.LocalFileSystem())


def _error_line(trial) -> str:
    """The last line of the trial's error (the exception), for the MLflow UI's tag column."""
    error_file = getattr(trial, "error_file", None) or ""
    try:
        if error_file and os.path.exists(error_file):
            with open(error_file) as stream:
                lines = [line for line in stream.read().splitlines() if line.strip()]
            return lines[-1][:500] if lines else "error"
    except OSError:
        pass
    return "error (see the Tune trial directory)"
