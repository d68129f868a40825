"""The sweep's two stages: 1. the base model on the source data (trained once, or an earlier
sweep's); 2. one Optuna study per target fraction, seed and mode, then its champion."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

from tl.config import Config
from tl.errors import TLError
from tl.experiment import zero_shot_predictions
from tl.modeldir import load_model_dir
from tl.recipes import recipe
from tl.sweep import tracking
from tl.sweep.console import TrialConsole
from tl.sweep.tracking import PREDICTIONS_FILE
from tl.sweep.executors import TrialPayload
from tl.sweep.faults import fault_point
from tl.sweep.resources import TrialResources
from tl.sweep.results import best_completed_trial, log_importances, register_champion
from tl.sweep.runs import SweepRuns
from tl.sweep.search import run_study
from tl.sweep.spec import SweepSpec
from tl.sweep.storage import tune_state_intact
from tl.sweep.study import Study
from tl.sweep.trial_logger import TrialLogger
from tl.sweep.worker import pack_directory, unpack_directory
from tl.transfer import transfer_config


@dataclass(frozen=True)
class SweepContext:
    """What every stage of one sweep needs."""
    spec: SweepSpec
    runs: SweepRuns
    tracking_uri: str
    storage: str
    resources: TrialResources
    executor: str  # "train" or "tune"
    hashes: dict  # {"source": ..., "target": ...} content hashes of the data sets


@dataclass(frozen=True)
class BaseModel:
    run_id: str
    archive: bytes  # the MODEL_DIR as a gzipped tar (tl.sweep.worker.pack_directory)
    digest: str  # sha256 of `archive`: the trials' cache key
    config: Config  # the base MODEL_DIR's settings: transfer trials build its architecture


def payload(sweep: SweepContext, overrides: dict, data_ref, data_hash: str, base_ref, base: BaseModel | None,
            info: dict) -> TrialPayload:
    return TrialPayload(overrides=overrides, target=data_ref, target_hash=data_hash, base_model=base_ref,
                        base_hash=base.digest if base else None, storage=sweep.storage,
                        resources=sweep.resources, executor=sweep.executor,
                        max_failures=sweep.spec.trial_max_failures, info=info)


def base_model(sweep: SweepContext, source_ref) -> BaseModel:
    """Stage 1: the base model (trained now, or the MODEL_DIR of an earlier run)."""
    runs = sweep.runs
    run_id = sweep.spec.base_run_id or runs.state.base_run_id or _train_base(sweep, source_ref)
    runs.state.base_run_id = run_id
    runs.save()
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = runs.client.download_artifacts(run_id, "model_dir", scratch)
        except Exception as error:
            raise TLError(f"base run {run_id}: no model_dir artifact ({str(error).splitlines()[0]})") from None
        config = load_model_dir(path).config
        archive = pack_directory(path)
    return BaseModel(run_id, archive, hashlib.sha256(archive).hexdigest(), config)


def _train_base(sweep: SweepContext, source_ref) -> str:
    spec, runs, study = sweep.spec, sweep.runs, Study.base()
    overrides = {**spec.overrides, **spec.base_overrides}
    tags = {**runs.lineage, tracking.ROLE: "base", "mode": "scratch", "base_run_id": "none",
            "source_dataset": runs.common_tags["source_dataset"],
            "target_dataset": runs.common_tags["source_dataset"]}
    logger = TrialLogger(sweep.tracking_uri, runs.experiment_id, runs.state.sweep_run_id, study, tags,
                         overrides, sweep.storage)
    info = {"study": study.key, "lineage": runs.lineage, "source_dataset": tags["source_dataset"]}
    console = TrialConsole(study)
    run_study(name=tune_name(sweep, study), storage=sweep.storage,
              payload=payload(sweep, overrides, source_ref, sweep.hashes["source"], None, None, info),
              mode=None, config=Config().override(overrides), num_samples=1, seed=0, logger=logger,
              deadline_file=runs.deadline_file, resume=spec.resume, callbacks=(console,), verbose=spec.verbose)
    console.finish(runs.study_runs(study))
    if not runs.check_finished(study, 1):
        runs.cut_short(study)
        raise TLError("stage 1: --time-budget ran out while training the base model "
                      "(--resume trains it again)")
    best = best_completed_trial(runs.study_runs(study))
    if best is None:
        raise TLError("stage 1: the base model's training did not complete (see the MLflow base run)")
    return best.info.run_id


def tune_name(sweep: SweepContext, study: Study) -> str:
    """The Tune experiment of `study`'s current attempt; on --resume, a new attempt when the saved
    one cannot be restored whole (its state files truncated, e.g. by a full disk)."""
    runs = sweep.runs
    name = runs.attempt_name(study)
    if sweep.spec.resume and not tune_state_intact(sweep.storage, name):
        runs.start_again(study, "its Tune state was left incomplete (a full disk?)")
        name = runs.attempt_name(study)
    return name


def study_stage(sweep: SweepContext, study: Study, target_ref, base_ref, base: BaseModel | None) -> None:
    """Stage 2: one Optuna study (Tune), then its parameter importances and its champion."""
    spec, runs = sweep.spec, sweep.runs
    if study.key in runs.state.done:
        print(f"tl sweep: {study.key} already finished, skipped")
        return
    parent = runs.fraction_run(study.fraction)
    overrides = {**recipe(study.mode), **spec.overrides, **study.overrides(spec.folds)}  # --set wins
    config = Config().override(overrides)
    if base is not None:  # the trials build the base model's architecture
        config = transfer_config(config, base.config)
    tags = {**runs.common_tags, tracking.ROLE: "trial", "mode": study.mode, "tl.seed": str(study.seed),
            "base_run_id": base.run_id if base else "none"}
    logger = TrialLogger(sweep.tracking_uri, runs.experiment_id, parent, study, tags, overrides, sweep.storage,
                         base_config=base.config if base else None)
    info = {"study": study.key, "lineage": runs.lineage, "base_run_id": tags["base_run_id"],
            "source_dataset": tags["source_dataset"], "target_dataset": tags["target_dataset"]}
    console = TrialConsole(study)
    run_study(name=tune_name(sweep, study), storage=sweep.storage,
              payload=payload(sweep, overrides, target_ref, sweep.hashes["target"], base_ref, base, info),
              mode=study.mode, config=config, num_samples=spec.num_samples, seed=study.sampler_seed, logger=logger,
              deadline_file=runs.deadline_file, resume=spec.resume, callbacks=(console,), verbose=spec.verbose)
    console.finish(runs.study_runs(study))
    if not runs.check_finished(study, spec.num_samples):
        runs.cut_short(study)  # not done and no champion: --resume runs it again
        return
    fault_point("after-study", study.key)
    log_importances(runs.client, runs.experiment_id, study, parent, config)
    register_champion(runs.client, runs.experiment_id, spec.name, study, parent)
    fault_point("after-register", study.key)
    runs.mark_done(study)


def zero_shot_stage(sweep: SweepContext, base: BaseModel, target, fold: int | None) -> None:
    """The zero-shot point: the base model as it is, its head mapped onto the target classes by
    name (tl.experiment.zero_shot_predictions; a class the base lacks is never predicted), scored
    on the target's test split (of `fold`) over the same objects as the transfer studies. Logged as
    a run with tl.role=zero_shot under the sweep run, with its per-object predictions."""
    runs, folds = sweep.runs, sweep.spec.folds
    key = "zero_shot" if fold is None else f"zero_shot/k{fold}"
    if key in runs.state.done:
        return
    settings = {"data.max_length": base.config.data.max_length, **sweep.spec.overrides,
                **Study(1.0, "transfer", 0, fold).overrides(folds)}
    with tempfile.TemporaryDirectory() as scratch:
        base_dir = unpack_directory(base.archive, os.path.join(scratch, "base"))
        evaluation, table = zero_shot_predictions(base_dir, target, "test", Config().override(settings))
        path = os.path.join(scratch, PREDICTIONS_FILE)
        table.to_csv(path, index=False)
        for stale in tracking.find_runs(runs.client, runs.experiment_id, {tracking.ROLE: "zero_shot", tracking.STAGE: key,
                                                                          "mlflow.parentRunId": runs.state.sweep_run_id}):
            runs.client.delete_run(stale.info.run_id)  # a zero-shot run of an interrupted sweep
        run_id = tracking.child_run(runs.client, runs.experiment_id, runs.state.sweep_run_id, key.replace("/", "-"),
                                    {**runs.common_tags, tracking.ROLE: "zero_shot", tracking.STAGE: key,
                                     "mode": "zero_shot", "base_run_id": base.run_id})
        tracking.log_params(runs.client, run_id, {"data.folds": folds, "data.fold": fold or 0})
        tracking.log_metrics(runs.client, run_id, {f"test_{name}": evaluation[name] for name in
                                                   ("macro_f1", "balanced_accuracy", "roc_auc_macro")}, step=0)
        runs.client.log_artifact(run_id, path)
        tracking.log_json(runs.client, run_id, evaluation, "evaluation.json")
    runs.client.set_terminated(run_id, "FINISHED")
    runs.mark_done_key(key)
