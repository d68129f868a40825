"""The hyperparameter search: an Optuna define-by-run space, resources, and one Tune study.

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
from tl.model import max_freeze_depth
from tl.sweep.deadline import DeadlineStopper
from tl.sweep.executors import TrialPayload, trainable
from tl.sweep.study import MODES

METRIC = "val_macro_f1"
MIN_TRIALS_TO_PRUNE = 4  # smaller studies run every trial to its end (make_scheduler)
# (low, high, log) of each searched float setting.
RANGES = {
    "train.lr": (1e-4, 1e-2, True),
    "train.class_weight_power": (0.0, 1.0, False),
    "train.weight_decay": (1e-6, 1e-2, True),
    "transfer.pretrained_lr_scale": (0.01, 1.0, True),
    "model.dropout": (0.0, 0.5, False),
}
# (choices) of each searched categorical setting: the transfer recipe (tl.prior, tl.transfer).
CHOICES = {
    "train.tune_logit_adjustment": (False, True),  # prior correction, tau chosen on validation
    "train.init_bias_to_prior": (False, True),
    "transfer.strategy": ("depth", "gru", "head_then_all"),
    "data.refit_metadata_normalizer": (False, True),
}
HEAD_EPOCHS = (1, 10)  # transfer.head_epochs of head_then_all
SHARED = ("train.lr", "train.class_weight_power", "train.weight_decay",
          "train.tune_logit_adjustment", "train.init_bias_to_prior")  # searched in both modes
ONLY = {"transfer": ("transfer.strategy", "data.refit_metadata_normalizer", "transfer.pretrained_lr_scale"),
        "scratch": ("model.dropout",)}  # + transfer.freeze_depth / head_epochs, by strategy


class SearchSpace:
    """The define-by-run space of one mode: call it with an optuna Trial (picklable, for Tune).

    Both modes search the learning rate (log), the class-weight power, the weight decay, prior
    correction at decision time and the head bias at the target prior. transfer also searches the
    freezing strategy (with `depth`, the freeze depth; with `head_then_all`, the head-only epochs),
    the metadata normaliser refit and, when some pre-trained block below the head still trains,
    the learning-rate factor of those blocks. scratch also searches dropout (a transfer model keeps
    its base architecture's settings).
    """

    def __init__(self, mode: str, deepest_freeze: int):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode, self.deepest_freeze = mode, deepest_freeze

    def __call__(self, trial) -> None:
        for name in SHARED:
            suggest(trial, name)
        if self.mode == "scratch":
            suggest(trial, "model.dropout")
            return
        strategy = suggest(trial, "transfer.strategy")
        suggest(trial, "data.refit_metadata_normalizer")
        pretrained_trains = strategy != "depth"
        if strategy == "depth":
            depth = trial.suggest_int("transfer.freeze_depth", 0, self.deepest_freeze)
            pretrained_trains = depth < self.deepest_freeze
        elif strategy == "head_then_all":
            trial.suggest_int("transfer.head_epochs", *HEAD_EPOCHS)
        if pretrained_trains:  # some pre-trained block below the head is still trained
            suggest(trial, "transfer.pretrained_lr_scale")


def suggest(trial, name: str):
    """Suggest setting `name` from RANGES (float) or CHOICES (categorical)."""
    if name in CHOICES:
        return trial.suggest_categorical(name, CHOICES[name])
    low, high, log = RANGES[name]
    return trial.suggest_float(name, low, high, log=log)


def make_space(mode: str, config: Config) -> SearchSpace:
    """The search space of `mode` for models shaped like `config.model`."""
    return SearchSpace(mode, max_freeze_depth(config.model))


def default_point(mode: str, config: Config) -> dict:
    """The settings of `config` for every parameter `mode` searches (enqueued as the first trial)."""
    flat = config.flat()
    defaults = {name: flat[name] for name in (*RANGES, *CHOICES, "transfer.freeze_depth", "transfer.head_epochs")}
    trial = optuna.trial.FixedTrial(defaults)
    make_space(mode, config)(trial)
    return {name: defaults[name] for name in trial.params}


def distributions(mode: str, config: Config) -> dict:
    """Optuna distributions of every parameter `mode` may search (to rebuild a study from results)."""
    found = {}
    for name in (*SHARED, *ONLY[mode]):
        if name in CHOICES:
            found[name] = optuna.distributions.CategoricalDistribution(CHOICES[name])
        else:
            found[name] = optuna.distributions.FloatDistribution(*RANGES[name][:2], log=RANGES[name][2])
    if mode == "transfer":
        found["transfer.freeze_depth"] = optuna.distributions.IntDistribution(0, max_freeze_depth(config.model))
        found["transfer.head_epochs"] = optuna.distributions.IntDistribution(*HEAD_EPOCHS)
    return found


def make_scheduler(num_samples: int, config: Config):
    """ASHA on validation macro-F1 for a study of MIN_TRIALS_TO_PRUNE trials or more, else None.

    ASHA keeps the trials in the top 1/2 of those already recorded at a rung: with 2 trials it
    prunes whichever reaches epoch 2 second when it is behind there, e.g. a fully fine-tuned transfer
    trial racing a faster, mostly frozen one that starts better and ends worse.
    """
    if num_samples < MIN_TRIALS_TO_PRUNE:
        return None
    return ASHAScheduler(metric=METRIC, mode="max", time_attr="training_iteration",
                         max_t=config.train.epochs + 1, grace_period=min(2, config.train.epochs),
                         reduction_factor=2)


def run_study(*, name: str, storage: str, payload: TrialPayload, mode: str | None, config: Config,
              num_samples: int, seed: int, logger, deadline_file: str | None, resume: bool,
              callbacks: tuple = ()):
    """Fit (or, with `resume`, restore and continue) one Tune study; returns its ResultGrid.

    mode None runs the configuration as is, once (the base model); otherwise OptunaSearch (TPE,
    seeded, constant liar when trials run side by side, the default point first) with ASHA
    (make_scheduler). `config` holds the study's fixed settings with the model shape the trials
    build (for transfer: the base model's). `deadline_file`: the study stops when the deadline
    written there passes (tl.sweep.deadline). Tune reuses the `tune` executor's trial actors (and
    so their data cache); not the `train` executor's, whose Tune function may take longer than
    Tune's 2 s to wind its worker group down, and a failed reuse was seen to stall the study.
    `callbacks`: more Tune callbacks next to the MLflow `logger` (e.g. a benchmark's clock).
    """
    function = trainable(payload)
    path = f"{storage.rstrip('/')}/{name}"
    if resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, function, resume_unfinished=True, resume_errored=False).fit()
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
                                  stop=DeadlineStopper(deadline_file) if deadline_file else None,
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    return tuner.fit()
