"""The two trial executors behind one interface: `trainable(payload)` is what a Tune study runs.

- `train`: each trial is a Tune function that fits a Ray Train TorchTrainer (`train_trial`): DDP
  over `workers` workers, a fresh worker group per trial (10-30 s here). For trials of more than
  one worker, GPU clusters and `ray submit`: the autoscaler sees the workers' resource requests.
- `tune`: each trial trains in the Tune trial's own actor (`tune_trial`), which Tune reuses
  between trials, with the encoded data cached per process: no worker group to start.

`auto` picks `tune` for 1-worker trials on a fixed cluster and `train` otherwise (more workers, or
an autoscaling cluster whose head runs the trial drivers: there a trial must ask for workers);
see tl.sweep.resources.choose_executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ray.train
import ray.train.torch
import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

from tl.sweep.resources import TrialResources
from tl.sweep.worker import TuneSession, run_trial_body, train_loop_per_worker

@dataclass(frozen=True)
class TrialPayload:
    """What every trial of one study shares (sent once through the object store by Tune)."""
    overrides: dict  # fixed dotted settings of the study's trials (the trial adds its searched ones)
    target: object  # object ref of the target Dataset
    target_hash: str  # its content hash: the per-process cache key
    base_model: object | None  # object ref of the base MODEL_DIR archive bytes; None from scratch
    base_hash: str | None
    storage: str  # Tune/Train storage (checkpoints)
    resources: TrialResources
    executor: str  # "train" or "tune" (resolved, never "auto")
    max_failures: int = 1  # Train restarts of a trial's workers after a lost worker
    info: dict = field(default_factory=dict)  # stored in every trial's MODEL_DIR (lineage)

    def loop_config(self, searched: dict) -> dict:
        """The trial body's input for the searched settings of one trial."""
        return {"overrides": {**self.overrides, **searched}, "target": self.target,
                "target_hash": self.target_hash, "base_model": self.base_model,
                "base_hash": self.base_hash, "info": self.info}


def trial_resources(payload: TrialPayload) -> dict:
    """What one trial reserves in Tune: the driver function (train) or the whole trial (tune)."""
    resources = payload.resources
    if payload.executor == "tune":
        request = {"CPU": resources.cpus_per_worker}
        if resources.gpus_per_worker:
            request["GPU"] = resources.gpus_per_worker
        return request
    request = {"CPU": resources.driver_cpus}
    if resources.driver_resource:
        request[resources.driver_resource] = 1
    return request


def trainable(payload: TrialPayload):
    """The Tune trainable of a study: its function, parameters and resources bound."""
    function = tune_trial if payload.executor == "tune" else train_trial
    return ray.tune.with_resources(ray.tune.with_parameters(function, payload=payload),
                                   trial_resources(payload))


def tune_trial(config: dict, payload: TrialPayload) -> None:
    """A Tune function trainable that trains the trial itself (executor `tune`)."""
    torch.set_num_threads(max(1, int(payload.resources.cpus_per_worker)))
    run_trial_body(payload.loop_config(config), TuneSession())


def train_trial(config: dict, payload: TrialPayload) -> None:
    """A Tune function trainable that fits a TorchTrainer with the trial's settings (executor `train`)."""
    resources = payload.resources
    trial_id = ray.tune.get_context().get_trial_id()
    trainer = ray.train.torch.TorchTrainer(
        train_loop_per_worker,
        train_loop_config=payload.loop_config(config),
        scaling_config=scaling(resources.workers, resources.cpus_per_worker, resources.gpus_per_worker),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}",  # deterministic: a restarted trial resumes from its checkpoint
            storage_path=payload.storage,
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=payload.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    trainer.fit()


def scaling(workers: int, cpus_per_worker: float, gpus_per_worker: float) -> ray.train.ScalingConfig:
    resources = {"CPU": cpus_per_worker}
    if gpus_per_worker:
        resources["GPU"] = gpus_per_worker
    return ray.train.ScalingConfig(num_workers=workers, use_gpu=bool(gpus_per_worker),
                                   resources_per_worker=resources)
