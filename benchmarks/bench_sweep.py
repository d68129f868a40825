"""Sweep efficiency at one target fraction: the project's Optuna TPE + ASHA study vs random search.

    python benchmarks/bench_sweep.py [--data DIR] [--fraction 0.5] [--num-samples 6] [--epochs 6]
                                     [--json benchmarks/results/sweep/sweep.json]

Both searches run the same Tune trainable (tl.sweep.executors.trainable, executor `train`: a TorchTrainer
per trial), the same search space (tl.sweep.space.make_space), the same first point (the default configuration), the same
trial budget and concurrency, on the same ingested BTS data (`tl ingest bts`, written once under
--work) in from-scratch mode:
  optuna-asha  tl.sweep.search.run_study: Optuna TPE sampler + ASHA early stopping (the project's code)
  random       Optuna RandomSampler through OptunaSearch, no scheduler (every trial runs all epochs)
Reported per search: best validation macro-F1 and the test macro-F1 of that trial (the model
selection a sweep makes; only trials that ran to the end have test metrics), total trial-epochs
spent, trials stopped early, and wall time. Small sizes so it finishes in minutes on 2 CPUs: the
model is the sweeps' --smoke-test model; trials are planned (tl.sweep.resources.plan_resources) for --num-cpus
CPUs (3 trials at a time for 4).

Workaround: on this machine (Ray 2.60, heavy load) the Train placement group of every finished
trial stayed reserved, so later trials waited forever for a CPU. Each search therefore gets its
own Ray session started with --ray-cpus logical CPUs (default 16, room for the leaked groups).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

# The sweeps' --smoke-test model (tl.sweep.cli.SMOKE_OVERRIDES) without its epochs/patience.
SMALL_MODEL = {"train.batch_size": 32, "data.max_length": 40, "model.gru_hidden": 16, "model.gru_layers": 1,
               "model.metadata_hidden": 8, "model.dense_hidden": 16, "model.dense_second": 16}


def trial_summary(result) -> dict:
    """Epochs trained, best validation macro-F1 and (if it finished) test macro-F1 of one trial."""
    import pandas as pd

    frame = result.metrics_dataframe
    if frame is None or frame.empty:
        return {"epochs": 0, "finished": False, "error": str(result.error).splitlines()[0] if result.error else None}
    no_final = pd.Series(False, index=frame.index)  # the trial never reached its final report
    final = frame["final"].fillna(0).eq(1) if "final" in frame.columns else no_final
    epochs = frame[~final & frame["epoch"].notna()]
    row = {"epochs": int(len(epochs)), "finished": bool(final.any()),
           "best_val_macro_f1": float(epochs["val_macro_f1"].max()) if len(epochs) else None,
           "params": {k: v for k, v in (result.config or {}).items()}}
    if final.any():
        last = frame[final].iloc[-1]
        row.update(val_macro_f1=float(last["val_macro_f1"]), test_macro_f1=float(last["test_macro_f1"]))
    return row


def search_summary(name: str, results, seconds: float, epochs: int) -> dict:
    trials = [trial_summary(result) for result in results]
    finished = [t for t in trials if t["finished"]]
    best = max(finished, key=lambda t: t["val_macro_f1"]) if finished else None
    return {"search": name, "trials": len(trials), "finished_trials": len(finished),
            "stopped_early": sum(1 for t in trials if not t["finished"] and t["epochs"] < epochs),
            "errored": sum(1 for t in trials if t.get("error")),
            "trial_epochs": sum(t["epochs"] for t in trials), "wall_seconds": seconds,
            "best_val_macro_f1": best["val_macro_f1"] if best else None,
            "test_macro_f1_of_best": best["test_macro_f1"] if best else None,
            "max_test_macro_f1": max((t["test_macro_f1"] for t in finished), default=None),
            "trial_rows": trials}


def random_search(*, name, storage, payload, config, num_samples, seed):
    """The baseline: same trainable, space and first point as run_study, RandomSampler, no scheduler."""
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from tl.sweep.executors import trainable
    from tl.sweep.search import METRIC
    from tl.sweep.space import default_point, make_space

    resources = payload.resources
    search = OptunaSearch(space=make_space("scratch", config), metric=METRIC, mode="max",
                          sampler=optuna.samplers.RandomSampler(seed=seed),
                          points_to_evaluate=[default_point("scratch", config)])
    tuner = tune.Tuner(trainable(payload),
                       tune_config=tune.TuneConfig(search_alg=search, num_samples=num_samples,
                                                   max_concurrent_trials=resources.max_concurrent),
                       run_config=tune.RunConfig(name=name, storage_path=storage,
                                                 failure_config=tune.FailureConfig(max_failures=0)))
    return tuner.fit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("TL_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    parser.add_argument("--data", default=default_data, help="folder holding bts/")
    parser.add_argument("--work", default="/tmp/tl-bench-training", help="ingested data (shared with bench_training)")
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--num-samples", type=int, default=6, help="trials per search (the budget)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--num-cpus", type=int, default=4, help="CPUs the trials are planned for")
    parser.add_argument("--ray-cpus", type=int, default=16, help="logical CPUs Ray is started with (see above)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray
    from ray import tune

    from tl.config import Config
    from tl.data import read_dataset
    from tl.sweep.executors import TrialPayload
    from tl.sweep.resources import plan_resources
    from tl.sweep.search import run_study

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_training import ensure_data

    data = ensure_data("bts", os.path.abspath(args.data), args.work)
    overrides = {**SMALL_MODEL, "train.epochs": args.epochs, "train.patience": args.epochs + 1,
                 "data.target_fraction": args.fraction, "data.seed": args.seed, "train.seed": args.seed}
    config = Config().override(overrides)
    storage = tempfile.mkdtemp(prefix="bench-sweep-", dir=args.work)
    resources = plan_resources({"CPU": args.num_cpus}, workers=1)
    summaries, load = [], {"before": os.getloadavg()[0]}
    for name in ("optuna-asha", "random"):
        ray.init(address="local", num_cpus=args.ray_cpus, log_to_driver=False)
        payload = TrialPayload(overrides=overrides, target=ray.put(read_dataset(data)), target_hash=data,
                               base_model=None, base_hash=None, storage=storage, resources=resources,
                               executor="train", max_failures=0)
        start = time.perf_counter()
        if name == "optuna-asha":
            results = run_study(name=name, storage=storage, payload=payload, mode="scratch", config=config,
                                num_samples=args.num_samples, seed=args.seed,
                                logger=tune.Callback(), deadline_file=None, resume=False)
        else:
            results = random_search(name=name, storage=storage, payload=payload, config=config,
                                    num_samples=args.num_samples, seed=args.seed)
        summary = search_summary(name, results, time.perf_counter() - start, args.epochs)
        ray.shutdown()
        summaries.append(summary)
        print(f"{name:<12} trials {summary['trials']} (stopped early {summary['stopped_early']}, "
              f"errors {summary['errored']}), trial-epochs {summary['trial_epochs']}, "
              f"best val macro-F1 {summary['best_val_macro_f1']}, its test macro-F1 "
              f"{summary['test_macro_f1_of_best']}, {summary['wall_seconds']:.0f} s", flush=True)
    load["after"] = os.getloadavg()[0]
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                  "planned_cpus": args.num_cpus, "ray_cpus": args.ray_cpus, "concurrent_trials": resources.max_concurrent,
                  "fraction": args.fraction, "num_samples": args.num_samples, "epochs": args.epochs,
                  "mode": "scratch", "overrides": overrides, "load_average": load, "searches": summaries}
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
