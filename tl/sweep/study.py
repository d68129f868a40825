"""A study: one Optuna search of one mode at one target fraction and seed (or the base model).

Every name derived from a study is made here, in one spelling: the MLflow stage tag and the resume
state key (`key`), the Tune experiment directory, trial run names, the registered model, and the
name of its parameter-importance artifact.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

MODES = ("transfer", "scratch")
BASE = "base"  # the mode of the stage-1 study (the base model, trained once on the source)


@dataclass(frozen=True)
class Study:
    fraction: float  # data.target_fraction (1.0 for the base model)
    mode: str  # "transfer", "scratch" or BASE
    seed: int = 0  # the replicate: subset draw, initialisation and sampler seeds derive from it
    fold: int | None = None  # outer cross-validation fold, when there is one

    def __post_init__(self):
        if self.mode not in (*MODES, BASE):
            raise ValueError(f"mode must be one of {(*MODES, BASE)}, got {self.mode!r}")

    @classmethod
    def base(cls) -> "Study":
        return cls(fraction=1.0, mode=BASE)

    @property
    def is_base(self) -> bool:
        return self.mode == BASE

    @property
    def key(self) -> str:
        """The MLflow stage tag and the resume-state key: "0.25/transfer/0" (or "base")."""
        if self.is_base:
            return BASE
        fold = "" if self.fold is None else f"/k{self.fold}"
        return f"{self.fraction:g}/{self.mode}/{self.seed}{fold}"

    def tune_name(self, run_token: str, attempt: int = 0) -> str:
        """The Tune experiment directory of this study's `attempt` (0: the first) in one sweep."""
        if self.is_base:
            name = f"{run_token}-base"
        else:
            fold = "" if self.fold is None else f"-k{self.fold}"
            name = f"{run_token}-f{self.fraction:g}-{self.mode}-s{self.seed}{fold}"
        return name if attempt == 0 else f"{name}-r{attempt}"

    @property
    def label(self) -> str:
        """The study as a person reads it: "transfer f=0.05 s1" (with " k2" for fold 2), or "base"."""
        if self.is_base:
            return BASE
        fold = "" if self.fold is None else f" k{self.fold}"
        return f"{self.mode} f={self.fraction:g} s{self.seed}{fold}"

    def trial_run_name(self, number: int) -> str:
        """The MLflow run name of the study's trial `number` (1, 2, ...): "transfer f=0.05 s1 #3"
        (the base model's one run: "base")."""
        return BASE if self.is_base else f"{self.label} #{number}"

    def registered_name(self, experiment: str) -> str:
        """The registered model of this study's champions: `<experiment>-<mode>-<fraction>`."""
        return registered_name(experiment, self.mode, self.fraction)

    @property
    def subset_seed(self) -> int:
        """data.seed: the replicate itself, shared by every fraction, mode and fold, so subsets
        nest across fractions and transfer and scratch see the same objects."""
        return self.seed

    @property
    def init_seed(self) -> int:
        """train.seed (initialisation, dropout, batch order): one per replicate and mode, apart
        from the subset draw."""
        return _derived_seed("init", self.mode, self.seed)

    @property
    def sampler_seed(self) -> int:
        """The Optuna sampler's seed: one per study, so no two studies draw the same configurations."""
        return _derived_seed("sampler", self.key)

    def overrides(self, folds: int) -> dict:
        """The study's fixed settings: its fraction, fold and seeds."""
        found = {"data.target_fraction": self.fraction, "data.seed": self.subset_seed,
                 "train.seed": self.init_seed}
        if folds:
            found.update({"data.folds": folds, "data.fold": self.fold or 0})
        return found

    @property
    def importance_name(self) -> str:
        return f"importance_{self.key.replace('/', '_')}"


def registered_name(experiment: str, mode: str, fraction: float) -> str:
    return f"{experiment}-{mode}-{fraction:g}"


def _derived_seed(*parts) -> int:
    """A seed in [0, 2**31) fixed by `parts` (CRC-32: stable across processes and Python versions)."""
    return zlib.crc32("/".join(str(part) for part in parts).encode()) & 0x7FFFFFFF
