"""Training throughput: the plain loop (tl.training.fit) vs the same loop under Ray Train (1 and 2 workers).

    python benchmarks/bench_training.py [--datasets bts,plasticc] [--epochs 3] [--work DIR]
                                        [--modes plain,plain-1thread,ray-1,ray-2]
                                        [--json benchmarks/results/training/training.json]

Data: `tl ingest bts` and `tl ingest plasticc` of ../shared/data, written once under --work
(default /tmp/tl-bench-training, reused; never inside the repository). The configuration is the
project default (tl.config) with train.epochs = --epochs and early stopping off.

Modes, each in a fresh subprocess, all on the same data and settings:
  plain          prepare() + fit() in one process, torch's default intra-op threads
  plain-1thread  the same with torch.set_num_threads(1): the CPU share of one Ray worker
  ray-N          ray.init(address="local"), then a TorchTrainer running tl.sweep.worker.train_loop_per_worker
                 on N workers (1 CPU each, DDP over gloo), then ray.shutdown(); rank 0 logs the
                 time each of its ray.train.report calls returns (the Train controller only sees
                 reports at about 2 s granularity, too coarse for a 3 s epoch)

Seconds per epoch: the median of the intervals between consecutive epoch reports from epoch 2 on
(steady state; an epoch includes the validation pass and, under Ray, rank 0's per-epoch checkpoint).
Light curves per second = train objects / seconds per epoch. Ray's overhead: ray.init, worker-group
start (trainer.fit() called -> the worker function starts on rank 0), teardown (last report ->
trainer.fit() returns) and ray.shutdown. Ratios are between modes of the same invocation.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ("plain", "plain-1thread", "ray-1", "ray-2")
SOURCES = {"bts": "bts", "plasticc": "plasticc"}


def overrides(epochs: int) -> dict:
    return {"train.epochs": epochs, "train.patience": epochs + 1}


def log_event(path: str, **event) -> None:
    """Append one timestamped JSON line (processes on one machine share time.time())."""
    with open(path, "a") as stream:
        stream.write(json.dumps({"t": time.time(), **event}) + "\n")


def read_events(path: str) -> list[dict]:
    with open(path) as stream:
        return [json.loads(line) for line in stream]


def epoch_seconds(report_times: list[float]) -> list[float]:
    """Intervals between consecutive epoch reports (epoch 2 on)."""
    return [b - a for a, b in zip(report_times, report_times[1:])]


# ------------------------------------------------------------------ the measurements (child process)

def run_plain(data: str, epochs: int, threads: int | None) -> dict:
    import torch

    from tl.config import Config
    from tl.experiment import prepare
    from tl.training import fit

    if threads:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    prepared = prepare(Config().override(overrides(epochs)), data)
    prepared_at = time.perf_counter()
    report_times = []
    fit(prepared, report=lambda metrics, get_state: report_times.append(time.perf_counter()))
    return {"n_train": len(prepared.train), "n_val": len(prepared.val), "torch_threads": torch.get_num_threads(),
            "prepare_seconds": prepared_at - start, "first_epoch_seconds": report_times[0] - prepared_at,
            "epoch_seconds": epoch_seconds(report_times)}


def timed_worker(loop_config: dict) -> None:
    """tl.sweep.worker.train_loop_per_worker, with rank 0 logging when it starts and when each of its
    ray.train.report calls returns (the report, rank 0's checkpoint included, is part of the epoch)."""
    import ray.train
    import torch

    from tl.sweep.worker import train_loop_per_worker

    events = loop_config["events"]
    if ray.train.get_context().get_world_rank() == 0:
        log_event(events, event="worker_start", torch_threads=torch.get_num_threads())
        report = ray.train.report

        def timed_report(metrics, *args, **kwargs):
            result = report(metrics, *args, **kwargs)
            log_event(events, event="report", epoch=metrics.get("epoch"), final=metrics.get("final", 0))
            return result

        ray.train.report = timed_report  # train_loop_per_worker looks it up at call time
    train_loop_per_worker(loop_config)


def run_ray(data: str, epochs: int, workers: int, work: str) -> dict:
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from tl.data import read_dataset
    from tl.sweep.executors import scaling

    dataset = read_dataset(data)
    events = os.path.join(tempfile.mkdtemp(dir=work), "events.jsonl")
    t_init = time.time()
    ray.init(address="local", include_dashboard=True, log_to_driver=False)
    t_ready = time.time()
    trainer = TorchTrainer(
        timed_worker,
        train_loop_config={"overrides": overrides(epochs), "target": ray.put(dataset), "base_model": None,
                           "events": events},
        scaling_config=scaling(workers, 1.0, 0.0),
        run_config=ray.train.RunConfig(name=f"bench-{workers}", storage_path=os.path.dirname(events)),
    )
    t_fit = time.time()
    trainer.fit()
    t_fitted = time.time()
    ray.shutdown()
    t_down = time.time()
    log = read_events(events)
    start = next(e for e in log if e["event"] == "worker_start")
    reports = [e for e in log if e["event"] == "report"]
    epoch_reports = [e["t"] for e in reports if not e["final"]]
    n_train, n_val = _split_sizes(dataset)
    return {"n_train": n_train, "n_val": n_val, "torch_threads": start["torch_threads"],
            "ray_init_seconds": t_ready - t_init, "worker_group_start_seconds": start["t"] - t_fit,
            "prepare_and_first_epoch_seconds": epoch_reports[0] - start["t"],
            "epoch_seconds": epoch_seconds(epoch_reports),
            "final_report_seconds": reports[-1]["t"] - epoch_reports[-1],  # test evaluation + model dir
            "teardown_seconds": t_fitted - reports[-1]["t"], "ray_shutdown_seconds": t_down - t_fitted,
            "trainer_fit_seconds": t_fitted - t_fit}


def _split_sizes(dataset) -> tuple[int, int]:
    """Train and val objects as prepare() encodes them (no fraction; classes from train)."""
    from tl.config import Config
    from tl.experiment import prepare

    prepared = prepare(Config(), dataset)
    return len(prepared.train), len(prepared.val)


def measure(mode: str, data: str, epochs: int, work: str) -> dict:
    if mode == "plain":
        return run_plain(data, epochs, None)
    if mode == "plain-1thread":
        return run_plain(data, epochs, 1)
    return run_ray(data, epochs, int(mode.split("-")[1]), work)


# ------------------------------------------------------------------ driver

def ensure_data(name: str, shared: str, work: str) -> str:
    """The canonical data set `name` under `work`, ingested on first use."""
    from tl.ingest import ingest

    out = os.path.join(work, name)
    if not os.path.exists(os.path.join(out, "dataset.json")):
        with contextlib.redirect_stdout(io.StringIO()):
            ingest(name, os.path.join(shared, SOURCES[name]), out, seed=0)
    return out


def run_child(mode: str, data: str, epochs: int, work: str, timeout: float) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--child", mode, "--child-data", data,
               "--epochs", str(epochs), "--work", work]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "error": f"timed out after {timeout:g} s", "load_average_before": load}
    if done.returncode != 0:
        return {"mode": mode, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed",
                "load_average_before": load}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    epoch = statistics.median(row["epoch_seconds"])
    row.update(mode=mode, median_epoch_seconds=epoch, light_curves_per_second=row["n_train"] / epoch,
               process_seconds=time.perf_counter() - started, load_average_before=load,
               load_average_after=os.getloadavg()[0])
    return row


def summary_line(dataset: str, row: dict, reference: dict | None) -> str:
    if "error" in row:
        return f"{dataset:<9} {row['mode']:<14} error: {row['error']}"
    ratio = ""
    if reference and "median_epoch_seconds" in reference:
        ratio = f"{row['light_curves_per_second'] / reference['light_curves_per_second']:.2f}"
    overhead = ""
    if row["mode"].startswith("ray"):
        overhead = (f"init {row['ray_init_seconds']:.1f} start {row['worker_group_start_seconds']:.1f} "
                    f"teardown {row['teardown_seconds']:.1f} shutdown {row['ray_shutdown_seconds']:.1f}")
    return (f"{dataset:<9} {row['mode']:<14} {row['n_train']:>6} {row['median_epoch_seconds']:>8.1f} "
            f"{row['light_curves_per_second']:>8.1f} {ratio:>6} {row['load_average_before']:>5.1f}  {overhead}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("TL_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    parser.add_argument("--data", default=default_data, help="folder holding bts/ and plasticc/")
    parser.add_argument("--datasets", default="bts,plasticc")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement (>= 2)")
    parser.add_argument("--work", default="/tmp/tl-bench-training", help="ingested data and Ray storage")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per measurement")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--child-data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (seconds per epoch are measured from epoch 2 on)")
    if args.child:
        print(json.dumps(measure(args.child, args.child_data, args.epochs, args.work)))
        return 0

    os.makedirs(args.work, exist_ok=True)
    rows = []
    print(f"{'data':<9} {'mode':<14} {'train':>6} {'s/epoch':>8} {'lc/s':>8} {'ratio':>6} {'load':>5}  ray overhead (s)")
    for name in args.datasets.split(","):
        data = ensure_data(name, os.path.abspath(args.data), args.work)
        reference = None
        for mode in args.modes.split(","):
            row = {"dataset": name, **run_child(mode, data, args.epochs, args.work, args.timeout)}
            reference = reference or (row if "error" not in row else None)
            row["throughput_ratio_to_first_mode"] = (row["light_curves_per_second"] / reference["light_curves_per_second"]
                                                     if "error" not in row else None)
            rows.append(row)
            print(summary_line(name, row, reference), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                  "epochs": args.epochs, "modes": args.modes.split(","), "rows": rows}
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
