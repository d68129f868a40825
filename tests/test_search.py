"""The search space and resource planning, without Ray: optuna FixedTrial and a real study."""

import math

import optuna
import pytest

from tl.config import Config
from tl.errors import TLError
from tl.model import max_freeze_depth
from tl.sweep.resources import plan_resources
from tl.sweep.space import RANGES, default_point, distributions, make_space

CONFIG = Config()
DEEPEST = max_freeze_depth(CONFIG.model)


SHARED_POINT = {"train.lr": 1e-3, "train.class_weight_power": 0.5, "train.weight_decay": 1e-4,
                "train.tune_logit_adjustment": True, "train.init_bias_to_prior": False}


def searched(mode: str, point: dict) -> set:
    trial = optuna.trial.FixedTrial(point)
    make_space(mode, CONFIG)(trial)
    return set(trial.params)


def test_transfer_space_is_conditional_on_the_strategy_and_freeze_depth():
    transfer = {**SHARED_POINT, "data.refit_metadata_normalizer": True, "transfer.pretrained_lr_scale": 0.1}
    common = {*SHARED_POINT, "transfer.strategy", "data.refit_metadata_normalizer"}
    partial = {**transfer, "transfer.strategy": "depth", "transfer.freeze_depth": 1}
    assert searched("transfer", partial) == {*common, "transfer.freeze_depth", "transfer.pretrained_lr_scale"}
    full = {**transfer, "transfer.strategy": "depth", "transfer.freeze_depth": DEEPEST}
    assert searched("transfer", full) == {*common, "transfer.freeze_depth"}  # all frozen: no lr factor
    gru = {**transfer, "transfer.strategy": "gru"}
    assert searched("transfer", gru) == {*common, "transfer.pretrained_lr_scale"}
    two_phase = {**transfer, "transfer.strategy": "head_then_all", "transfer.head_epochs": 3}
    assert searched("transfer", two_phase) == {*common, "transfer.head_epochs", "transfer.pretrained_lr_scale"}


def test_scratch_space_has_no_transfer_settings():
    assert searched("scratch", {**SHARED_POINT, "model.dropout": 0.2}) == {*SHARED_POINT, "model.dropout"}


@pytest.mark.parametrize("mode", ["transfer", "scratch"])
def test_sampled_points_are_valid_settings_in_range(mode):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    study.optimize(lambda trial: (make_space(mode, CONFIG)(trial), trial.params.get("train.lr", 0))[1],
                   n_trials=15)
    known = distributions(mode, CONFIG)
    for trial in study.trials:
        Config().override(trial.params)  # every name is a real dotted setting
        for name, value in trial.params.items():
            assert known[name]._contains(known[name].to_internal_repr(value)), (name, value)
        if mode == "transfer" and trial.params["transfer.strategy"] == "depth":
            assert 0 <= trial.params["transfer.freeze_depth"] <= DEEPEST
    lrs = [t.params["train.lr"] for t in study.trials]
    assert min(lrs) >= RANGES["train.lr"][0] and max(lrs) <= RANGES["train.lr"][1]


@pytest.mark.parametrize("mode", ["transfer", "scratch"])
def test_default_point_is_the_config_default(mode):
    point = default_point(mode, CONFIG)
    flat = CONFIG.flat()
    assert point == {name: flat[name] for name in point}
    assert "train.lr" in point and ("transfer.freeze_depth" in point) == (mode == "transfer")


def test_plan_resources_never_oversubscribes_two_cpus():
    plan = plan_resources({"CPU": 2.0}, workers=2)
    assert plan.max_concurrent == 1
    assert plan.driver_cpus + plan.workers * plan.cpus_per_worker <= 2.0
    assert math.isclose(plan.cpus_per_worker, (2.0 - 0.1) / 2)


def test_plan_resources_on_a_larger_cluster():
    plan = plan_resources({"CPU": 16.0}, workers=2)
    assert plan.cpus_per_worker == 1.0 and plan.max_concurrent == math.floor(16 / 2.1)
    gpu_plan = plan_resources({"CPU": 64.0, "GPU": 8.0}, workers=4, gpus_per_worker=1.0)
    assert gpu_plan.max_concurrent == 2  # limited by GPUs: 8 / (4 x 1)


def test_plan_resources_on_an_autoscaling_cluster_sized_by_the_driver_resource():
    # cluster/cluster.yaml's head alone: GPU workers are added on demand by the autoscaler
    head = {"CPU": 8.0, "tl_driver": 8.0}
    plan = plan_resources(head, workers=2, gpus_per_worker=1.0, driver_resource="tl_driver")
    assert (plan.max_concurrent, plan.cpus_per_worker, plan.driver_resource) == (8, 1.0, "tl_driver")
    with pytest.raises(TLError, match="GPUs"):  # without the head's resource it is a fixed cluster
        plan_resources(head, workers=2, gpus_per_worker=1.0, driver_resource="other")


def test_plan_resources_rejects_impossible_requests():
    with pytest.raises(TLError, match="workers-per-trial"):
        plan_resources({"CPU": 4.0}, workers=0)
    with pytest.raises(TLError, match="GPUs"):
        plan_resources({"CPU": 4.0}, workers=2, gpus_per_worker=1.0)


def test_asha_prunes_only_studies_with_a_population_to_compare():
    from ray.tune.schedulers import ASHAScheduler

    from tl.sweep.search import MIN_TRIALS_TO_PRUNE, make_scheduler

    config = Config()
    assert make_scheduler(MIN_TRIALS_TO_PRUNE - 1, config) is None
    assert isinstance(make_scheduler(MIN_TRIALS_TO_PRUNE, config), ASHAScheduler)


def test_asha_never_stops_a_trial_at_its_epoch_budget_before_its_final_report():
    """A sweep with a step budget (train.max_steps) lets a small fraction run many more epochs than
    train.epochs: ASHA's max_t must lie beyond the last epoch, else it prunes the trial that got there."""
    from tl.sweep.search import make_scheduler
    from tl.training import MAX_EPOCHS

    assert make_scheduler(8, Config().override({"train.epochs": 20}))._max_t == 21
    assert make_scheduler(8, Config().override({"train.epochs": 20, "train.max_steps": 400}))._max_t == MAX_EPOCHS + 1


def test_auto_executor_is_tune_for_one_worker_on_a_fixed_cluster_only():
    from tl.sweep.resources import choose_executor

    assert choose_executor("auto", 1, autoscaling=False) == "tune"
    assert choose_executor("auto", 2, autoscaling=False) == "train"
    assert choose_executor("auto", 1, autoscaling=True) == "train"
    assert choose_executor("train", 1, autoscaling=False) == "train"
    with pytest.raises(TLError, match="--executor tune runs 1 worker"):
        choose_executor("tune", 2, autoscaling=False)


def test_tune_trials_take_no_driver_cpu_so_two_fit_on_two_cpus():
    assert plan_resources({"CPU": 2.0}, workers=1, driver_cpus=0.0).max_concurrent == 2
    assert plan_resources({"CPU": 2.0}, workers=1).max_concurrent == 1  # a train trial's driver takes 0.1
