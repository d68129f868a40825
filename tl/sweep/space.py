"""The search space: what a study's Optuna trials may set, per mode (define-by-run; Optuna only,
no Ray, so `tl report` can read it)."""

from __future__ import annotations

import optuna

from tl.config import Config
from tl.model import max_freeze_depth
from tl.sweep.study import MODES

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


# Every setting a study may vary: the chosen hyperparameters of a selected model (tl report).
SEARCHED = (*RANGES, *CHOICES, "transfer.freeze_depth", "transfer.head_epochs")
