"""What a sweep trial costs outside its epochs, with each executor (`tune` and `train`), in one run.

    RAY_AUTH_MODE=disabled python benchmarks/bench_trial_overhead.py --json benchmarks/results/trial_overhead.json

For each executor, on one local Ray instance, a scratch study of the sweeps' --smoke-test model on a
simulated ZTF data set is run through the project's own path (tl.sweep.search.run_study with the
MLflow TrialLogger on a SQLite store, as a sweep runs it):

1. from outside, one trial at a time: wall time T(n, e) of the same study with n = 1 and 3 trials
   and e = 1 and 5 epochs, each `--repeats` times; a least-squares fit of T = a + n c + n e b over
   every run gives the per-study cost a (Tuner and actor start), the per-epoch cost b and the
   fixed cost per trial c (start, data, logging, teardown: everything but the epochs); the
   pairwise estimates c = (T(3,1) - T(1,1)) / 2 - b on median times are given next to it;
2. an 8-trial study with as many trials side by side as the planner allows: wall time against
   the sum of the trials' own training time (epochs run x b; ASHA stops some trials early), the
   median seconds per trial outside its epochs (its wall time in Tune, start to end, minus its
   epochs x b), and the CPU utilisation
   of the machine over the study (from /proc/stat: every process, so note the load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import ray
from mlflow.tracking import MlflowClient
from ray import tune

from tl.config import Config
from tl.simulate import simulate
from tl.sweep import tracking
from tl.sweep.cli import SMOKE_OVERRIDES
from tl.sweep.driver import start_ray
from tl.sweep.executors import TrialPayload
from tl.sweep.resources import DRIVER_CPUS, TrialResources, plan_resources
from tl.sweep.search import run_study
from tl.sweep.study import Study
from tl.sweep.trial_logger import TrialLogger


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat)."""
    with open("/proc/stat") as stream:
        values = [int(v) for v in stream.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class TrialClock(tune.Callback):
    """Wall time of every trial from its start to its end, as the Tune driver sees it."""

    def __init__(self):
        self.started, self.seconds, self.epochs = {}, [], []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.perf_counter()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.seconds.append(time.perf_counter() - self.started.pop(trial.trial_id))
        result = trial.last_result or {}  # one report per epoch, plus the final one of a trial that ended
        self.epochs.append(int(result.get("training_iteration", 0)) - int(bool(result.get("final"))))


def study(executor: str, n: int, epochs: int, concurrent: int | None, context: dict) -> dict:
    """Run one scratch study of `n` trials; its wall time, trial times and CPU utilisation."""
    cpus_per_worker = 1.0
    driver = 0.0 if executor == "tune" else DRIVER_CPUS
    planned = plan_resources(ray.cluster_resources(), 1, driver_cpus=driver)
    resources = TrialResources(1, cpus_per_worker, 0.0, driver, concurrent or planned.max_concurrent)
    overrides = {**SMOKE_OVERRIDES, "train.epochs": epochs, "train.patience": epochs + 1}
    name = f"{executor}-n{n}-e{epochs}-c{resources.max_concurrent}"
    payload = TrialPayload(overrides=overrides, target=context["target"], target_hash=context["hash"],
                           base_model=None, base_hash=None, storage=context["storage"], resources=resources,
                           executor=executor, max_failures=0)
    logger = TrialLogger(context["uri"], context["experiment_id"], None, Study(1.0, "scratch", n), {"bench": name},
                         overrides, context["storage"])
    clock = TrialClock()
    busy0, total0 = cpu_ticks()
    start = time.perf_counter()
    run_study(name=name, storage=context["storage"], payload=payload, mode="scratch",
              config=Config().override(overrides), num_samples=n, seed=0, logger=logger,
              deadline_file=None, resume=False, callbacks=(clock,))
    wall = time.perf_counter() - start
    busy1, total1 = cpu_ticks()
    row = {"executor": executor, "trials": n, "epochs": epochs, "concurrent": resources.max_concurrent,
           "wall_seconds": wall, "trial_seconds": clock.seconds, "trial_epochs": clock.epochs,
           "cpu_utilisation": (busy1 - busy0) / max(total1 - total0, 1)}
    print(f"{name}: {wall:.1f} s, trials {[round(s, 1) for s in clock.seconds]}, "
          f"CPU {row['cpu_utilisation']:.0%}", flush=True)
    return row


def measure(executor: str, context: dict, epochs_long: int, repeats: int) -> dict:
    rows = [study(executor, n, e, 1, context) for _ in range(repeats) for n in (1, 3) for e in (1, epochs_long)]
    design = np.array([[1.0, row["trials"], row["trials"] * row["epochs"]] for row in rows])
    (per_study, fixed, per_epoch), *_ = np.linalg.lstsq(design, np.array([r["wall_seconds"] for r in rows]), rcond=None)
    wall = {(n, e): statistics.median(r["wall_seconds"] for r in rows if (r["trials"], r["epochs"]) == (n, e))
            for n in (1, 3) for e in (1, epochs_long)}
    pair_epoch = (wall[1, epochs_long] - wall[1, 1]) / (epochs_long - 1)
    eight = study(executor, 8, epochs_long, None, context)
    training = sum(eight["trial_epochs"]) * per_epoch
    outside = [seconds - epochs * per_epoch for seconds, epochs in zip(eight["trial_seconds"], eight["trial_epochs"])]
    return {"executor": executor, "per_epoch_seconds": per_epoch, "fixed_seconds_per_trial": fixed,
            "per_study_seconds": per_study, "median_walls": {f"{n}x{e}": t for (n, e), t in wall.items()},
            "fixed_seconds_per_trial_pairwise": (wall[3, 1] - wall[1, 1]) / 2 - pair_epoch,
            "fixed_seconds_per_trial_pairwise_5_epochs": (wall[3, epochs_long] - wall[1, epochs_long]) / 2
            - epochs_long * pair_epoch, "grid": rows,
            "eight_trials": {**eight, "sum_of_training_seconds": training,
                             "wall_over_training": eight["wall_seconds"] / training if training > 0 else None,
                             "median_seconds_outside_epochs": statistics.median(outside)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--objects", type=int, default=400, help="simulated ZTF objects (the smoke-test size)")
    parser.add_argument("--epochs", type=int, default=5, help="the longer study's epochs")
    parser.add_argument("--executors", default="tune,train")
    parser.add_argument("--num-cpus", type=int, default=2, help="logical CPUs of the local Ray instance")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (trials, epochs) study")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    work = tempfile.mkdtemp(prefix="tl-bench-overhead-")
    dataset = simulate("ztf", args.objects, 3)
    start_ray(num_cpus=args.num_cpus, log_to_driver=False)
    uri = f"sqlite:///{work}/mlflow.db"
    context = {"target": ray.put(dataset), "hash": f"bench-{args.objects}", "storage": os.path.join(work, "tune"),
               "uri": uri, "experiment_id": tracking.experiment_id(MlflowClient(uri), "overhead")}
    load = {"before": os.getloadavg()[0]}
    results = [measure(executor, context, args.epochs, args.repeats) for executor in args.executors.split(",")]
    load["after"] = os.getloadavg()[0]
    ray.shutdown()
    for result in results:
        eight = result["eight_trials"]
        print(f"{result['executor']}: fixed cost per trial {result['fixed_seconds_per_trial']:.2f} s (pairwise "
              f"{result['fixed_seconds_per_trial_pairwise']:.2f} / {result['fixed_seconds_per_trial_pairwise_5_epochs']:.2f} s), "
              f"epoch {result['per_epoch_seconds']:.2f} s, per study {result['per_study_seconds']:.1f} s; "
              f"8 trials {eight['wall_seconds']:.1f} s wall for {eight['sum_of_training_seconds']:.1f} s of epochs, "
              f"median {eight['median_seconds_outside_epochs']:.2f} s per trial outside its epochs, "
              f"CPU {eight['cpu_utilisation']:.0%}")
    if args.json:
        report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                  "ray_cpus": args.num_cpus, "objects": args.objects, "repeats": args.repeats,
                  "load_average": load, "results": results}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
