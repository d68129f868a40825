"""The trial logger's fault accounting on a SQLite store (no Ray, no server): a trial restored from
its checkpoint that reports epochs again logs each epoch once, counts the repeats (also across a
restored driver, whose logger starts empty) and records Tune's failure count; a trial its storage
failed stops the sweep instead of ending as failed; an epoch whose write failed is written later."""

import pickle
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from tl.sweep import tracking
from tl.sweep.storage import StorageFault, probe_fault
from tl.sweep.study import Study
from tl.sweep.tracking import OUTCOME
from tl.sweep.trial_logger import EPOCHS_REPEATED, RESTARTS, TrialLogger
from tmpfs import mounted_tmpfs


def epoch_result(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "val_macro_f1": 0.1 * epoch}


def test_repeated_epochs_are_logged_once_and_counted_with_the_restarts(tmp_path):
    uri = f"sqlite:///{tmp_path}/store.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("faults", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment, run_name="f=0.5").info.run_id
    logger = TrialLogger(uri, experiment, parent, Study(fraction=0.5, mode="scratch"), {"mode": "scratch"},
                         {"train.epochs": 6}, storage="unused")
    trial = SimpleNamespace(trial_id="t0001", config={"train.lr": 1e-3}, last_result={}, checkpoint=None,
                            num_failures=0)
    for epoch in (1, 2, 3):
        logger.on_trial_result(0, [], trial, epoch_result(epoch))
    trial.num_failures = 1  # the node died after epoch 3; the checkpoint that reached storage is epoch 1's
    for epoch in (2, 3, 4):
        logger.on_trial_result(0, [], trial, epoch_result(epoch))
    restored = pickle.loads(pickle.dumps(logger))  # the driver restored from Tune's experiment state
    trial.num_failures = 2  # lost again after epoch 4, restored from epoch 3
    for epoch in (4, 5, 6):
        restored.on_trial_result(0, [], trial, epoch_result(epoch))
    restored.on_trial_complete(0, [], trial)
    run_id = restored.run_id(trial)
    steps = [m.step for m in client.get_metric_history(run_id, "val_macro_f1")]
    assert sorted(steps) == [1, 2, 3, 4, 5, 6]
    tags = client.get_run(run_id).data.tags
    assert tags[EPOCHS_REPEATED] == "3" and tags[RESTARTS] == "2"
    assert len(client.search_runs([experiment])) == 2  # the parent and this trial: no duplicate


def a_logger(tmp_path, storage):
    uri = f"sqlite:///{tmp_path}/store.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("faults", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment, run_name="f=1").info.run_id
    logger = TrialLogger(uri, experiment, parent, Study(fraction=1.0, mode="scratch"), {"mode": "scratch"},
                         {"train.epochs": 6}, storage=str(storage))
    return client, logger


def errored_trial(tmp_path, text: str) -> SimpleNamespace:
    error_file = tmp_path / "error.txt"
    error_file.write_text(f"Traceback (most recent call last):\n  ...\n{text}\n")
    return SimpleNamespace(trial_id="t0002", config={}, last_result={}, checkpoint=None, num_failures=1,
                           error_file=str(error_file))


def test_a_trial_failed_by_its_storage_stops_the_sweep_and_is_not_ended(tmp_path):
    client, logger = a_logger(tmp_path, tmp_path / "tune")
    trial = errored_trial(tmp_path, "OSError: [Errno 28] No space left on device: '/tune/checkpoint_000001'")
    with pytest.raises(StorageFault, match="no space left on the device under .*tune"):
        logger.on_trial_error(0, [], trial)
    run = client.get_run(logger.run_id(trial))
    assert OUTCOME not in run.data.tags and run.info.status == "RUNNING"  # --resume runs it again


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only tmpfs under tmp_path."""
    with mounted_tmpfs(tmp_path / "read-only", "ro,size=1m") as mount:
        yield mount


def test_a_storage_that_refuses_a_write_stops_the_sweep_even_when_the_error_says_nothing(tmp_path, read_only_dir):
    client, logger = a_logger(tmp_path, read_only_dir / "tune")
    trial = errored_trial(tmp_path, "RuntimeError: error (see the Tune trial directory)")
    assert probe_fault(str(tmp_path)) is None
    with pytest.raises(StorageFault, match="read-only file system under .*read-only/tune"):
        logger.on_trial_error(0, [], trial)


def test_a_trial_that_fails_on_its_own_ends_failed_with_its_error(tmp_path):
    client, logger = a_logger(tmp_path, tmp_path / "tune")
    trial = errored_trial(tmp_path, "ValueError: the loss is NaN")
    logger.on_trial_error(0, [], trial)
    run = client.get_run(logger.run_id(trial))
    assert run.data.tags[OUTCOME] == "failed" and run.data.tags["tl.error"] == "ValueError: the loss is NaN"
    assert run.info.status == "FAILED"


def test_an_epoch_whose_metrics_could_not_be_written_is_logged_when_reported_again(tmp_path, monkeypatch):
    client, logger = a_logger(tmp_path, tmp_path / "tune")
    trial = SimpleNamespace(trial_id="t0003", config={}, last_result={}, checkpoint=None, num_failures=0)
    logger.on_trial_result(0, [], trial, epoch_result(1))
    real_log = tracking.log_metrics

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking, "log_metrics", full_disk)
    with pytest.raises(OSError):
        logger.on_trial_result(0, [], trial, epoch_result(2))
    monkeypatch.setattr(tracking, "log_metrics", real_log)
    restored = pickle.loads(pickle.dumps(logger))  # the state --resume restores
    restored.on_trial_result(0, [], trial, epoch_result(2))
    steps = [m.step for m in client.get_metric_history(restored.run_id(trial), "val_macro_f1")]
    assert sorted(steps) == [1, 2]
