"""What one trial reserves and how many trials fit side by side (no Ray: plain arithmetic)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tl.errors import TLError

EXECUTORS = ("auto", "train", "tune")  # see tl.sweep.executors
DRIVER_CPUS = 0.1  # the Tune function of a `train` trial, which only waits for its workers


@dataclass(frozen=True)
class TrialResources:
    """What one trial reserves: its Tune driver function (executor `train`; none for `tune`) plus
    its workers."""
    workers: int
    cpus_per_worker: float
    gpus_per_worker: float
    driver_cpus: float
    max_concurrent: int
    driver_resource: str | None = None  # custom resource (on the head) each driver function takes one of


def is_autoscaling(cluster: dict, driver_resource: str | None) -> bool:
    """Whether the cluster's head declares the trial drivers' resource (cluster/*.yaml)."""
    return bool(driver_resource) and cluster.get(driver_resource, 0) >= 1


def check_executor(name: str, workers: int) -> None:
    """Raise TLError unless `name` is an executor that can run trials of `workers` workers."""
    if name not in EXECUTORS:
        raise TLError(f"--executor {name!r}: give one of {', '.join(EXECUTORS)}")
    if name == "tune" and workers != 1:
        raise TLError(f"--executor tune runs 1 worker per trial, got --workers-per-trial {workers}")


def choose_executor(name: str, workers: int, autoscaling: bool) -> str:
    """The executor `name` ("auto", "train" or "tune") stands for: auto is `tune` for 1-worker
    trials on a fixed cluster, else `train` (an autoscaler needs the workers' requests)."""
    check_executor(name, workers)
    if name == "auto":
        return "tune" if workers == 1 and not autoscaling else "train"
    return name


def plan_resources(cluster: dict, workers: int, gpus_per_worker: float = 0.0,
                   driver_cpus: float = DRIVER_CPUS, driver_resource: str | None = None) -> TrialResources:
    """Per-trial resources and the number of trials that fit side by side in `cluster`.

    On an autoscaling cluster (one whose head declares `driver_resource`, see cluster/), worker
    nodes start from zero, so what is there now says nothing: each trial's driver takes one unit
    of `driver_resource` on the head, workers get one CPU each, and the autoscaler adds the nodes.
    Otherwise a worker gets one CPU when the cluster has room, else an equal share of what is left
    after the driver function, so a 2-CPU machine runs a 2-worker trial instead of deadlocking.
    """
    if workers < 1:
        raise TLError(f"--workers-per-trial must be >= 1, got {workers}")
    if is_autoscaling(cluster, driver_resource):
        concurrent = int(cluster[driver_resource])
        return TrialResources(workers, 1.0, float(gpus_per_worker), driver_cpus, concurrent, driver_resource)
    return _plan_fixed(cluster, workers, gpus_per_worker, driver_cpus)


def _plan_fixed(cluster: dict, workers: int, gpus_per_worker: float, driver_cpus: float) -> TrialResources:
    cpus = float(cluster.get("CPU", 0))
    gpus = float(cluster.get("GPU", 0))
    if cpus <= driver_cpus or cpus <= 0:
        raise TLError(f"the Ray cluster has {cluster.get('CPU', 0)} CPUs: too few to run a trial")
    if gpus_per_worker and gpus < workers * gpus_per_worker:
        raise TLError(f"a trial needs {workers * gpus_per_worker} GPUs, the Ray cluster has {gpus}")
    cpus_per_worker = min(1.0, (cpus - driver_cpus) / workers)
    per_trial = driver_cpus + workers * cpus_per_worker
    concurrent = max(1, math.floor(cpus / per_trial + 1e-9))
    if gpus_per_worker:
        concurrent = min(concurrent, math.floor(gpus / (workers * gpus_per_worker) + 1e-9))
    return TrialResources(workers, cpus_per_worker, float(gpus_per_worker), driver_cpus, concurrent)
