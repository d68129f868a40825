"""Tracking-server faults (issue 15, item 4), without Ray: the sweep's trial logger (a Tune callback
that runs in the driver) against a real `mlflow server` on loopback that is stopped mid-trial and
started again on the same port and store. MLflow's client retries refused connections with
backoff, so the epoch logged while the server is down lands once the server is back: the metric
history is complete (every epoch exactly once) and the run ends FINISHED. With the server gone
for good, the logging call fails with an error that names the tracking URI (the sweep then stops
and `--resume` continues it, tests/test_faults.py)."""

import threading
import time
from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlflow_server import free_port, start_server, stop_server
from tl.sweep.study import Study
from tl.sweep.trial_logger import TrialLogger

pytestmark = pytest.mark.slow  # three mlflow server start-ups


def start(root, port: int):
    return start_server(f"sqlite:///{root}/store.db", root / "server.log", port, artifacts=root / "artifacts")


def epoch_result(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "val_macro_f1": 0.1 * epoch}


def trial_and_logger(uri: str):
    client = MlflowClient(uri)
    experiment = client.create_experiment("faults")
    parent = client.create_run(experiment, run_name="f=0.5").info.run_id
    study = Study(fraction=0.5, mode="scratch")
    logger = TrialLogger(uri, experiment, parent, study, {"mode": "scratch"}, {"train.epochs": 5}, storage="unused")
    trial = SimpleNamespace(trial_id="t0001", config={"train.lr": 1e-3}, last_result={}, checkpoint=None)
    return client, logger, trial


def test_an_epoch_logged_while_the_server_restarts_lands_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")  # retries after 0, 2, 4, 8, ... s
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # ~8 min: a restart on a loaded machine is slow
    port = free_port()
    server = start(tmp_path, port)
    try:
        client, logger, trial = trial_and_logger(f"http://127.0.0.1:{port}")
        logger.on_trial_start(0, [], trial)
        for epoch in (1, 2):
            logger.on_trial_result(0, [], trial, epoch_result(epoch))
        stop_server(server)
        restarted = {}
        restart = threading.Thread(target=lambda: (time.sleep(3), restarted.update(p=start(tmp_path, port))))
        restart.start()
        logger.on_trial_result(0, [], trial, epoch_result(3))  # blocks in MLflow's retries until the server is back
        restart.join()
        server = restarted["p"]
        for epoch in (4, 5):
            logger.on_trial_result(0, [], trial, epoch_result(epoch))
        logger.on_trial_complete(0, [], trial)
        run_id = logger.run_id(trial)
        for name in ("train_loss", "val_loss", "val_macro_f1"):
            history = client.get_metric_history(run_id, name)
            assert sorted(m.step for m in history) == [1, 2, 3, 4, 5], name
        assert client.get_metric_history(run_id, "val_macro_f1")[2].value == pytest.approx(0.3)
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.tags["tl.outcome"] == "pruned"
        assert len(client.search_runs([run.info.experiment_id])) == 2  # the parent and this trial: no duplicate
    finally:
        stop_server(server)


def test_a_server_gone_for_good_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    port = free_port()
    server = start(tmp_path, port)
    try:
        client, logger, trial = trial_and_logger(f"http://127.0.0.1:{port}")
        logger.on_trial_result(0, [], trial, epoch_result(1))
    finally:
        stop_server(server)
    with pytest.raises(MlflowException, match=f"127.0.0.1:{port}"):
        logger.on_trial_result(0, [], trial, epoch_result(2))
