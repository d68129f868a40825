"""The trial logger's fault accounting on a SQLite store (no Ray, no server): a trial restored from
its checkpoint that reports epochs again logs each epoch once, counts the repeats (also across a
restored driver, whose logger starts empty) and records Tune's failure count."""

import pickle
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from tl.sweep.study import Study
from tl.sweep.trial_logger import EPOCHS_REPEATED, RESTARTS, TrialLogger


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
