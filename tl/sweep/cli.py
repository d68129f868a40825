"""The command line shared by the sweep scripts in sweeps/: flags, smoke-test settings, default data.

A script declares its sweep (name, default source and target simulations) and calls `main`.
Parsing does no work: the default data sets are simulated by the sweep, after every check.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import dataclass

from tl.errors import TLError
from tl.sweep.driver import run_sweep
from tl.sweep.resources import EXECUTORS
from tl.sweep.spec import Simulation, SweepSpec
from tl.sweep.storage import EXIT_STORAGE, StorageFault

# --smoke-test: the real configuration shrunk to minutes on 2 CPUs.
SMOKE_OVERRIDES = {"train.epochs": 6, "train.batch_size": 32, "train.patience": 6, "train.lr": 3e-3,
                   "data.max_length": 40, "model.gru_hidden": 32, "model.gru_layers": 1,
                   "model.metadata_hidden": 8, "model.dense_hidden": 32, "model.dense_second": 16}
SMOKE_FRACTIONS = (0.25, 1.0)
SMOKE_OBJECTS = 400


@dataclass(frozen=True)
class Preset:
    """A named size of the sweep (--smoke-test, --demo): settings, fractions, objects, trials."""
    name: str  # the output directory's suffix: sweeps_out/NAME-<name>
    overrides: dict
    base_overrides: dict
    fractions: tuple[float, ...]
    source_objects: int
    target_objects: int
    num_samples: int


# --smoke-test: the real configuration shrunk to a minute on 2 CPUs (CI; its models barely learn).
SMOKE = Preset("smoke", SMOKE_OVERRIDES, {}, SMOKE_FRACTIONS, SMOKE_OBJECTS, SMOKE_OBJECTS, 2)
# --demo: the main job, under 3 minutes on 2 CPUs: models that learn, and transfer ahead of
# scratch at the smallest fraction (a base trained longer on more source objects).
DEMO = Preset("demo", {**SMOKE_OVERRIDES, "train.epochs": 10, "train.patience": 10},
              {"train.epochs": 12, "train.patience": 12}, (0.05, 1.0), 2000, 1000, 2)


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False)
    add = parser.add_argument
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke-test", action="store_true",
                      help="CI size, about a minute: 400 objects, 6 epochs, fractions 0.25 and 1.0, 2 trials each")
    size.add_argument("--demo", action="store_true",
                      help="the main job, under 3 minutes on 2 CPUs: fractions 0.05, 0.25, 1 and a base that transfers")
    add("--verbose", action="store_true", help="show Ray, Tune and Train output (default: OUT/logs/sweep.log)")
    add("--address", default=None, help="Ray cluster address ('auto' on a cluster; default: start Ray here)")
    add("--num-samples", type=int, default=None, help="Optuna trials per fraction, mode and seed (default 20)")
    add("--fractions", default=None, help="comma-separated target fractions (default 0.05,0.1,0.25,0.3,0.5,1)")
    add("--seeds", type=int, default=1, help="replicates per fraction and mode (each its own subset draw and initialisation)")
    add("--folds", type=int, default=0,
        help="outer cross-validation folds of the target: fold k is the test split of its own studies (default 0: the target's split)")
    add("--modes", default="transfer,scratch",
        help="comma-separated modes to search (default transfer,scratch; scratch at 1.0 is the baseline)")
    add("--source-data", default=None, help="canonical source data set (path or URI; default: simulated)")
    add("--target-data", default=None, help="canonical target data set (path or URI; default: simulated)")
    add("--base-run-id", default=None, help="reuse the base model of this MLflow run instead of training one")
    add("--num-cpus", type=float, default=None,
        help="logical CPUs of the local Ray instance (more than the cores lets 1-thread trials share them)")
    add("--workers-per-trial", type=int, default=1, help="DDP workers per trial (default 1)")
    add("--gpus-per-worker", type=float, default=0.0)
    add("--executor", choices=EXECUTORS, default="auto",
        help="how a trial runs: a Ray Train TorchTrainer per trial (train: DDP, GPU clusters), inside its "
             "reused Tune actor (tune: 1 worker, cheap), or auto (tune for 1-worker trials on a fixed cluster)")
    add("--max-failures", type=int, default=1,
        help="retries of a trial after a lost worker or node, each from its last epoch checkpoint (default 1)")
    add("--epochs", type=int, default=None, help="train.epochs of every trial")
    add("--set", action="append", default=[], metavar="KEY=VALUE", help="a fixed setting, e.g. train.batch_size=128")
    add("--storage", default=os.environ.get("TL_STORAGE"),
        help="Tune storage path or URI (shared storage on multi-node; default $TL_STORAGE, else OUT/tune)")
    # Not read from $MLFLOW_TRACKING_URI: mlflow.set_tracking_uri writes that variable, so a second
    # sweep in the same process (or a child process) would log into the first sweep's store.
    add("--tracking-uri", default=None, help="MLflow tracking URI (default sqlite:///OUT/mlflow.db)")
    add("--time-budget", type=float, default=None, help="seconds; stop gracefully and still write the summary")
    add("--resume", action="store_true", help="continue an interrupted sweep with the same flags")
    add("--out", default=None, help="output directory (default sweeps_out/NAME)")
    return parser


def preset_of(args) -> Preset | None:
    return SMOKE if args.smoke_test else DEMO if args.demo else None


def spec_from_args(args, name: str, source: Simulation, target: Simulation, description: str = "") -> SweepSpec:
    """A SweepSpec from parsed flags (default data sets: simulated into OUT/data by the sweep)."""
    preset = preset_of(args)
    out = os.path.abspath(args.out or os.path.join("sweeps_out", name + (f"-{preset.name}" if preset else "")))
    overrides = dict(preset.overrides) if preset else {}
    for item in args.set:
        key, separator, value = item.partition("=")
        if not separator:
            raise TLError(f"--set {item!r}: give KEY=VALUE, e.g. train.lr=3e-4")
        overrides[key.strip()] = value.strip()
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    fractions = preset.fractions if preset else (0.05, 0.1, 0.25, 0.3, 0.5, 1.0)
    if args.fractions is not None:
        try:
            fractions = tuple(float(f) for f in args.fractions.split(","))
        except ValueError:
            raise TLError(f"--fractions {args.fractions!r}: give comma-separated numbers") from None
    modes = tuple(mode.strip() for mode in args.modes.split(","))
    return SweepSpec(
        name=name, out=out, fractions=fractions, seeds=args.seeds, folds=args.folds,
        source_data=args.source_data or os.path.join(out, "data", "source"),
        target_data=args.target_data or os.path.join(out, "data", "target"),
        source_simulation=None if args.source_data else sized(source, preset and preset.source_objects),
        target_simulation=None if args.target_data else sized(target, preset and preset.target_objects),
        num_samples=args.num_samples if args.num_samples is not None else (preset.num_samples if preset else 20),
        overrides=overrides, base_overrides=dict(preset.base_overrides) if preset else {},
        verbose=args.verbose, description=description, workers_per_trial=args.workers_per_trial, gpus_per_worker=args.gpus_per_worker,
        executor=args.executor, storage=args.storage, tracking_uri=args.tracking_uri, address=args.address,
        num_cpus=args.num_cpus, time_budget=args.time_budget, resume=args.resume, base_run_id=args.base_run_id,
        modes=modes, trial_max_failures=args.max_failures)


def sized(simulation: Simulation, size: int | None) -> Simulation:
    return simulation if size is None else dataclasses.replace(simulation, n=size)


def main(argv, name: str, description: str, source: Simulation, target: Simulation) -> int:
    """Parse flags, run the sweep, print where the results are; TLError -> one line, status 2
    (a full or unwritable storage: status 75, continue with --resume)."""
    args = build_parser(description).parse_args(argv)
    try:
        summary = run_sweep(spec_from_args(args, name, source, target, description))
    except StorageFault as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_STORAGE
    except TLError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    baseline = summary["fraction_of_baseline"]
    print(f"{name}: transfer reaches " + ", ".join(f"{share:.0%} at f={fraction}" for fraction, share in baseline.items())
          + " of the scratch baseline (f=1)" if baseline else f"{name}: no baseline (scratch at f=1) in this sweep")
    return 0
