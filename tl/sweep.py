"""The transfer sweep the scripts in sweeps/ declare: stage 1 a base model on the source data,
stage 2 one Optuna study per target fraction, seed and mode (transfer, scratch), then the report.

MLflow layout (tl.tracking): experiment `spec.name`; sweep run -> base run, and sweep run ->
fraction run -> trial runs (both modes, tagged `mode`). The best trial (on validation macro-F1) of
each fraction and mode is registered as `<experiment>-<mode>-<fraction>` with alias `champion`.

Resume: the driver keeps `<out>/sweep_state.json` (run ids, finished studies). With --resume,
finished studies are skipped, an unfinished one is restored from its Tune experiment directory
(finished trials are not rerun) and its trials' MLflow runs are found by Tune trial id.
A study that --time-budget cut short is listed in the summary's `skipped_studies`, gets no
champion, and is run again from its start by --resume (see Sweep._attempt_name).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from tl import tracking
from tl.atomic import write_file
from tl.config import Config
from tl.errors import TLError
from tl.search import MODES

STATE_FILE = "sweep_state.json"
DEADLINE_FILE = "deadline"  # --time-budget for the Tune studies (tl.deadline)


@dataclass
class SweepSpec:
    name: str  # the MLflow experiment
    source_data: str
    target_data: str
    out: str
    fractions: tuple[float, ...] = (0.05, 0.1, 0.25, 0.3, 0.5, 1.0)
    seeds: int = 1
    num_samples: int = 20
    overrides: dict = field(default_factory=dict)  # fixed settings of every trial
    base_overrides: dict = field(default_factory=dict)  # settings of the base model only
    workers_per_trial: int = 2
    gpus_per_worker: float = 0.0
    storage: str | None = None  # Tune storage; default <out>/tune
    tracking_uri: str | None = None  # default sqlite:///<out>/mlflow.db
    address: str | None = None
    num_cpus: float | None = None  # logical CPUs of a locally started Ray (default: the machine's)
    time_budget: float | None = None  # seconds
    resume: bool = False
    base_run_id: str | None = None  # reuse a base model logged by an earlier sweep
    trial_max_failures: int = 1  # Train restarts of a trial's workers after a lost worker
    modes: tuple[str, ...] = MODES


def run_sweep(spec: SweepSpec) -> dict:
    """Run the whole sweep; returns the report's summary. Bad input fails before any trial."""
    import ray

    start = time.monotonic()
    out = os.path.abspath(spec.out)
    tracking_uri = spec.tracking_uri or f"sqlite:///{os.path.join(out, 'mlflow.db')}"
    storage = spec.storage or os.path.join(out, "tune")
    check_fractions(spec.fractions)
    tracking.check_tracking_uri(tracking_uri)
    tracking.check_storage(storage)
    source, target = load_datasets(spec)
    hashes = {"source": _hash(spec.source_data), "target": _hash(spec.target_data)}
    config = Config().override(spec.overrides)

    if not ray.is_initialized():
        start_ray(spec.address, **({"num_cpus": spec.num_cpus} if spec.num_cpus and not spec.address else {}))
    from tl.deadline import deadline_passed, write_deadline
    from tl.search import plan_resources

    resources = plan_resources(ray.cluster_resources(), spec.workers_per_trial, spec.gpus_per_worker,
                               driver_resource=os.environ.get("TL_DRIVER_RESOURCE"))
    print(f"tl sweep: {resources.max_concurrent} trial(s) at a time, {resources.workers} worker(s) "
          f"each with {resources.cpus_per_worker:g} CPU and {resources.gpus_per_worker:g} GPU")
    sweep = Sweep(spec, out, tracking_uri, storage, hashes, resources)
    # The one deadline: the sweep's checks between studies and the Tune studies' stopper read it.
    write_deadline(sweep.deadline_file,
                   spec.time_budget - (time.monotonic() - start) if spec.time_budget else None)
    sweep.start(config, source, target)
    base_ref = None  # stage 1 only when some study transfers
    if "transfer" in spec.modes:
        base_ref = ray.put(sweep.base_model(ray.put(source)))
    else:
        sweep.state["base_run_id"] = "none"
    target_ref = ray.put(target)
    for fraction in spec.fractions:
        for seed in range(spec.seeds):
            for mode in spec.modes:
                if deadline_passed(sweep.deadline_file):
                    sweep.skipped.append(f"{fraction:g}/{mode}/{seed}")
                    continue
                sweep.study(fraction, mode, seed, target_ref, base_ref if mode == "transfer" else None)
    return sweep.finish()


def start_ray(address: str | None = None, **init_options) -> None:
    """Connect to the cluster at `address`, or start a local one.

    A local start pins the GCS port and gives every Ray worker RAY_ADDRESS: Train's placement-group
    cleaner otherwise fails with "multiple active Ray instances" when other Ray instances run on
    the same machine, and the placement groups of stopped trials are never released.
    """
    import socket

    import ray

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


def check_fractions(fractions) -> None:
    if not fractions:
        raise TLError("--fractions: give at least one target fraction")
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise TLError(f"--fractions: {fraction!r} is not in (0, 1]")


def load_datasets(spec: SweepSpec):
    from tl.data import read_dataset

    source, target = read_dataset(spec.source_data), read_dataset(spec.target_data)
    for label, dataset, path in (("source", source, spec.source_data), ("target", target, spec.target_data)):
        if len(dataset.classes) < 2:
            raise TLError(f"{path}: the {label} data set has {len(dataset.classes)} class(es); need 2 or more")
    return source, target


def _hash(path: str) -> str:
    from tl.data import content_hash

    return content_hash(path)


def dataset_tag(path: str, digest: str) -> str:
    """A data set's name in tags: its directory name and the start of its content hash."""
    return f"{os.path.basename(os.path.normpath(path))}@{digest[:12]}"


class Sweep:
    """The driver's MLflow and resume bookkeeping for one sweep."""

    def __init__(self, spec, out, tracking_uri, storage, hashes, resources):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.spec, self.out, self.tracking_uri, self.storage = spec, out, tracking_uri, storage
        self.resources, self.hashes = resources, hashes
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = tracking.experiment_id(self.client, spec.name)
        self.state_path = os.path.join(out, STATE_FILE)
        self.deadline_file = os.path.join(out, DEADLINE_FILE)
        self.state = self._load_state()
        self.skipped: list[str] = []
        self.lineage = tracking.lineage_tags(hashes)
        self.common_tags = {**self.lineage,
                            "source_dataset": dataset_tag(spec.source_data, hashes["source"]),
                            "target_dataset": dataset_tag(spec.target_data, hashes["target"])}

    def _load_state(self) -> dict:
        if self.spec.resume and os.path.exists(self.state_path):
            with open(self.state_path) as stream:
                return json.load(stream)
        return {"fraction_runs": {}, "done": []}

    def _save_state(self) -> None:
        write_file(self.state_path, lambda stream: json.dump(self.state, stream, indent=2), "w")

    def start(self, config: Config, source, target) -> None:
        """Open (or, on resume, reopen) the sweep run with the sweep's settings and lineage."""
        if "sweep_run_id" in self.state:
            self.client.update_run(self.state["sweep_run_id"], status="RUNNING")
            return
        run_id = tracking.child_run(self.client, self.experiment_id, None, f"sweep-{self.spec.name}",
                                    {**self.common_tags, tracking.ROLE: "sweep"})
        spec = self.spec
        tracking.log_params(self.client, run_id, {
            **config.flat(), "sweep.fractions": ",".join(f"{f:g}" for f in spec.fractions),
            "sweep.seeds": spec.seeds, "sweep.num_samples": spec.num_samples,
            "sweep.workers_per_trial": spec.workers_per_trial, "sweep.gpus_per_worker": spec.gpus_per_worker,
            "sweep.source_data": spec.source_data, "sweep.target_data": spec.target_data,
            "sweep.n_source_objects": len(source.objects), "sweep.n_target_objects": len(target.objects)})
        self.state["sweep_run_id"] = run_id
        self.state["run_token"] = run_id[:8]  # makes Tune experiment names unique per sweep
        self._save_state()

    def base_model(self, source_ref) -> bytes:
        """Stage 1: the base model's MODEL_DIR archive (trained now, or from an earlier run)."""
        from tl.worker import pack_directory

        base_run_id = self.spec.base_run_id or self.state.get("base_run_id")
        if base_run_id is None:
            base_run_id = self._train_base(source_ref)
        self.state["base_run_id"] = base_run_id
        self._save_state()
        import mlflow

        try:
            path = mlflow.artifacts.download_artifacts(run_id=base_run_id, artifact_path="model_dir",
                                                       tracking_uri=self.tracking_uri)
        except Exception as error:
            raise TLError(f"base run {base_run_id}: no model_dir artifact ({str(error).splitlines()[0]})") from None
        return pack_directory(path)

    def _train_base(self, source_ref) -> str:
        from tl.search import run_study
        from tl.trial_logger import TrialLogger

        overrides = {**self.spec.overrides, **self.spec.base_overrides}
        tags = {**self.lineage, tracking.ROLE: "base", "mode": "scratch", "base_run_id": "none",
                "source_dataset": self.common_tags["source_dataset"],
                "target_dataset": self.common_tags["source_dataset"]}
        logger = TrialLogger(self.tracking_uri, self.experiment_id, self.state["sweep_run_id"], "base",
                             tags, overrides, self.storage)
        shared = self._shared(overrides, source_ref, None)
        parent = self.state["sweep_run_id"]
        run_study(name=self._attempt_name("base", parent, f"{self.state['run_token']}-base"),
                  storage=self.storage, shared=shared, mode=None, config=Config().override(overrides),
                  num_samples=1, resources=self.resources, seed=0, logger=logger,
                  deadline_file=self.deadline_file, resume=self.spec.resume)
        if not self._check_finished("base", parent, 1):
            self._cut_short("base", parent)
            raise TLError("stage 1: --time-budget ran out while training the base model "
                          "(--resume trains it again)")
        found = [run for run in self._stage_runs("base", parent)
                 if run.data.tags.get(tracking.OUTCOME) == "completed"]
        if not found:
            raise TLError("stage 1: the base model's training did not complete (see the MLflow base run)")
        return found[-1].info.run_id

    def _stage_runs(self, stage: str, parent: str) -> list:
        return tracking.find_runs(self.client, self.experiment_id,
                                  {tracking.STAGE: stage, "mlflow.parentRunId": parent})

    def _check_finished(self, stage: str, parent: str, expected: int) -> bool:
        """Whether every trial of `stage` ended; raise if it stopped early without the time budget
        running out (Ctrl-C: Tune stops and returns).

        Counted from MLflow, where every ended trial has an outcome, not from Tune's experiment
        state (whose last save can fail when interrupted)."""
        from tl.deadline import deadline_passed

        ended = [run for run in self._stage_runs(stage, parent) if tracking.OUTCOME in run.data.tags]
        if len(ended) >= expected:
            return True
        if not deadline_passed(self.deadline_file):
            raise TLError(f"sweep interrupted during {stage} ({len(ended)} of {expected} trials ended); "
                          "rerun the same command with --resume")
        return False

    def _cut_short(self, stage: str, parent: str) -> None:
        """Record that --time-budget stopped `stage`: the next run starts it again (_attempt_name).

        Its trials stopped mid-run stay RUNNING in MLflow (Tune reports no end for them); they are
        marked KILLED so the UI shows no live run, and --resume deletes them."""
        for run in self._stage_runs(stage, parent):
            if run.info.status == "RUNNING":
                self.client.set_tag(run.info.run_id, "tl.note", "stopped by --time-budget")
                self.client.set_terminated(run.info.run_id, "KILLED")
        attempts = self.state.setdefault("attempts", {})
        attempts[stage] = attempts.get(stage, 0) + 1
        self.state.setdefault("restart", []).append(stage)
        self._save_state()
        self.skipped.append(stage)
        print(f"tl sweep: {stage} stopped by --time-budget before its trials ended")

    def _attempt_name(self, stage: str, parent: str, name: str) -> str:
        """The Tune experiment name of `stage`'s current attempt.

        Tune marks the trials of a study stopped at the deadline as terminated, so restoring that
        study would run nothing. A study cut short therefore starts again under a new name, and
        the MLflow runs of its partial trials are deleted first (once; a restart interrupted by
        Ctrl-C is restored as usual)."""
        if stage in self.state.get("restart", []):
            for run in self._stage_runs(stage, parent):
                self.client.delete_run(run.info.run_id)
            self.state["restart"].remove(stage)
            self._save_state()
        attempt = self.state.get("attempts", {}).get(stage, 0)
        return name if attempt == 0 else f"{name}-r{attempt}"

    def _shared(self, overrides, target_ref, base_ref) -> dict:
        return {"overrides": overrides, "target": target_ref, "base_model": base_ref,
                "storage": self.storage, "workers": self.resources.workers,
                "cpus_per_worker": self.resources.cpus_per_worker,
                "gpus_per_worker": self.resources.gpus_per_worker,
                "max_failures": self.spec.trial_max_failures}

    def fraction_run(self, fraction: float) -> str:
        key = f"{fraction:g}"
        if key not in self.state["fraction_runs"]:
            run_id = tracking.child_run(
                self.client, self.experiment_id, self.state["sweep_run_id"], f"fraction-{key}",
                {**self.common_tags, tracking.ROLE: "fraction", "base_run_id": self.state["base_run_id"],
                 "data.target_fraction": key})
            tracking.log_params(self.client, run_id, {"data.target_fraction": fraction})
            self.state["fraction_runs"][key] = run_id
            self._save_state()
        return self.state["fraction_runs"][key]

    def study(self, fraction, mode, seed, target_ref, base_ref) -> None:
        """Stage 2: one Optuna study of `mode` at `fraction` with `seed`, then its champion."""
        from tl.search import run_study
        from tl.trial_logger import TrialLogger

        stage = f"{fraction:g}/{mode}/{seed}"
        if stage in self.state["done"]:
            print(f"tl sweep: {stage} already finished, skipped")
            return
        parent = self.fraction_run(fraction)
        overrides = {**self.spec.overrides, "data.target_fraction": fraction, "data.seed": seed,
                     "train.seed": seed}
        tags = {**self.common_tags, tracking.ROLE: "trial", "mode": mode, "tl.seed": str(seed),
                "base_run_id": self.state["base_run_id"] if mode == "transfer" else "none"}
        logger = TrialLogger(self.tracking_uri, self.experiment_id, parent, stage, tags, overrides,
                             self.storage)
        config = Config().override(overrides)
        name = self._attempt_name(stage, parent, f"{self.state['run_token']}-f{fraction:g}-{mode}-s{seed}")
        run_study(name=name, storage=self.storage, shared=self._shared(overrides, target_ref, base_ref),
                  mode=mode, config=config, num_samples=self.spec.num_samples,
                  resources=self.resources, seed=seed, logger=logger,
                  deadline_file=self.deadline_file, resume=self.spec.resume)
        if not self._check_finished(stage, parent, self.spec.num_samples):
            self._cut_short(stage, parent)  # not done and no champion: --resume runs it again
            return
        from tl.sweep_results import log_importances, register_champion

        log_importances(self.client, parent, stage, mode, config, self.experiment_id)
        register_champion(self.client, self.experiment_id, self.spec.name, stage, fraction, mode, parent)
        self.state["done"].append(stage)
        self._save_state()

    def finish(self) -> dict:
        """Write the report, log it to the sweep run, close the sweep run; return the summary."""
        from tl.report import summarize

        report_dir = os.path.join(self.out, "report")
        summary = summarize(self.tracking_uri, self.spec.name, report_dir,
                            sweep_run_id=self.state["sweep_run_id"],
                            extra={"skipped_studies": self.skipped})
        self.client.set_terminated(self.state["sweep_run_id"], "FINISHED")
        print(f"tl sweep: report in {report_dir}; MLflow: mlflow ui --backend-store-uri {self.tracking_uri}")
        return summary
