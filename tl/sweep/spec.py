"""What a sweep is asked to do: the sweep scripts' flags as one record."""

from __future__ import annotations

from dataclasses import dataclass, field

from tl.sweep.study import MODES


@dataclass(frozen=True)
class Simulation:
    """How to make a default data set with the built-in simulator (tl.simulate)."""
    survey: str
    n: int
    seed: int
    bts_like: bool = False
    alerts_only: bool = False


@dataclass
class SweepSpec:
    name: str  # the MLflow experiment
    source_data: str  # canonical data set (path or URI)
    target_data: str
    out: str
    fractions: tuple[float, ...] = (0.05, 0.1, 0.25, 0.3, 0.5, 1.0)
    seeds: int = 1  # replicates per fraction and mode: seeds 0 .. seeds-1
    folds: int = 0  # outer cross-validation folds of the target (0: its own split), a study per fold
    num_samples: int = 20
    overrides: dict = field(default_factory=dict)  # fixed settings of every trial
    base_overrides: dict = field(default_factory=dict)  # settings of the base model only
    workers_per_trial: int = 1
    gpus_per_worker: float = 0.0
    executor: str = "auto"  # tl.sweep.executors.EXECUTORS
    storage: str | None = None  # Tune storage; default <out>/tune
    tracking_uri: str | None = None  # default sqlite:///<out>/mlflow.db
    address: str | None = None
    num_cpus: float | None = None  # logical CPUs of a locally started Ray (default: the machine's)
    time_budget: float | None = None  # seconds
    resume: bool = False
    base_run_id: str | None = None  # reuse a base model logged by an earlier sweep
    trial_max_failures: int = 1  # --max-failures: Train restarts or Tune restores of a trial after a loss
    modes: tuple[str, ...] = MODES
    verbose: bool = False  # Ray, Tune and Train output on the console (else in OUT/logs/sweep.log)
    description: str = ""  # the sweep run's MLflow description (mlflow.note.content)
    source_simulation: Simulation | None = None  # simulated into source_data first when it is absent
    target_simulation: Simulation | None = None
