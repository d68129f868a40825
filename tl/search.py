"""The hyperparameter search: an Optuna define-by-run space, resources, and one Tune study.

One study (one Tuner, one Optuna TPE study) per target fraction, mode and seed: OptunaSearch
cannot take a grid, and each fraction is its own optimisation problem. The default configuration
is enqueued first, so every study contains the untuned baseline. ASHA on val_macro_f1 stops bad
trials early (Optuna's own pruners are not used by Tune). Trials are selected on validation
metrics only; the test metrics are logged, never optimised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tl.config import Config
from tl.model import max_freeze_depth

METRIC = "val_macro_f1"
MIN_TRIALS_TO_PRUNE = 4  # smaller studies run every trial to its end (make_scheduler)
MODES = ("transfer", "scratch")
# (low, high, log) of each searched float setting.
RANGES = {
    "train.lr": (1e-4, 1e-2, True),
    "train.class_weight_power": (0.0, 1.0, False),
    "train.weight_decay": (1e-6, 1e-2, True),
    "transfer.pretrained_lr_scale": (0.01, 1.0, True),
    "model.dropout": (0.0, 0.5, False),
}


class SearchSpace:
    """The define-by-run space of one mode: call it with an optuna Trial (picklable, for Tune).

    Both modes search the learning rate (log), the class-weight power and the weight decay.
    transfer also searches the freeze depth and, when some pre-trained block is still trained,
    the learning-rate factor of those blocks. scratch also searches dropout (a transfer model
    keeps its base architecture's settings).
    """

    def __init__(self, mode: str, deepest_freeze: int):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.deepest_freeze = mode, deepest_freeze

    def __call__(self, trial) -> None:
        for name in ("train.lr", "train.class_weight_power", "train.weight_decay"):
            low, high, log = RANGES[name]
            trial.suggest_float(name, low, high, log=log)
        if self.mode == "transfer":
            depth = trial.suggest_int("transfer.freeze_depth", 0, self.deepest_freeze)
            if depth < self.deepest_freeze:  # some pre-trained block below the head is still trained
                low, high, log = RANGES["transfer.pretrained_lr_scale"]
                trial.suggest_float("transfer.pretrained_lr_scale", low, high, log=log)
        else:
            low, high, log = RANGES["model.dropout"]
            trial.suggest_float("model.dropout", low, high, log=log)


def make_space(mode: str, config: Config) -> SearchSpace:
    """The search space of `mode` for models shaped like `config.model`."""
    return SearchSpace(mode, max_freeze_depth(config.model))


def default_point(mode: str, config: Config) -> dict:
    """The settings of `config` for every parameter `mode` searches (enqueued as the first trial)."""
    import optuna

    flat = config.flat()
    defaults = {name: flat[name] for name in (*RANGES, "transfer.freeze_depth")}
    trial = optuna.trial.FixedTrial(defaults)
    make_space(mode, config)(trial)
    return {name: defaults[name] for name in trial.params}


@dataclass(frozen=True)
class TrialResources:
    """What one trial reserves: its Tune driver function plus its Train workers."""
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    driver_cpus: float
    max_concurrent: int
    driver_resource: str | None = None  # custom resource (on the head) each driver function takes one of


def plan_resources(cluster: dict, workers: int, gpus_per_worker: float = 0.0,
                   driver_cpus: float = 0.1, headroom_cpus: float = 0.0,
                   driver_resource: str | None = None) -> TrialResources:
    """Per-trial resources and the number of trials that fit side by side in `cluster`.

    On an autoscaling cluster (one whose head declares `driver_resource`, see cluster/), worker
    nodes start from zero, so what is there now says nothing: each trial's driver takes one unit
    of `driver_resource` on the head, workers get one CPU each, and the autoscaler adds the nodes.
    Otherwise a worker gets one CPU when the cluster has room, else an equal share of what is left
    after the driver function, so a 2-CPU machine runs a 2-worker trial instead of deadlocking.
    """
    from tl.errors import TLError

    if workers < 1:
        raise TLError(f"--workers-per-trial must be >= 1, got {workers}")
    if driver_resource and cluster.get(driver_resource, 0) >= 1:
        concurrent = int(cluster[driver_resource])
        return TrialResources(workers, 1.0, float(gpus_per_worker), driver_cpus, concurrent, driver_resource)
    return _plan_fixed(cluster, workers, gpus_per_worker, driver_cpus, headroom_cpus)


def _plan_fixed(cluster: dict, workers: int, gpus_per_worker: float, driver_cpus: float,
                headroom_cpus: float) -> TrialResources:
    from tl.errors import TLError

    cpus = float(cluster.get("CPU", 0)) - headroom_cpus
    gpus = float(cluster.get("GPU", 0))
    if cpus <= driver_cpus:
        raise TLError(f"the Ray cluster has {cluster.get('CPU', 0)} CPUs: too few to run a trial")
    if gpus_per_worker and gpus < workers * gpus_per_worker:
        raise TLError(f"a trial needs {workers * gpus_per_worker} GPUs, the Ray cluster has {gpus}")
    cpus_per_worker = min(1.0, (cpus - driver_cpus) / workers)
    per_trial = driver_cpus + workers * cpus_per_worker
    concurrent = max(1, math.floor(cpus / per_trial + 1e-9))
    if gpus_per_worker:
        concurrent = min(concurrent, math.floor(gpus / (workers * gpus_per_worker) + 1e-9))
    return TrialResources(workers, cpus_per_worker, float(gpus_per_worker), driver_cpus, concurrent)


def distributions(mode: str, config: Config) -> dict:
    """Optuna distributions of every parameter `mode` may search (to rebuild a study from results)."""
    import optuna

    found = {}
    for name, (low, high, log) in RANGES.items():
        found[name] = optuna.distributions.FloatDistribution(low, high, log=log)
    found["transfer.freeze_depth"] = optuna.distributions.IntDistribution(0, max_freeze_depth(config.model))
    return found


def make_scheduler(num_samples: int, config: Config):
    """ASHA on validation macro-F1 for a study of MIN_TRIALS_TO_PRUNE trials or more, else None.

    ASHA keeps the trials in the top 1/2 of those already recorded at a rung: with 2 trials it
    prunes whichever reaches epoch 2 second when it is behind there, e.g. a fully fine-tuned transfer
    trial racing a faster, mostly frozen one that starts better and ends worse.
    """
    from ray.tune.schedulers import ASHAScheduler

    if num_samples < MIN_TRIALS_TO_PRUNE:
        return None
    return ASHAScheduler(metric=METRIC, mode="max", time_attr="training_iteration",
                         max_t=config.train.epochs + 1, grace_period=min(2, config.train.epochs),
                         reduction_factor=2)


def run_study(*, name: str, storage: str, shared: dict, mode: str | None, config: Config,
              num_samples: int, resources: TrialResources, seed: int, logger,
              deadline_file: str | None, resume: bool):
    """Fit (or, with `resume`, restore and continue) one Tune study; returns its ResultGrid.

    mode None runs the configuration as is, once (the base model); otherwise OptunaSearch (TPE,
    seeded, constant liar when trials run side by side, the default point first) with ASHA
    (make_scheduler).
    `deadline_file`: the study stops when the deadline written there passes (tl.deadline).
    """
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from tl.deadline import DeadlineStopper
    from tl.worker import run_trial

    driver = {"CPU": resources.driver_cpus}
    if resources.driver_resource:
        driver[resources.driver_resource] = 1
    trainable = tune.with_resources(tune.with_parameters(run_trial, shared=shared), driver)
    path = f"{storage.rstrip('/')}/{name}"
    if resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=False).fit()
    search, scheduler = None, None
    if mode is not None:
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=resources.max_concurrent > 1)
        search = OptunaSearch(space=make_space(mode, config), metric=METRIC, mode="max", sampler=sampler,
                              points_to_evaluate=[default_point(mode, config)])
        scheduler = make_scheduler(num_samples, config)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                    num_samples=num_samples if mode else 1,
                                    max_concurrent_trials=resources.max_concurrent),
        run_config=tune.RunConfig(name=name, storage_path=storage, callbacks=[logger],
                                  stop=DeadlineStopper(deadline_file) if deadline_file else None,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    return tuner.fit()

