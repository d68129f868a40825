"""Ray Train: the per-worker training loop and the Tune trial that runs it. The only module that
touches ray.train.

A Tune trial is a "driver function" (`run_trial`) that fits a TorchTrainer whose workers run
`train_loop_per_worker` under DistributedDataParallel (gloo on CPU, NCCL on GPU); the workers'
reports reach Tune through TuneReportCallback (Ray 2.60 Train V2 pattern, DESIGN.md section 6).

Data reach workers on any node through the object store: the sweep driver reads each canonical
data set once and `ray.put`s it; the base model travels as the bytes of a MODEL_DIR archive. Only
Tune/Train storage (checkpoints) must be shared between nodes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import tempfile

import ray
import ray.train
import ray.train.torch
import ray.tune
import torch
from ray.tune.integration.ray_train import TuneReportCallback

from tl.config import Config

STATE_FILE = "train_state.pt"  # per-epoch checkpoint: fit()'s resume state
MODEL_DIR = "model"  # final checkpoint: a MODEL_DIR and the test evaluation
EVALUATION_FILE = "evaluation.json"


def pack_directory(path: str) -> bytes:
    """A directory as the bytes of a gzipped tar archive (to ship a MODEL_DIR through Ray)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(path, arcname=".")
    return buffer.getvalue()


def unpack_directory(archive_bytes: bytes, path: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as archive:
        archive.extractall(path, filter="data")
    return path


def _resolve(value):
    """Values in the loop config may be object refs (on a cluster) or plain values (local mode)."""
    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


def train_loop_per_worker(loop_config: dict) -> None:
    """One Train worker. loop_config: overrides (dotted config), target (Dataset or ref),
    base_model (MODEL_DIR archive bytes, ref, or None for from-scratch), optional info (stored in
    the MODEL_DIR) and final_checkpoint_dir (keep the final checkpoint there: local mode)."""
    from tl.evaluation import evaluate
    from tl.experiment import prepare
    from tl.modeldir import save_model_dir
    from tl.training import fit

    rank = ray.train.get_context().get_world_rank()
    config = Config().override(loop_config["overrides"])
    with tempfile.TemporaryDirectory() as scratch:
        # 1. Prepare data and model (the base model is unpacked locally on every worker).
        base_bytes = _resolve(loop_config.get("base_model"))
        base_dir = unpack_directory(base_bytes, os.path.join(scratch, "base")) if base_bytes else None
        prepared = prepare(config, _resolve(loop_config["target"]), base_model_dir=base_dir)

        # 2. Resume from the last checkpoint of this run, if a worker or driver was restarted.
        resume_state = None
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                if os.path.exists(os.path.join(directory, EVALUATION_FILE)):  # already finished
                    with open(os.path.join(directory, EVALUATION_FILE)) as stream:
                        ray.train.report(json.load(stream)["metrics"], checkpoint=checkpoint)
                    return
                resume_state = torch.load(os.path.join(directory, STATE_FILE), weights_only=False)

        # 3. Train under DDP, reporting (and checkpointing, from rank 0) every epoch.
        def report(metrics: dict, get_state) -> None:
            with tempfile.TemporaryDirectory() as directory:
                epoch_checkpoint = None
                if rank == 0:
                    torch.save(get_state(), os.path.join(directory, STATE_FILE))
                    epoch_checkpoint = ray.train.Checkpoint.from_directory(directory)
                ray.train.report(dict(metrics), checkpoint=epoch_checkpoint,
                                 checkpoint_dir_name=f"epoch-{int(metrics['epoch']):04d}")

        result = fit(prepared, report=report, wrap_model=ray.train.torch.prepare_model,
                     wrap_loader=ray.train.torch.prepare_data_loader, resume_state=resume_state)

        # 4. Report the best epoch's validation metrics, the test metrics and the model (rank 0).
        metrics = final_metrics(result.history, result.best_epoch)
        # Local mode (num_workers=0) keeps checkpoints in memory only: a caller that wants the
        # final model passes final_checkpoint_dir; otherwise the report copies it to storage.
        keep = loop_config.get("final_checkpoint_dir")
        with (contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory()) as directory:
            final_checkpoint = None
            if rank == 0:
                evaluation = evaluate(result.model, prepared.test, prepared.classes)
                metrics.update({f"test_{key}": float(evaluation[key])
                                for key in ("macro_f1", "balanced_accuracy", "roc_auc_macro")})
                save_model_dir(os.path.join(directory, MODEL_DIR), prepared, result.model,
                               history=result.history, metrics={"test": evaluation},
                               info=loop_config.get("info", {}))
                with open(os.path.join(directory, EVALUATION_FILE), "w") as stream:
                    json.dump({"metrics": metrics, "evaluation": evaluation}, stream, default=float)
                final_checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=final_checkpoint, checkpoint_dir_name="final")


def final_metrics(history: list[dict], best_epoch: int) -> dict:
    """The validation metrics of the best epoch (whose weights the model holds), marked final."""
    best = next((row for row in history if int(row["epoch"]) == int(best_epoch)), history[-1])
    metrics = {key: float(value) for key, value in best.items()}
    metrics["final"] = 1.0
    return metrics


def scaling(workers: int, cpus_per_worker: float, gpus_per_worker: float) -> ray.train.ScalingConfig:
    resources = {"CPU": cpus_per_worker}
    if gpus_per_worker:
        resources["GPU"] = gpus_per_worker
    return ray.train.ScalingConfig(num_workers=workers, use_gpu=bool(gpus_per_worker),
                                   resources_per_worker=resources)


def run_trial(config: dict, shared: dict) -> None:
    """A Tune function trainable: fit a TorchTrainer with the trial's settings.

    config: the searched dotted settings. shared (via tune.with_parameters): overrides (fixed
    dotted settings), target and base_model (object refs), storage, workers, cpus_per_worker,
    gpus_per_worker, max_failures.
    """
    trial_id = ray.tune.get_context().get_trial_id()
    loop_config = {"overrides": {**shared["overrides"], **config}, "target": shared["target"],
                   "base_model": shared["base_model"]}
    trainer = ray.train.torch.TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=scaling(shared["workers"], shared["cpus_per_worker"], shared["gpus_per_worker"]),
        run_config=ray.train.RunConfig(
            name=f"train-{trial_id}",  # deterministic: a restarted trial resumes from its checkpoint
            storage_path=shared["storage"],
            callbacks=[TuneReportCallback()],
            failure_config=ray.train.FailureConfig(max_failures=shared["max_failures"]),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    trainer.fit()
