"""tl.sweep.deadline: the --time-budget stopper reads its deadline from a file, also after unpickling
(Tune restores a study's stopper from its pickled RunConfig on --resume)."""

import pickle

import pytest

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from tl.sweep.deadline import DeadlineStopper, read_deadline, write_deadline
from toy import make_toy_dataset


def test_no_file_means_no_deadline(tmp_path):
    stopper = DeadlineStopper(str(tmp_path / "deadline"))
    assert not stopper.stop_all()
    assert not stopper("trial", {"training_iteration": 1})


def test_stops_once_the_deadline_has_passed(tmp_path):
    path = str(tmp_path / "deadline")
    stopper = DeadlineStopper(path)
    write_deadline(path, 3600)
    assert not stopper.stop_all()
    write_deadline(path, -1)
    assert stopper.stop_all()
    write_deadline(path, None)
    assert read_deadline(path) is None and not stopper.stop_all()


def test_a_restored_stopper_obeys_the_resumed_runs_budget(tmp_path):
    path = str(tmp_path / "deadline")
    write_deadline(path, -1)  # the first run's budget is spent
    stopper = DeadlineStopper(path)
    assert stopper.stop_all()
    pickled = pickle.dumps(stopper)
    write_deadline(path, 3600)  # --resume with a fresh budget rewrites the file
    assert not pickle.loads(pickled).stop_all()


@pytest.mark.slow
def test_the_stopper_cuts_a_real_study_and_restoring_it_runs_nothing(ray_session, tmp_path):
    """Tune honours the stopper; Tune marks the cut trials terminated, so --resume must start such
    a study again under a new name (tl.sweep.runs.SweepRuns.attempt_name) instead of restoring it."""
    import ray
    from ray import tune

    from tl.config import Config
    from tl.sweep import tracking
    from tl.sweep.executors import TrialPayload
    from tl.sweep.resources import plan_resources
    from tl.sweep.search import run_study

    overrides = {"train.epochs": 3, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
                 "model.dense_second": 8, "data.max_length": 30}
    storage, deadline = str(tmp_path / "tune"), str(tmp_path / "deadline")
    payload = TrialPayload(overrides=overrides, target=ray.put(make_toy_dataset(n_per_class=20)),
                           target_hash="toy", base_model=None, base_hash=None, storage=storage,
                           resources=plan_resources(ray.cluster_resources(), 1), executor="train", max_failures=0)
    study = dict(storage=storage, payload=payload, mode="scratch", config=Config().override(overrides),
                 num_samples=2, seed=0, logger=tune.Callback(), deadline_file=deadline)

    def finished(grid) -> int:
        return sum(1 for result in grid if result.metrics and result.metrics.get("final"))

    write_deadline(deadline, 5)
    logger = mlflow_logger(tmp_path, overrides, storage)
    cut = finished(run_study(name="cut", resume=False, **{**study, "logger": logger}))
    assert cut < 2  # a trial takes far longer than 5 s
    # Tune reports no end for a cut trial (its MLflow run, if it had started, is left RUNNING and
    # tl.sweep marks it KILLED): only the trials that finished have an outcome
    runs = tracking.find_runs(logger.client, logger.experiment_id, {tracking.STAGE: logger.study.key})
    unended = [run for run in runs if tracking.OUTCOME not in run.data.tags]
    assert len(runs) - len(unended) == cut
    assert all(run.info.status == "RUNNING" for run in unended)
    write_deadline(deadline, 900)  # what a resumed sweep writes
    assert finished(run_study(name="cut", resume=True, **study)) < 2
    assert finished(run_study(name="cut-r1", resume=True, **study)) == 2


def mlflow_logger(tmp_path, overrides, storage):
    """tl's trial logger on a fresh SQLite store."""
    from mlflow.tracking import MlflowClient

    from tl.sweep import tracking
    from tl.sweep.study import Study
    from tl.sweep.trial_logger import TrialLogger

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.experiment_id(MlflowClient(uri), "deadline")
    return TrialLogger(uri, experiment_id, None, Study(1.0, "scratch"), {}, overrides, storage)
