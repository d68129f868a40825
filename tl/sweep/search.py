"""The hyperparameter search: one Tune study of the space in tl.sweep.space, with ASHA.

One study (one Tuner, one Optuna TPE study) per target fraction, mode and seed: OptunaSearch
cannot take a grid, and each fraction is its own optimisation problem. The default configuration
is enqueued first, so every study contains the untuned baseline. ASHA on val_macro_f1 stops bad
trials early (Optuna's own pruners are not used by Tune). Trials are selected on validation
metrics only; the test metrics are logged, never optimised.
"""

from __future__ import annotations

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from tl.config import Config
from tl.training import MAX_EPOCHS
from tl.sweep.deadline import DeadlineStopper
from tl.sweep.executors import TrialPayload, trainable
from tl.sweep.placement import live_placement_groups, release_placement_groups
from tl.sweep.space import default_point, make_space

METRIC = "val_macro_f1"
MIN_TRIALS_TO_PRUNE = 4  # smaller studies run every trial to its end (make_scheduler)


def make_scheduler(num_samples: int, config: Config):
    """ASHA on validation macro-F1 for a study of MIN_TRIALS_TO_PRUNE trials or more, else None.

    ASHA keeps the trials in the top 1/2 of those already recorded at a rung: with 2 trials it
    prunes whichever reaches epoch 2 second when it is behind there, e.g. a fully fine-tuned transfer
    trial racing a faster, mostly frozen one that starts better and ends worse.
    """
    if num_samples < MIN_TRIALS_TO_PRUNE:
        return None
    # max_t: one report per epoch and a final one. It must exceed any trial's epochs, or ASHA stops
    # the trial at max_t before its final report (a train.max_steps budget sets epochs per trial).
    most_epochs = MAX_EPOCHS if config.train.max_steps else config.train.epochs
    return ASHAScheduler(metric=METRIC, mode="max", time_attr="training_iteration",
                         max_t=most_epochs + 1, grace_period=min(2, most_epochs), reduction_factor=2)


def tune_retries(payload: TrialPayload) -> int:
    """Restarts of a lost trial by Tune: a `tune` trial's actor restarts from its last epoch
    checkpoint; a `train` trial's workers are restarted by Train (its own FailureConfig)."""
    return payload.max_failures if payload.executor == "tune" else 0


def run_study(*, name: str, storage: str, payload: TrialPayload, mode: str | None, config: Config,
              num_samples: int, seed: int, logger, deadline_file: str | None, resume: bool,
              callbacks: tuple = (), verbose: bool = False):
    """Fit (or, with `resume`, restore and continue) one Tune study; returns its ResultGrid.

    mode None runs the configuration as is, once (the base model); otherwise OptunaSearch (TPE,
    seeded, constant liar when trials run side by side, the default point first) with ASHA
    (make_scheduler). `config` holds the study's fixed settings with the model shape the trials
    build (for transfer: the base model's). `deadline_file`: the study stops when the deadline
    written there passes (tl.sweep.deadline). Tune reuses the `tune` executor's trial actors (and
    so their data cache); not the `train` executor's, whose Tune function may take longer than
    Tune's 2 s to wind its worker group down, and a failed reuse was seen to stall the study.
    `callbacks`: more Tune callbacks next to the MLflow `logger` (e.g. a benchmark's clock, the
    console's trial lines). `verbose` False: Tune prints nothing (tl.sweep.console prints the trials).
    A `train` study's placement groups that Train left behind are released when it ends
    (tl.sweep.placement).
    """
    function = trainable(payload)
    path = f"{storage.rstrip('/')}/{name}"
    if resume and tune.Tuner.can_restore(path):
        # errored trials too, from their last checkpoint: what stops a sweep (a full disk, a lost
        # node past --max-failures) also errors the trials it hit; a trial that ended as failed
        # in MLflow fails again the same way.
        return fit(tune.Tuner.restore(path, function, resume_unfinished=True, resume_errored=True),
                   payload.executor)
    search, scheduler = None, None
    concurrent = payload.resources.max_concurrent
    if mode is not None:
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=concurrent > 1)
        search = OptunaSearch(space=make_space(mode, config), metric=METRIC, mode="max", sampler=sampler,
                              points_to_evaluate=[default_point(mode, config)])
        scheduler = make_scheduler(num_samples, config)
    tuner = tune.Tuner(
        function,
        tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                    num_samples=num_samples if mode else 1,
                                    max_concurrent_trials=concurrent, reuse_actors=payload.executor == "tune"),
        run_config=tune.RunConfig(name=name, storage_path=storage, callbacks=[logger, *callbacks],
                                  verbose=None if verbose else 0,
                                  stop=DeadlineStopper(deadline_file) if deadline_file else None,
                                  failure_config=tune.FailureConfig(max_failures=tune_retries(payload)),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    return fit(tuner, payload.executor)


def fit(tuner: tune.Tuner, executor: str):
    """tuner.fit(); after a `train` study, the placement groups Train left behind are released."""
    if executor != "train":
        return tuner.fit()
    before = live_placement_groups()
    try:
        return tuner.fit()
    finally:
        release_placement_groups(keep=before)
