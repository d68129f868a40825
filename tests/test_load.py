"""Load: 8 trials side by side (tiny models, 8 half-CPU trials on the 4 logical CPUs of the shared
Ray instance, on 2 cores) logging through the sweep's TrialLogger to a real `mlflow server` on
127.0.0.1 (slow: it starts Ray and a server)."""

from __future__ import annotations


import pytest

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from mlflow_server import running_server
from toy import make_toy_dataset

TINY = {"train.epochs": 4, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
        "model.dense_second": 8, "data.max_length": 30}
TRIALS = 8


@pytest.fixture
def server(tmp_path):
    """An `mlflow server` (2 workers) on 127.0.0.1 with a SQLite store; yields (uri, its log)."""
    log = tmp_path / "server.log"
    with running_server(f"sqlite:///{tmp_path}/store.db", log, artifacts=tmp_path / "artifacts", workers=2) as uri:
        yield uri, log


@pytest.mark.slow
def test_eight_trials_side_by_side_log_every_epoch_to_a_real_server(ray_session, server, capfd):
    import ray
    from mlflow.tracking import MlflowClient

    from tl.config import Config
    from tl.sweep import tracking
    from tl.sweep.executors import TrialPayload
    from tl.sweep.resources import TrialResources
    from tl.sweep.search import run_study
    from tl.sweep.study import Study
    from tl.sweep.trial_logger import TrialLogger

    uri, log = server
    client = MlflowClient(uri)
    experiment = tracking.experiment_id(client, "load")
    parent = client.create_run(experiment).info.run_id
    storage = str(ray_session / "load")
    study = Study(1.0, "scratch", 0, None)
    logger = TrialLogger(uri, experiment, parent, study, {tracking.ROLE: "trial", "mode": "scratch"}, TINY, storage)
    payload = TrialPayload(overrides=TINY, target=ray.put(make_toy_dataset(20)), target_hash="toy-20-load",
                           base_model=None, base_hash=None, storage=storage,
                           resources=TrialResources(1, 0.5, 0.0, 0.0, TRIALS), executor="tune", max_failures=0)
    grid = run_study(name="load", storage=storage, payload=payload, mode="scratch", config=Config().override(TINY),
                     num_samples=TRIALS, seed=0, logger=logger, deadline_file=None, resume=False)
    results = list(grid)
    assert len(results) == TRIALS and all(result.error is None for result in results)
    runs = tracking.find_runs(client, experiment, {tracking.ROLE: "trial"})
    by_trial = {run.data.tags[tracking.TRIAL_ID]: run for run in runs}
    assert len(runs) == len(by_trial) == TRIALS  # one run per trial
    for result in results:
        # Tune's count of the trial's reports: one per epoch (1, 2, ...), then the final one if it
        # was not pruned (the CSV logger, and so metrics_dataframe, is off in the tests)
        reports = int(result.metrics["training_iteration"])
        epochs = list(range(1, reports - int(result.metrics.get("final", 0.0) == 1.0) + 1))
        run = by_trial[result.metrics["trial_id"]]
        for name in ("val_macro_f1", "train_loss", "val_loss"):
            history = client.get_metric_history(run.info.run_id, name)
            assert sorted(m.step for m in history) == epochs, (name, result.metrics["trial_id"])
        assert run.info.status == "FINISHED"
    output = capfd.readouterr()
    text = output.out + output.err + log.read_text()
    for error in ("Changing param values", "database is locked"):
        assert error not in text

