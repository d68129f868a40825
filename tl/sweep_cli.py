"""The command line shared by the sweep scripts in sweeps/: flags, smoke-test settings, default data.

A script declares its sweep (name, default source and target simulations) and calls `main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from tl.errors import TLError

# --smoke-test: the real configuration shrunk to minutes on 2 CPUs.
SMOKE_OVERRIDES = {"train.epochs": 6, "train.batch_size": 32, "train.patience": 6, "train.lr": 3e-3,
                   "data.max_length": 40, "model.gru_hidden": 32, "model.gru_layers": 1,
                   "model.metadata_hidden": 8, "model.dense_hidden": 32, "model.dense_second": 16}
SMOKE_FRACTIONS = (0.25, 1.0)
SMOKE_OBJECTS = 400


@dataclass(frozen=True)
class Simulation:
    """How to make a default data set with the built-in simulator (tl.simulate)."""
    survey: str
    n: int
    seed: int
    bts_like: bool = False
    alerts_only: bool = False


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--smoke-test", action="store_true", help="small data and model, 6 epochs, fractions 0.25 and 1.0, 2 trials each")
    add("--address", default=None, help="Ray cluster address ('auto' on a cluster; default: start Ray here)")
    add("--num-samples", type=int, default=None, help="Optuna trials per fraction, mode and seed (default 20)")
    add("--fractions", default=None, help="comma-separated target fractions (default 0.05,0.1,0.25,0.3,0.5,1)")
    add("--seeds", type=int, default=1, help="seeds per fraction (subset draw and initialisation)")
    add("--modes", default="transfer,scratch",
        help="comma-separated modes to search (default transfer,scratch; scratch at 1.0 is the baseline)")
    add("--source-data", default=None, help="canonical source data set (path or URI; default: simulated)")
    add("--target-data", default=None, help="canonical target data set (path or URI; default: simulated)")
    add("--base-run-id", default=None, help="reuse the base model of this MLflow run instead of training one")
    add("--num-cpus", type=float, default=None,
        help="logical CPUs of the local Ray instance (more than the cores lets 1-thread trials share them)")
    add("--workers-per-trial", type=int, default=2, help="DDP workers per trial")
    add("--gpus-per-worker", type=float, default=0.0)
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


def spec_from_args(args, name: str, source: Simulation, target: Simulation):
    """A SweepSpec from parsed flags; simulates the default data sets into OUT/data when needed."""
    from tl.search import MODES
    from tl.sweep import SweepSpec

    out = os.path.abspath(args.out or os.path.join("sweeps_out", name + ("-smoke" if args.smoke_test else "")))
    overrides = dict(SMOKE_OVERRIDES) if args.smoke_test else {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = value.strip()
    if args.epochs is not None:
        overrides["train.epochs"] = args.epochs
    fractions = SMOKE_FRACTIONS if args.smoke_test else (0.05, 0.1, 0.25, 0.3, 0.5, 1.0)
    if args.fractions:
        try:
            fractions = tuple(float(f) for f in args.fractions.split(","))
        except ValueError:
            raise TLError(f"--fractions {args.fractions!r}: give comma-separated numbers") from None
    modes = tuple(mode.strip() for mode in args.modes.split(","))
    if not modes or any(mode not in MODES for mode in modes):
        raise TLError(f"--modes {args.modes!r}: give one or both of {', '.join(MODES)}")
    size = SMOKE_OBJECTS if args.smoke_test else None
    return SweepSpec(
        name=name, out=out, fractions=fractions, seeds=args.seeds,
        source_data=args.source_data or default_data(source, size, os.path.join(out, "data", "source")),
        target_data=args.target_data or default_data(target, size, os.path.join(out, "data", "target")),
        num_samples=args.num_samples or (2 if args.smoke_test else 20), overrides=overrides,
        workers_per_trial=args.workers_per_trial, gpus_per_worker=args.gpus_per_worker,
        storage=args.storage, tracking_uri=args.tracking_uri, address=args.address,
        num_cpus=args.num_cpus, time_budget=args.time_budget, resume=args.resume, base_run_id=args.base_run_id,
        modes=modes)


def default_data(simulation: Simulation, size: int | None, path: str) -> str:
    """Simulate `simulation` (with `size` objects when given) into `path`, unless it is there."""
    from tl.data import write_dataset
    from tl.simulate import simulate

    if os.path.exists(os.path.join(path, "dataset.json")):
        return path
    n = size or simulation.n
    print(f"tl sweep: simulating {n} {simulation.survey} objects into {path}")
    dataset = simulate(simulation.survey, n, simulation.seed, bts_like=simulation.bts_like,
                       alerts_only=simulation.alerts_only)
    write_dataset(dataset, path, **dataset.meta)
    return path


def main(argv, name: str, description: str, source: Simulation, target: Simulation) -> int:
    """Parse flags, run the sweep, print where the results are; TLError -> one line, status 2."""
    from tl.sweep import run_sweep

    args = build_parser(description).parse_args(argv)
    try:
        summary = run_sweep(spec_from_args(args, name, source, target))
    except TLError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    print(f"{name}: reduction {summary['reduction']}, fraction of baseline {summary['fraction_of_baseline']}")
    return 0
