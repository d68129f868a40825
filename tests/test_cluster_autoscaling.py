"""Autoscaling and multi-node sweeps for real, on this machine (slow: these start Ray).

1. Ray's fake multi-node autoscaler (`fake_multinode` provider) with the worker node types of
   cluster/cluster.yaml (same names and GPU counts, one CPU per GPU) and its driver-only
   `tl_driver` head resource: a Train-in-Tune sweep whose DDP workers need more GPUs than the
   head has makes the autoscaler add GPU nodes; the trials complete, their drivers on the head,
   their workers (which log the MLflow runs) on the new nodes; the nodes go after the idle timeout.
2. A multi-node `ray.cluster_utils.Cluster` whose head has no CPU, so every trial must run on the
   other nodes: the project's own sweep script (sweeps/ztf_to_lsst.py --smoke-test) run with
   --address, its trials spread over both worker nodes, each logged to MLflow.

Every cluster here uses its own temp dir and free ports, and is stopped by the ids of the
processes it started, never with `ray stop`: other Ray sessions on the machine are left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from mlflow_server import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DRIVER_RESOURCE = "tl_driver"
IDLE_TIMEOUT_MINUTES = 0.1  # cluster.yaml says 10; 6 s keeps the test short
SMALL_OBJECT_STORE = 100 * 1024 * 1024


# --- a Train-in-Tune sweep: each trial's DDP workers all-reduce and log one MLflow run ------


def train_loop(config: dict) -> None:
    """Per Train worker: a gloo all-reduce across the trial's workers, one MLflow run from rank 0."""
    import mlflow
    import ray
    import torch
    import torch.distributed as dist

    context = ray.train.get_context()
    node = ray.get_runtime_context().get_node_id()
    world = torch.ones(1)
    dist.all_reduce(world)  # (1,): the number of workers, summed over the process group
    nodes = [None] * context.get_world_size()
    dist.all_gather_object(nodes, node)
    if context.get_world_rank() == 0:
        mlflow.set_tracking_uri(config["tracking_uri"])
        with mlflow.start_run(experiment_id=config["experiment_id"], run_name=config["trial_id"]):
            mlflow.set_tags({"trial_id": config["trial_id"], "ray_node_id": node})
            mlflow.log_metric("world_size", float(world.item()))
    ray.train.report({"world_size": float(world.item()), "worker_nodes": ",".join(nodes),
                      "driver_node": config["driver_node"]})


def trial_driver(config: dict) -> None:
    """A Tune function trainable that fits one TorchTrainer (the pattern of tl.sweep.executors.train_trial)."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    trial_id = ray.tune.get_context().get_trial_id()
    per_worker = {"CPU": 1, **({"GPU": 1} if config["use_gpu"] else {})}
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={**config, "trial_id": trial_id,
                           "driver_node": ray.get_runtime_context().get_node_id()},
        scaling_config=ScalingConfig(num_workers=config["workers"], use_gpu=config["use_gpu"],
                                     resources_per_worker=per_worker),
        torch_config=TorchConfig(backend="gloo"),
        run_config=RunConfig(name=f"train-{trial_id}", storage_path=config["storage"],
                             callbacks=[TuneReportCallback()]),
    )
    trainer.fit()


def run_small_sweep(out: Path, trials: int, workers: int, use_gpu: bool, driver: dict):
    """Fit `trials` concurrent trials of `workers` workers each; returns (ResultGrid, MLflow runs)."""
    import mlflow
    from ray import cloudpickle, tune

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    tracking_uri = f"sqlite:///{out / 'mlflow.db'}"
    experiment_id = mlflow.MlflowClient(tracking_uri).create_experiment("cluster-test")
    constants = {"storage": str(out / "tune"), "tracking_uri": tracking_uri,
                 "experiment_id": experiment_id, "workers": workers, "use_gpu": use_gpu}
    tuner = tune.Tuner(
        tune.with_resources(trial_driver, tune.PlacementGroupFactory([driver])),
        param_space={**constants, "seed": tune.grid_search(list(range(trials)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=trials),
        run_config=tune.RunConfig(name="small-sweep", storage_path=str(out / "tune")),
    )
    results = tuner.fit()
    runs = mlflow.MlflowClient(tracking_uri).search_runs([experiment_id])
    return results, runs


def check_sweep(results, runs, trials: int, workers: int) -> tuple[set, set]:
    """Every trial finished with all its workers; returns (driver nodes, worker nodes)."""
    assert results.num_errors == 0, [r.error for r in results if r.error]
    assert len(results) == trials
    drivers, worker_nodes = set(), set()
    for result in results:
        assert result.metrics["world_size"] == workers
        drivers.add(result.metrics["driver_node"])
        worker_nodes.update(result.metrics["worker_nodes"].split(","))
    assert len(runs) == trials
    assert {run.data.tags["ray_node_id"] for run in runs} <= worker_nodes
    return drivers, worker_nodes


# --- clusters -------------------------------------------------------------------------------


def short_temp_dir() -> str:
    return tempfile.mkdtemp(prefix="tl", dir="/tmp")  # Ray's socket paths must stay < 108 chars


def fake_autoscaler_config(cluster_yaml: Path, gcs_address: str) -> dict:
    """A fake_multinode config with cluster.yaml's worker types: same names and GPUs, 1 CPU per
    GPU (1 for CPU-only types), at most one node of each and two in all."""
    real = yaml.safe_load(cluster_yaml.read_text())
    head_type = real["head_node_type"]
    drivers = real["available_node_types"][head_type]["resources"][DRIVER_RESOURCE]
    types = {"ray.head.default": {"resources": {"CPU": 1, DRIVER_RESOURCE: drivers},
                                  "node_config": {}, "max_workers": 0}}
    for name, node_type in real["available_node_types"].items():
        if name != head_type:
            gpus = node_type["resources"].get("GPU", 0)
            resources = {"CPU": max(gpus, 1), "object_store_memory": SMALL_OBJECT_STORE}
            types[name] = {"resources": {**resources, **({"GPU": gpus} if gpus else {})},
                           "node_config": {}, "min_workers": 0, "max_workers": 1}
    empty = ["initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
             "head_start_ray_commands", "worker_start_ray_commands", "cluster_synced_files",
             "rsync_exclude", "rsync_filter"]
    return {
        "cluster_name": "tl-fake", "max_workers": 2, "upscaling_speed": real["upscaling_speed"],
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs_address},
        "available_node_types": types, "head_node_type": "ray.head.default", "auth": {}, "docker": {},
        "file_mounts": {}, "file_mounts_sync_continuously": False, **{key: [] for key in empty},
    }


def stop_process_tree(process: subprocess.Popen) -> None:
    """Stop `process` and every process it started, by pid: SIGTERM to all, SIGKILL to stragglers."""
    import psutil

    try:
        parent = psutil.Process(process.pid)
        tree = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        try:
            member.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=5)
    for member in alive:
        member.kill()
    process.wait(timeout=15)


@pytest.fixture
def ray_env(monkeypatch):
    """Token auth off (the processes share one machine) and Ray's temp files in our own dir. The
    slow tests' shared local Ray (ray_fixture.py), when an earlier test started it, is shut down
    for these clusters and started again afterwards, as that fixture starts it."""
    import ray

    from tl.sweep.driver import start_ray

    shared = ray.is_initialized()
    if shared:
        ray.shutdown()
    temp_dir = short_temp_dir()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)  # ray_current_cluster goes here, not /tmp/ray
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield temp_dir
    shutil.rmtree(temp_dir, ignore_errors=True)
    if shared:
        if ray.is_initialized():
            ray.shutdown()
        monkeypatch.undo()
        start_ray(num_cpus=4)


def start_fake_head(temp_dir: str) -> tuple[subprocess.Popen, str]:
    """`ray start --head --block` with the fake autoscaler, on free ports; returns (process, address)."""
    import ray

    address = f"{ray._private.services.get_node_ip_address()}:{free_port()}"
    config = fake_autoscaler_config(REPO / "cluster" / "cluster.yaml", address)
    config_path = Path(temp_dir) / "autoscaler.json"
    config_path.write_text(json.dumps(config))
    head = config["available_node_types"]["ray.head.default"]["resources"]
    command = [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head", "--block",
               f"--port={address.rsplit(':', 1)[1]}", f"--dashboard-port={free_port()}",
               f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
               f"--temp-dir={temp_dir}/ray", f"--autoscaling-config={config_path}",
               f"--num-cpus={head['CPU']}", "--num-gpus=0", f"--object-store-memory={SMALL_OBJECT_STORE}",
               "--resources=" + json.dumps({DRIVER_RESOURCE: head[DRIVER_RESOURCE]})]
    env = dict(os.environ, RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1")
    with open(Path(temp_dir) / "head.log", "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process, address


@pytest.fixture
def fake_autoscaling_cluster(ray_env):
    """The head of a fake autoscaling cluster, connected to; yields its address."""
    import ray

    process, address = start_fake_head(ray_env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                ray.init(address=address)
                break
            except (ConnectionError, RuntimeError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((Path(ray_env) / "head.log").read_text()[-2000:]) from None
                time.sleep(1)
        yield address
    finally:
        ray.shutdown()
        stop_process_tree(process)


class AutoscalerWatch:
    """Records, once a second, the node types the autoscaler reports active (from the GCS)."""

    def __init__(self):
        import threading

        self.seen: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
        from ray.experimental.internal_kv import _internal_kv_get

        while not self._stop.wait(1.0):
            status = _internal_kv_get(DEBUG_AUTOSCALING_STATUS)
            if status:
                self.seen.append(json.loads(status).get("autoscaler_report", {}).get("active_nodes", {}))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def alive_nodes() -> list[dict]:
    import ray

    return [node for node in ray.nodes() if node["Alive"]]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)
    return value


# --- tests ----------------------------------------------------------------------------------


def test_autoscaler_adds_gpu_nodes_for_a_sweep_and_removes_them_when_idle(fake_autoscaling_cluster,
                                                                          tmp_path):
    import ray

    types = yaml.safe_load((REPO / "cluster" / "cluster.yaml").read_text())["available_node_types"]
    gpu_types = {name for name, node_type in types.items() if node_type["resources"].get("GPU")}
    (head,) = alive_nodes()
    assert head["Resources"].get("GPU", 0) == 0 and head["Resources"][DRIVER_RESOURCE] >= 1

    # A trial of 2 DDP workers x 1 GPU: the head has none, so the autoscaler must add GPU nodes.
    # (One trial keeps this within the test budget on 2 cores; each trial scales the same way.)
    with AutoscalerWatch() as watch:
        results, runs = run_small_sweep(tmp_path, trials=1, workers=2, use_gpu=True,
                                        driver={"CPU": 0.1, DRIVER_RESOURCE: 1})
    drivers, worker_nodes = check_sweep(results, runs, trials=1, workers=2)
    assert drivers == {head["NodeID"]}, "trial drivers run on the head (tl_driver), never on workers"
    assert head["NodeID"] not in worker_nodes
    added = {node["NodeID"]: node for node in ray.nodes() if node["NodeID"] != head["NodeID"]}
    assert worker_nodes <= set(added), "Train workers ran on nodes the autoscaler added"
    assert all(added[n]["Resources"].get("GPU", 0) >= 1 for n in worker_nodes)
    launched = {name for active in watch.seen for name in active if name != "ray.head.default"}
    assert launched and launched <= gpu_types, watch.seen  # cluster.yaml's GPU types, not cpu_16x
    assert max(sum(active.values()) for active in watch.seen) - 1 == len(added)  # minus the head

    idle_wait = 60 * IDLE_TIMEOUT_MINUTES + 90  # idle timeout, plus autoscaler and node shutdown
    wait_for(lambda: len(alive_nodes()) == 1, idle_wait, "the idle GPU nodes to be removed")
    assert alive_nodes()[0]["NodeID"] == head["NodeID"]


@pytest.fixture
def cpu_free_head_cluster(ray_env):
    """A 3-node Cluster whose head has no CPU: trials and Train workers must use the 2 others."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "dashboard_port": free_port()})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=2)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_project_sweep_script_runs_on_a_multi_node_cluster(cpu_free_head_cluster, tmp_path):
    """`sweeps/ztf_to_lsst.py --smoke-test --address ...` on a cluster whose head runs no trial."""
    import mlflow
    import ray
    from ray.util.state import list_actors

    out = tmp_path / "out"
    command = [sys.executable, str(REPO / "sweeps" / "ztf_to_lsst.py"), "--smoke-test",
               "--address", cpu_free_head_cluster.address, "--fractions", "1.0", "--num-samples", "1",
               "--epochs", "1", "--workers-per-trial", "1", "--executor", "train", "--out", str(out)]
    finished = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]

    ray.init(address=cpu_free_head_cluster.address)
    head = cpu_free_head_cluster.head_node.node_id
    actors = list_actors(detail=True, limit=10_000)
    trial_nodes = {a.node_id for a in actors if a.class_name.endswith("ImplicitFunc")}
    train_nodes = {a.node_id for a in actors if a.class_name == "RayTrainWorker"}
    assert trial_nodes and train_nodes and head not in trial_nodes | train_nodes
    assert len(trial_nodes | train_nodes) == 2, "trials and their workers used both worker nodes"

    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ztf_to_lsst")
    runs = client.search_runs([experiment.experiment_id])
    trial_runs = [run for run in runs if "mode" in run.data.tags]
    assert {run.data.tags["mode"] for run in trial_runs} >= {"transfer", "scratch"}
    assert all(run.info.status == "FINISHED" for run in trial_runs)
