"""The trial body under both executors' sessions: Ray Train local mode and an in-memory session
(no Ray cluster), the per-process data cache, and the DDP equivalence test (slow)."""

import os

import numpy as np
import pytest
import torch

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from toy import make_toy_dataset
from tl.config import Config
import tl.sweep.worker
from tl.sweep.worker import final_metrics, pack_directory, run_trial_body, train_loop_per_worker, unpack_directory

TINY = {"train.epochs": 2, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
        "model.dense_second": 8, "data.max_length": 30}


def fit_local(overrides, dataset, base_model=None, keep_dir=None):
    import ray.train
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(train_loop_per_worker,
                           train_loop_config={"overrides": overrides, "target": dataset, "base_model": base_model,
                                              "final_checkpoint_dir": keep_dir},
                           scaling_config=ray.train.ScalingConfig(num_workers=0))
    return trainer.fit()


def test_local_mode_reports_test_metrics_of_the_checkpointed_model(tmp_path):
    from tl.evaluation import evaluate
    from tl.experiment import prepare
    from tl.modeldir import load_model_dir

    dataset = make_toy_dataset(12)
    result = fit_local(TINY, dataset, keep_dir=str(tmp_path / "final"))
    assert result.metrics["final"] == 1.0
    with result.checkpoint.as_directory() as directory:
        loaded = load_model_dir(os.path.join(directory, "model"))
    prepared = prepare(Config().override(TINY), dataset)  # the same test split, independently encoded
    evaluation = evaluate(loaded.model, prepared.test, loaded.classes)
    assert result.metrics["test_macro_f1"] == pytest.approx(evaluation["macro_f1"])
    assert result.metrics["test_balanced_accuracy"] == pytest.approx(evaluation["balanced_accuracy"])
    best = max(loaded.history, key=lambda row: row["val_macro_f1"])
    assert result.metrics["val_macro_f1"] == pytest.approx(best["val_macro_f1"])


def test_local_mode_transfer_from_a_shipped_base_model(tmp_path):
    base = fit_local(TINY, make_toy_dataset(12, seed=1), keep_dir=str(tmp_path / "base"))
    with base.checkpoint.as_directory() as directory:
        archive = pack_directory(os.path.join(directory, "model"))
    overrides = {**TINY, "transfer.freeze_depth": 2, "data.target_fraction": 0.5}
    result = fit_local(overrides, make_toy_dataset(12, seed=2), base_model=archive,
                       keep_dir=str(tmp_path / "transfer"))
    with result.checkpoint.as_directory() as directory:
        from tl.modeldir import load_model_dir

        loaded = load_model_dir(os.path.join(directory, "model"))
    assert loaded.mode == "transfer" and loaded.config.transfer.freeze_depth == 2
    assert 0.0 <= result.metrics["test_macro_f1"] <= 1.0


class MemorySession:
    """The session interface of tl.sweep.worker (as TuneSession, one worker) without Ray: it keeps
    every report and the directories of reported checkpoints."""

    rank = 0
    wrap_model = wrap_loader = None

    def __init__(self, keep: str, resume_from: str | None = None):
        self.keep, self.reports, self.resume_from = keep, [], resume_from

    def checkpoint(self):
        import contextlib

        if self.resume_from is None:
            return None
        directory = self.resume_from
        return type("Checkpoint", (), {"as_directory": lambda self: contextlib.nullcontext(directory)})()

    def report(self, metrics, directory, name):
        import shutil

        if directory:
            shutil.copytree(directory, os.path.join(self.keep, name), dirs_exist_ok=True)
        self.reports.append(dict(metrics))


def test_the_tune_session_gives_the_metrics_of_the_train_worker(tmp_path):
    """Executors `tune` and `train` (1 worker) run the same body: same seed, same metrics."""
    dataset = make_toy_dataset(12)
    train_result = fit_local(TINY, dataset)
    session = MemorySession(str(tmp_path))
    run_trial_body({"overrides": TINY, "target": dataset, "base_model": None}, session)
    final = session.reports[-1]
    assert final["final"] == 1.0 and len(session.reports) == TINY["train.epochs"] + 1
    for key in ("val_macro_f1", "val_loss", "test_macro_f1", "test_roc_auc_macro", "epoch"):
        assert final[key] == pytest.approx(train_result.metrics[key], abs=1e-9), key


def test_a_trial_resumed_from_its_epoch_checkpoint_ends_as_an_uninterrupted_one(tmp_path):
    """The per-epoch checkpoint (loaded with weights_only=True) continues training exactly."""
    dataset = make_toy_dataset(12)
    overrides = {**TINY, "train.epochs": 3}
    whole = MemorySession(str(tmp_path / "whole"))
    run_trial_body({"overrides": overrides, "target": dataset, "base_model": None}, whole)
    resumed = MemorySession(str(tmp_path / "resumed"), resume_from=str(tmp_path / "whole" / "epoch-0001"))
    run_trial_body({"overrides": overrides, "target": dataset, "base_model": None}, resumed)
    assert [r["epoch"] for r in resumed.reports[:-1]] == [2.0, 3.0]  # epoch 1 is not repeated
    assert resumed.reports[-1] == pytest.approx(whole.reports[-1], abs=1e-9)


def test_cached_encodings_are_reused_and_change_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tl.sweep.worker, "_ENCODED", type(tl.sweep.worker._ENCODED)())
    monkeypatch.setattr(tl.sweep.worker, "_DATASETS", {})
    dataset = make_toy_dataset(12)
    loop_config = {"overrides": TINY, "target": dataset, "target_hash": "toy-hash", "base_model": None,
                   "info": {"study": "1/scratch/0", "lineage": {"tl.git_commit": "abc"}}}
    first, second, uncached = (MemorySession(str(tmp_path / name)) for name in ("a", "b", "c"))
    run_trial_body(loop_config, first)
    run_trial_body({**loop_config, "overrides": {**TINY, "train.lr": 3e-3}}, second)  # same data settings
    assert len(tl.sweep.worker._ENCODED) == 1  # encoded once for both trials
    run_trial_body({**loop_config, "target_hash": None, "overrides": {**TINY, "train.lr": 3e-3}}, uncached)
    assert second.reports == uncached.reports
    run_trial_body({**loop_config, "overrides": {**TINY, "data.target_fraction": 0.5}}, first)
    assert len(tl.sweep.worker._ENCODED) == 2  # other data settings: encoded anew

    from tl.modeldir import load_model_dir

    info = load_model_dir(str(tmp_path / "a" / "final" / "model")).info
    assert info == loop_config["info"]  # a trial's MODEL_DIR keeps its lineage


def test_pack_directory_round_trip(tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)))
    out = unpack_directory(pack_directory(str(source)), str(tmp_path / "out"))
    assert (tmp_path / "out" / "a.txt").read_text() == "alpha"
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert out == str(tmp_path / "out")


def test_final_metrics_are_the_best_epoch():
    history = [{"epoch": 1.0, "val_macro_f1": 0.4}, {"epoch": 2.0, "val_macro_f1": 0.6},
               {"epoch": 3.0, "val_macro_f1": 0.5}]
    assert final_metrics(history, 2) == {"epoch": 2.0, "val_macro_f1": 0.6, "final": 1.0}


def one_step_dataset(seed: int = 0):
    """A toy data set whose train split has an even number of objects (no DistributedSampler padding)."""
    from tl.data import Dataset

    dataset = make_toy_dataset(10, seed=seed)
    train_ids = dataset.objects.loc[dataset.objects["split"] == "train", "object_id"]
    if len(train_ids) % 2:
        keep = dataset.objects["object_id"] != train_ids.iloc[-1]
        objects = dataset.objects[keep].reset_index(drop=True)
        observations = dataset.observations[dataset.observations["object_id"].isin(objects["object_id"])]
        dataset = Dataset(objects, observations.reset_index(drop=True), dataset.meta)
    return dataset, int(len(train_ids) // 2 * 2)


@pytest.mark.slow
def test_ddp_two_workers_batch_b_equals_one_worker_batch_2b(ray_session):
    """One optimiser step on 2 CPU workers (per-worker batch b) gives the parameters of one step on
    one process with batch 2b: the loss is normalised by batch size and DDP averages gradients."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from tl.experiment import prepare
    from tl.modeldir import load_model_dir
    from tl.training import fit

    dataset, n_train = one_step_dataset()
    common = {**TINY, "train.epochs": 1, "model.dropout": 0.0, "train.class_weight_power": 0.5}
    reference = fit(prepare(Config().override({**common, "train.batch_size": n_train}), dataset)).model

    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"overrides": {**common, "train.batch_size": n_train // 2},
                           "target": ray.put(dataset), "base_model": None},
        scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
        run_config=ray.train.RunConfig(storage_path=str(ray_session / "ddp"), name="ddp"))
    result = trainer.fit()
    with result.checkpoint.as_directory() as directory:
        distributed = load_model_dir(os.path.join(directory, "model")).model
    expected = reference.state_dict()
    for name, value in distributed.state_dict().items():
        np.testing.assert_allclose(value.numpy(), expected[name].numpy(), atol=1e-6, rtol=1e-5, err_msg=name)
    initial = prepare(Config().override(common), dataset).model.state_dict()
    assert any(not torch.allclose(initial[name], value) for name, value in expected.items())  # it moved


@pytest.mark.slow
def test_both_executors_give_the_same_metrics_in_a_real_study_and_train_runs_ddp(ray_session):
    """The same 1-trial study (the default point, same seed) under `tune` and `train` (1 worker)
    reports the same metrics; `train` with 2 DDP workers completes the study too."""
    import ray
    from ray import tune

    from tl.sweep.executors import TrialPayload
    from tl.sweep.resources import TrialResources
    from tl.sweep.search import run_study

    target = ray.put(make_toy_dataset(12))
    results = {}
    for executor, workers in (("tune", 1), ("train", 1), ("train", 2)):
        resources = TrialResources(workers, 1.0, 0.0, 0.0 if executor == "tune" else 0.1, 1)
        payload = TrialPayload(overrides=TINY, target=target, target_hash="toy-12", base_model=None, base_hash=None,
                               storage=str(ray_session / "executors"), resources=resources, executor=executor,
                               max_failures=0)
        grid = run_study(name=f"executors-{executor}-{workers}", storage=payload.storage, payload=payload,
                         mode="scratch", config=Config().override(TINY), num_samples=1, seed=0,
                         logger=tune.Callback(), deadline_file=None, resume=False)
        (result,) = list(grid)
        assert result.error is None and result.metrics["final"] == 1.0
        results[executor, workers] = result.metrics
    for key in ("val_macro_f1", "val_loss", "test_macro_f1", "test_balanced_accuracy", "epoch"):
        assert results["tune", 1][key] == pytest.approx(results["train", 1][key], abs=1e-9), key
    assert 0.0 <= results["train", 2]["test_macro_f1"] <= 1.0
