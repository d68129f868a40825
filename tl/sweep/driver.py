"""The transfer sweep the scripts in sweeps/ declare: check everything, start Ray, stage 1 a base
model on the source data, stage 2 one Optuna study per target fraction, seed and mode (transfer,
scratch), then the report (tl.sweep.stages, tl.sweep.report).

Every flag and setting is checked before any data is simulated or Ray starts. Resume, the time
budget and the MLflow layout: tl.sweep.runs.
"""

from __future__ import annotations

import os
import socket
import time

import ray
from mlflow.tracking import MlflowClient

from tl.config import Config
from tl.data import content_hash, read_dataset, write_dataset
from tl.errors import TLError
from tl.simulate import simulate
from tl.sweep import tracking
from tl.sweep.console import quiet_ray, summary_lines
from tl.sweep.deadline import deadline_passed, write_deadline
from tl.sweep.faults import fault_point
from tl.sweep.report import summarize
from tl.sweep.resources import DRIVER_CPUS, check_executor, choose_executor, is_autoscaling, plan_resources
from tl.sweep.runs import SweepInterrupted, SweepRuns, dataset_tag
from tl.sweep.spec import Simulation, SweepSpec
from tl.sweep.storage import StorageFault, fault_message, storage_fault
from tl.sweep.stages import SweepContext, base_model, study_stage, zero_shot_stage
from tl.sweep.study import MODES, Study


def run_sweep(spec: SweepSpec) -> dict:
    """Run the whole sweep; returns the report's summary. Bad input fails before any trial."""
    start = time.monotonic()
    out = os.path.abspath(spec.out)
    tracking_uri = spec.tracking_uri or f"sqlite:///{os.path.join(out, 'mlflow.db')}"
    storage = spec.storage or os.path.join(out, "tune")
    check_spec(spec)
    if not spec.verbose:
        print(f"tl sweep: Ray, Tune and Train logs go to {quiet_ray(out)} (--verbose shows them here)")
    tracking.check_tracking_uri(tracking_uri)
    tracking.check_storage(storage)
    source_path = materialise(spec.source_data, spec.source_simulation)
    target_path = materialise(spec.target_data, spec.target_simulation)
    source, target = load_datasets(source_path, target_path)
    hashes = {"source": content_hash(source_path), "target": content_hash(target_path)}

    if not ray.is_initialized():
        options = {"num_cpus": spec.num_cpus} if spec.num_cpus and not spec.address else {}
        start_ray(spec.address, **options, **({} if spec.verbose else {"log_to_driver": False}))
    cluster, driver_resource = ray.cluster_resources(), os.environ.get("TL_DRIVER_RESOURCE")
    executor = choose_executor(spec.executor, spec.workers_per_trial, is_autoscaling(cluster, driver_resource))
    resources = plan_resources(cluster, spec.workers_per_trial, spec.gpus_per_worker,
                               driver_cpus=0.0 if executor == "tune" else DRIVER_CPUS, driver_resource=driver_resource)
    print(f"tl sweep: {resources.max_concurrent} trial(s) at a time, {resources.workers} worker(s) each with "
          f"{resources.cpus_per_worker:g} CPU and {resources.gpus_per_worker:g} GPU, executor {executor}")
    lineage = tracking.lineage_tags(hashes)
    runs = SweepRuns.open(MlflowClient(tracking_uri), spec.name, out, spec.resume, lineage,
                          {"source_dataset": dataset_tag(source_path, hashes["source"]),
                           "target_dataset": dataset_tag(target_path, hashes["target"])})
    # The one deadline: the checks between studies and the Tune studies' stopper read it.
    write_deadline(runs.deadline_file, spec.time_budget - (time.monotonic() - start) if spec.time_budget else None)
    runs.start(spec.name, sweep_params(spec, source, target), spec.description)
    sweep = SweepContext(spec, runs, tracking_uri, storage, resources, executor, hashes)
    try:
        run_stages(sweep, source, target)
    except BaseException as error:  # the runs say how the sweep ended; --resume reopens them
        close_after(runs, error, [out, storage, tracking_uri])
        raise
    return finish(sweep)


def close_after(runs: SweepRuns, error: BaseException, places: list[str]) -> None:
    """Close the sweep's runs as KILLED or FAILED after `error`; a storage fault becomes a
    StorageFault naming the places (a full store cannot record FAILED either: its runs stay
    RUNNING, and --resume reopens them as it does after a killed driver)."""
    reason = storage_fault(error)
    try:
        runs.close("KILLED" if isinstance(error, (KeyboardInterrupt, SweepInterrupted)) else "FAILED")
    except Exception as closing:
        reason = reason or storage_fault(closing)
        if reason is None:
            raise
    if reason is not None:
        raise StorageFault(fault_message(reason, [place for place in places if not place.startswith("http")])) from None


def run_stages(sweep: SweepContext, source, target) -> None:
    """Stage 1 (the base model and its zero-shot points), then stage 2 (every study)."""
    spec = sweep.spec
    base = base_model(sweep, ray.put(source)) if "transfer" in spec.modes else None  # stage 1
    base_ref = ray.put(base.archive) if base else None
    target_ref = ray.put(target)
    folds = range(spec.folds) if spec.folds else (None,)
    for fold in folds if base else ():
        zero_shot_stage(sweep, base, target, fold)
    for fraction in spec.fractions:
        for seed in range(spec.seeds):
            for fold in folds:
                for mode in spec.modes:
                    run_or_skip(sweep, Study(fraction, mode, seed, fold), target_ref, base_ref, base)


def run_or_skip(sweep: SweepContext, study: Study, target_ref, base_ref, base) -> None:
    """Run `study` unless the time budget is spent (then it is listed as skipped)."""
    if deadline_passed(sweep.runs.deadline_file):
        sweep.runs.skipped.append(study.key)
        return
    transfer = study.mode == "transfer"
    study_stage(sweep, study, target_ref, base_ref if transfer else None, base if transfer else None)


def check_spec(spec: SweepSpec) -> None:
    """Every flag and setting of `spec`, before any work: a one-line TLError naming the flag."""
    if not spec.fractions:
        raise TLError("--fractions: give at least one target fraction")
    for fraction in spec.fractions:
        if not 0 < fraction <= 1:
            raise TLError(f"--fractions: {fraction!r} is not in (0, 1]")
    if len(set(spec.fractions)) != len(spec.fractions):
        raise TLError(f"--fractions: {','.join(f'{f:g}' for f in spec.fractions)} repeats a fraction")
    if not spec.modes or any(mode not in MODES for mode in spec.modes):
        raise TLError(f"--modes {','.join(spec.modes)!r}: give one or both of {', '.join(MODES)}")
    check_executor(spec.executor, spec.workers_per_trial)
    if spec.folds == 1 or spec.folds < 0:
        raise TLError(f"--folds must be 0 (the target's own split) or >= 2, got {spec.folds}")
    for flag, value, least in (("--seeds", spec.seeds, 1), ("--num-samples", spec.num_samples, 1),
                               ("--workers-per-trial", spec.workers_per_trial, 1),
                               ("--max-failures", spec.trial_max_failures, 0)):
        if value < least:
            raise TLError(f"{flag} must be >= {least}, got {value}")
    if spec.gpus_per_worker < 0:
        raise TLError(f"--gpus-per-worker must be >= 0, got {spec.gpus_per_worker}")
    if spec.time_budget is not None and not spec.time_budget > 0:
        raise TLError(f"--time-budget must be > 0 seconds, got {spec.time_budget}")
    for flag, overrides in (("--set", spec.overrides), ("--set (base model)", {**spec.overrides, **spec.base_overrides})):
        try:
            Config().override(overrides)
        except TLError as error:
            raise TLError(f"{flag}: {error}") from None


def materialise(path: str, simulation: Simulation | None) -> str:
    """`path`, simulated first (with `simulation`) when it holds no data set yet."""
    if simulation is None or os.path.exists(os.path.join(path, "dataset.json")):
        return path
    print(f"tl sweep: simulating {simulation.n} {simulation.survey} objects into {path}")
    dataset = simulate(simulation.survey, simulation.n, simulation.seed, bts_like=simulation.bts_like,
                       alerts_only=simulation.alerts_only)
    write_dataset(dataset, path, **dataset.meta)
    return path


def load_datasets(source_path: str, target_path: str):
    source, target = read_dataset(source_path), read_dataset(target_path)
    for label, dataset, path in (("source", source, source_path), ("target", target, target_path)):
        if len(dataset.classes) < 2:
            raise TLError(f"{path}: the {label} data set has {len(dataset.classes)} class(es); need 2 or more")
    return source, target


def sweep_params(spec: SweepSpec, source, target) -> dict:
    """The sweep run's params: every fixed setting and the sweep's own flags."""
    return {**Config().override(spec.overrides).flat(), "sweep.fractions": ",".join(f"{f:g}" for f in spec.fractions),
            "sweep.seeds": spec.seeds, "sweep.folds": spec.folds, "sweep.num_samples": spec.num_samples,
            "sweep.executor": spec.executor,
            "sweep.workers_per_trial": spec.workers_per_trial, "sweep.gpus_per_worker": spec.gpus_per_worker,
            "sweep.source_data": spec.source_data, "sweep.target_data": spec.target_data,
            "sweep.n_source_objects": len(source.objects), "sweep.n_target_objects": len(target.objects)}


def finish(sweep: SweepContext) -> dict:
    """Write the report, log it to the sweep run, close the sweep run; return the summary."""
    runs = sweep.runs
    report_dir = os.path.join(runs.out, "report")
    summary = summarize(runs.client, sweep.spec.name, report_dir, sweep_run_id=runs.state.sweep_run_id,
                        extra={"skipped_studies": runs.skipped})
    fault_point("report")
    runs.close()
    for line in summary_lines(summary):
        print(line)
    print(f"tl sweep: report in {report_dir}, data-efficiency figure {os.path.join(report_dir, 'data_efficiency.png')}")
    print(f"tl sweep: open the runs with: mlflow ui --backend-store-uri {sweep.tracking_uri}")
    print(f"tl sweep: then http://127.0.0.1:5000/#/experiments/{runs.experiment_id}{tracking.EXPERIMENT_VIEW}")
    return summary


def start_ray(address: str | None = None, **init_options) -> None:
    """Connect to the cluster at `address`, or start a local one.

    A local start pins the GCS port and gives every Ray worker RAY_ADDRESS: Train's placement-group
    cleaner otherwise fails with "multiple active Ray instances" when other Ray instances run on
    the same machine, and the placement groups of stopped trials are never released.
    """
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address, **init_options)
        return
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    os.environ["RAY_GCS_SERVER_PORT"] = str(port)
    try:
        env = {"RAY_ADDRESS": f"{ray.util.get_node_ip_address()}:{port}"}
        runtime_env = dict(init_options.pop("runtime_env", None) or {})
        runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **env}
        ray.init(runtime_env=runtime_env, **init_options)
    finally:
        del os.environ["RAY_GCS_SERVER_PORT"]
