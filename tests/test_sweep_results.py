"""Champion registration and parameter importances read one study's trials: those of its stage
under its own fraction run, not another sweep's study with the same stage label in the same
experiment. No Ray; the trial runs are made by hand in a SQLite store.
"""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tl.config import Config
from tl.sweep import tracking
from tl.sweep.results import (CHAMPION, SELECTION_METRIC, best_completed_trial, completed_trials,
                              log_importances, register_champion)
from tl.sweep.study import Study

STUDY = Study(0.5, "transfer", 0)
STAGE = STUDY.key


@pytest.fixture
def store(tmp_path):
    """A client on a fresh store, an experiment, and a folder to stand in for model artifacts."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)  # no global tracking URI: tl.sweep passes its client everywhere
    yield client, tracking.experiment_id(client, "exp"), tmp_path


def trial(client, experiment_id, parent, score, tmp_path, outcome="completed", params=None) -> str:
    run_id = tracking.child_run(client, experiment_id, parent, "trial",
                                {tracking.STAGE: STAGE, tracking.OUTCOME: outcome})
    client.log_metric(run_id, SELECTION_METRIC, score)
    for name, value in (params or {}).items():
        client.log_param(run_id, name, value)
    model = tmp_path / run_id
    model.mkdir()
    client.set_tag(run_id, "tl.model_uri", model.as_uri())
    return run_id


def registered_run(client, name: str) -> str:
    return client.get_model_version_by_alias(name, CHAMPION).tags["run_id"]


def test_the_champion_is_the_best_trial_of_this_study_not_of_the_experiment(store):
    client, experiment_id, tmp_path = store
    earlier, later = (tracking.child_run(client, experiment_id, None, name, {}) for name in ("f-1", "f-2"))
    best_earlier = trial(client, experiment_id, earlier, 0.80, tmp_path)
    trial(client, experiment_id, earlier, 0.50, tmp_path)
    worse_later = trial(client, experiment_id, later, 0.60, tmp_path)
    best_later = trial(client, experiment_id, later, 0.70, tmp_path)
    trial(client, experiment_id, later, 0.95, tmp_path, outcome="pruned")  # not completed

    found = completed_trials(client, experiment_id, STUDY, later)
    assert sorted(run.info.run_id for run in found) == sorted([worse_later, best_later])
    name = register_champion(client, experiment_id, "exp", STUDY, earlier)
    assert registered_run(client, name) == best_earlier
    register_champion(client, experiment_id, "exp", STUDY, later)
    versions = client.search_model_versions(f"name = '{name}'")
    # the later study registers its own best (0.70, not the earlier sweep's 0.80) ...
    assert sorted(version.tags["run_id"] for version in versions) == sorted([best_earlier, best_later])
    # ... and the champion alias stays on the better model, whichever sweep made it
    assert registered_run(client, name) == best_earlier


def test_a_study_with_no_completed_trial_registers_nothing(store):
    client, experiment_id, tmp_path = store
    other, empty = (tracking.child_run(client, experiment_id, None, name, {}) for name in ("f-1", "f-2"))
    trial(client, experiment_id, other, 0.8, tmp_path)
    trial(client, experiment_id, empty, 0.9, tmp_path, outcome="pruned")
    assert register_champion(client, experiment_id, "exp", STUDY, empty) is None


def test_importances_count_only_this_studys_trials(store):
    client, experiment_id, tmp_path = store
    mine, other = (tracking.child_run(client, experiment_id, None, name, {}) for name in ("f-1", "f-2"))
    for index, lr in enumerate((1e-4, 3e-4, 1e-3)):
        trial(client, experiment_id, mine, 0.5 + 0.1 * index, tmp_path, params={"train.lr": lr})
    trial(client, experiment_id, other, 0.9, tmp_path, params={"train.lr": 2e-3})
    log_importances(client, experiment_id, STUDY, mine, Config())
    payload = mlflow.artifacts.load_dict(f"{client.get_run(mine).info.artifact_uri}/{STUDY.importance_name}.json")
    assert payload["n_trials"] == 3
    assert payload["importances"] == {"train.lr": 1.0}  # the only searched parameter these runs have


def test_registering_a_study_twice_adds_no_version(store):
    """A driver killed between registering a champion and saving its state registers again on
    --resume: the trial already registered is reused, not registered a second time."""
    client, experiment_id, tmp_path = store
    parent = tracking.child_run(client, experiment_id, None, "f", {})
    best = trial(client, experiment_id, parent, 0.7, tmp_path)
    name = register_champion(client, experiment_id, "exp", STUDY, parent)
    register_champion(client, experiment_id, "exp", STUDY, parent)
    assert [version.tags["run_id"] for version in client.search_model_versions(f"name = '{name}'")] == [best]


def test_the_best_trial_rule_ranks_completed_trials_on_validation_only(store):
    client, experiment_id, tmp_path = store
    parent = tracking.child_run(client, experiment_id, None, "f", {})
    first = trial(client, experiment_id, parent, 0.7, tmp_path)
    trial(client, experiment_id, parent, 0.6, tmp_path)
    trial(client, experiment_id, parent, 0.9, tmp_path, outcome="failed")
    runs = tracking.find_runs(client, experiment_id, {"mlflow.parentRunId": parent})
    assert best_completed_trial(runs).info.run_id == first
    assert best_completed_trial([]) is None
