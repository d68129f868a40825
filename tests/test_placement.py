"""tl.sweep.placement: a `train` study stopped while its trial's workers start leaves no placement
group behind (Ray Train registers a worker group's group with its cleaner only once it started)."""

import pytest

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from toy import make_toy_dataset

TINY = {"train.epochs": 2, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
        "model.dense_second": 8, "data.max_length": 30}


def state_of(group) -> str:
    import ray

    return ray.util.placement_group_table(group)["state"]


@pytest.mark.slow
def test_only_the_groups_created_after_the_snapshot_are_released(ray_session):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    from tl.sweep.placement import live_placement_groups, release_placement_groups

    older = placement_group([{"CPU": 0.01}])
    ray.get(older.ready())
    before = live_placement_groups()
    assert older.id.hex() in before
    created, pending = placement_group([{"CPU": 0.01}]), placement_group([{"CPU": 1000}])
    ray.get(created.ready())
    assert state_of(pending) == "PENDING"
    assert live_placement_groups() - before == {created.id.hex(), pending.id.hex()}
    assert release_placement_groups(keep=before) == 2
    assert (state_of(created), state_of(pending), state_of(older)) == ("REMOVED", "REMOVED", "CREATED")
    remove_placement_group(older)


@pytest.mark.slow
def test_a_trial_stopped_while_its_workers_wait_leaves_no_placement_group(ray_session, tmp_path):
    """Workers that can never start (more CPUs than the cluster has) keep the trial's worker group
    starting until the deadline stops the study: Train's cleaner never heard of its group."""
    import ray
    from ray import tune

    from tl.config import Config
    from tl.sweep.deadline import write_deadline
    from tl.sweep.executors import TrialPayload
    from tl.sweep.placement import live_placement_groups
    from tl.sweep.resources import TrialResources
    from tl.sweep.search import run_study

    before = live_placement_groups()
    deadline = str(tmp_path / "deadline")
    write_deadline(deadline, 8)
    payload = TrialPayload(overrides=TINY, target=ray.put(make_toy_dataset(12)), target_hash="toy-12",
                           base_model=None, base_hash=None, storage=str(tmp_path / "tune"),
                           resources=TrialResources(1, 1000.0, 0.0, 0.1, 1), executor="train", max_failures=0)
    (result,) = list(run_study(name="starved", storage=payload.storage, payload=payload, mode=None,
                               config=Config().override(TINY), num_samples=1, seed=0, logger=tune.Callback(),
                               deadline_file=deadline, resume=False))
    assert not (result.metrics or {}).get("final")  # stopped, not trained
    assert live_placement_groups() == before
