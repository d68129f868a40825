"""Faults inside a trial: a SIGKILLed Ray Train worker of a 2-worker DDP trial, and a SIGKILLed
`tune` trial actor, each resumed from its last per-epoch checkpoint and ending exactly where an
uninterrupted run with the same seeds ends (slow: they start Ray).

The trial body touches DIR/rank<r>-epoch<e>-pid<pid> after every epoch when $TL_TEST_MARKERS is
set (tl.sweep.worker.mark_epoch), and with DIR:K waits after epoch K, where the test kills it by
pid. The variable reaches the Ray workers through the runtime_env of the task that runs the trial
(child tasks and actors inherit it).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from ray_fixture import ray_session  # noqa: F401  (a fixture)
from toy import make_toy_dataset

TINY = {"train.epochs": 4, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
        "model.dense_second": 8, "data.max_length": 30, "train.lr": 0.03}  # learns within 4 epochs
KILL_AFTER_EPOCH = 2
COMPARED = ("epoch", "val_macro_f1", "val_loss", "train_loss", "test_macro_f1", "test_balanced_accuracy",
            "test_roc_auc_macro")


def markers(directory) -> list[tuple[int, int, int]]:
    """(rank, epoch, pid) of every epoch the trial's processes reported."""
    found = []
    for name in os.listdir(directory):
        rank, epoch, pid = name.split("-")
        found.append((int(rank[4:]), int(epoch[5:]), int(pid[3:])))
    return sorted(found)


def run_with_markers(function, directory, hold: int | None, *args):
    """Start `function(*args)` as a Ray task whose workers see $TL_TEST_MARKERS; returns its ref."""
    import ray

    value = f"{directory}:{hold}" if hold else str(directory)
    remote = ray.remote(num_cpus=0, max_retries=0)(function)
    return remote.options(runtime_env={"env_vars": {"TL_TEST_MARKERS": value}}).remote(*args)


def kill_when_marked(directory, rank: int, epoch: int, ref, timeout: float = 150) -> tuple[int, set]:
    """SIGKILL the process that marked (rank, epoch); returns its pid and the pids that had marked
    an epoch by then (the first attempt's processes)."""
    import ray

    deadline = time.monotonic() + timeout
    while True:
        found = [pid for r, e, pid in markers(directory) if (r, e) == (rank, epoch)]
        if found:
            os.kill(found[0], signal.SIGKILL)
            return found[0], {pid for _, _, pid in markers(directory)}
        ready, _ = ray.wait([ref], timeout=0.2)
        assert not ready, f"the trial ended before rank {rank} reached epoch {epoch}: {ray.get(ref)}"
        assert time.monotonic() < deadline, f"rank {rank} did not reach epoch {epoch} in {timeout} s"


def fit_ddp(loop_config: dict, storage: str, name: str) -> dict:
    """A 2-worker DDP trial (TorchTrainer, gloo on CPU) that Train restarts once after a lost worker."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from tl.sweep.worker import train_loop_per_worker

    trainer = TorchTrainer(train_loop_per_worker, train_loop_config=loop_config,
                           scaling_config=ray.train.ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
                           run_config=ray.train.RunConfig(storage_path=storage, name=name,
                                                          failure_config=ray.train.FailureConfig(max_failures=1)))
    return dict(trainer.fit().metrics)


def fit_tune_trial(payload, name: str) -> dict:
    """A 1-trial study under the `tune` executor (Tune's FailureConfig from payload.max_failures)."""
    from ray import tune

    from tl.config import Config
    from tl.sweep.search import run_study

    grid = run_study(name=name, storage=payload.storage, payload=payload, mode="scratch",
                     config=Config().override(TINY), num_samples=1, seed=0, logger=tune.Callback(),
                     deadline_file=None, resume=False)
    (result,) = list(grid)
    assert result.error is None, result.error
    return dict(result.metrics)


@pytest.fixture(scope="module")
def by_value():
    """The task functions above travel by value (tests/ is not importable on Ray workers)."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def assert_resumed(found, killed: int, before: set, rank: int) -> None:
    """The restarted processes continue from the killed one's last checkpointed epoch or the one
    before (Train may not have registered the last report of a worker group that died): at most one
    epoch is trained again, every later epoch once."""
    after = sorted(e for r, e, pid in found if r == rank and pid not in before)
    assert killed in before
    assert after and after[0] in (KILL_AFTER_EPOCH, KILL_AFTER_EPOCH + 1), after
    assert after == list(range(after[0], TINY["train.epochs"] + 1))


class Reports:
    """The trial body's session without Ray (tests/test_worker.py: the metrics of TuneSession)."""
    rank, wrap_model, wrap_loader = 0, None, None

    def __init__(self):
        self.reports = []

    def checkpoint(self):
        return None

    def report(self, metrics, directory, name):
        self.reports.append(dict(metrics))


def uninterrupted(overrides: dict, dataset) -> dict:
    """The final metrics of the trial body run in this process from start to end."""
    from tl.sweep.worker import run_trial_body

    session = Reports()
    run_trial_body({"overrides": overrides, "target": dataset, "base_model": None}, session)
    return session.reports[-1]


def even_train_split(dataset):
    """`dataset` less one train object when its train split is odd (no DistributedSampler padding)."""
    from tl.data import Dataset

    train_ids = dataset.objects.loc[dataset.objects["split"] == "train", "object_id"]
    if len(train_ids) % 2 == 0:
        return dataset, len(train_ids)
    objects = dataset.objects[dataset.objects["object_id"] != train_ids.iloc[-1]].reset_index(drop=True)
    observations = dataset.observations[dataset.observations["object_id"].isin(objects["object_id"])]
    return Dataset(objects, observations.reset_index(drop=True), dataset.meta), len(train_ids) - 1


@pytest.mark.slow
def test_a_killed_ddp_worker_resumes_from_its_epoch_checkpoint_with_the_same_metrics(ray_session, by_value,
                                                                                    tmp_path):
    """The uninterrupted reference is the same trial in one process with the 2 workers' batches as
    one (dropout 0, one full-batch step an epoch: DDP averages the gradients, tests/test_worker.py),
    so only the killed run pays for worker groups; equal to float32 rounding (1e-5)."""
    import ray

    dataset, n_train = even_train_split(make_toy_dataset(20))
    common = {**TINY, "model.dropout": 0.0}
    loop_config = {"overrides": {**common, "train.batch_size": n_train // 2}, "target": ray.put(dataset),
                   "base_model": None}
    ref = run_with_markers(fit_ddp, tmp_path, KILL_AFTER_EPOCH, loop_config, str(ray_session / "faults-ddp"), "killed")
    killed, before = kill_when_marked(tmp_path, 1, KILL_AFTER_EPOCH, ref)
    resumed = ray.get(ref, timeout=120)
    assert_resumed(markers(tmp_path), killed, before, rank=1)
    whole = uninterrupted({**common, "train.batch_size": n_train}, dataset)
    assert len({whole["val_macro_f1"], whole["test_macro_f1"], 0.0}) > 1  # it learnt something
    for key in set(COMPARED) - {"train_loss"}:  # rank 0 reports the loss of its half of the batch
        assert resumed[key] == pytest.approx(whole[key], abs=1e-5), key


@pytest.mark.slow
def test_a_killed_tune_trial_actor_is_restored_from_its_epoch_checkpoint_with_the_same_metrics(ray_session,
                                                                                              by_value, tmp_path):
    import ray

    from tl.sweep.executors import TrialPayload
    from tl.sweep.resources import TrialResources

    dataset = make_toy_dataset(20)
    payload = TrialPayload(overrides=TINY, target=ray.put(dataset), target_hash="toy-20-faults", base_model=None,
                           base_hash=None, storage=str(ray_session / "faults-tune"),
                           resources=TrialResources(1, 1.0, 0.0, 0.0, 1), executor="tune", max_failures=1)
    ref = run_with_markers(fit_tune_trial, tmp_path, KILL_AFTER_EPOCH, payload, "killed")
    killed, before = kill_when_marked(tmp_path, 0, KILL_AFTER_EPOCH, ref)
    resumed = ray.get(ref, timeout=120)
    assert_resumed(markers(tmp_path), killed, before, rank=0)

    whole = uninterrupted({**TINY, **default_searched()}, dataset)
    for key in COMPARED:
        assert resumed[key] == pytest.approx(whole[key], abs=1e-9), key


def default_searched() -> dict:
    """The settings the study's first trial (the enqueued default point) adds to TINY."""
    from tl.config import Config
    from tl.sweep.space import default_point

    return default_point("scratch", Config().override(TINY))


def test_a_sqlite_stores_artifacts_land_next_to_its_database_not_in_the_current_directory(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from tl.sweep import tracking

    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    experiment = tracking.experiment_id(client, "where")
    assert tracking.experiment_id(client, "where") == experiment  # found, not created twice
    run = client.create_run(experiment)
    (tmp_path / "note.txt").write_text("kept with the store")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    assert list(cwd.iterdir()) == []  # no ./mlruns
    logged = list((out / "artifacts").rglob("note.txt"))
    assert [path.read_text() for path in logged] == ["kept with the store"]
    assert tracking.artifact_location("http://127.0.0.1:5000") is None  # the server's artifact root


def test_archive_members_that_leave_the_target_are_refused(tmp_path):
    """A MODEL_DIR archive (tl.sweep.worker.unpack_directory) cannot write outside its target."""
    import io
    import tarfile

    from tl.sweep.worker import unpack_directory

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = b"escaped"
        member = tarfile.TarInfo("../outside.txt")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    with pytest.raises(tarfile.OutsideDestinationError):
        unpack_directory(buffer.getvalue(), str(tmp_path / "target"))
    assert not (tmp_path / "outside.txt").exists()


def test_every_torch_load_refuses_pickled_objects():
    """State is saved as tensors and plain containers: each torch.load in tl/ passes weights_only=True."""
    import ast
    import pathlib

    calls = []
    for path in pathlib.Path(__file__).resolve().parents[1].joinpath("tl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                calls.append((path.name, keywords.get("weights_only")))
    assert calls and all(value is True for _, value in calls), calls


def registered_versions(client, experiment: str) -> dict[str, list[str]]:
    """Registered model name -> the source run ids of its versions, for the sweep's models."""
    found = {}
    for model in client.search_registered_models(f"name LIKE '{experiment}-%'"):
        versions = client.search_model_versions(f"name = '{model.name}'")
        found[model.name] = sorted(version.run_id for version in versions)
    return found


@pytest.mark.slow
def test_a_driver_killed_at_its_worst_moments_resumes_with_nothing_rerun_or_duplicated(ray_session, tmp_path,
                                                                                      monkeypatch):
    """SIGKILL (tl.sweep.faults) after a study's last trial, before its champion; after a champion's
    registration, before the state records it; after the report, before the sweep run closes. Each
    `--resume` (the drivers share the test's Ray instance) continues; nothing finished runs again."""
    import json
    import subprocess

    import ray
    from mlflow.tracking import MlflowClient

    from test_sweeps import FAST, REPO, check_store, completed_trials, load_script
    from tl.evaluation import json_safe
    from tl.sweep import tracking
    from tl.sweep.report import summarize

    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    flags = [*FAST, "--fractions", "1.0", "--num-samples", "2", "--out", str(out)]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    env.pop("MLFLOW_TRACKING_URI", None)
    finished = set()
    for attempt, fault in enumerate(("after-study:1/transfer/0", "after-register:1/scratch/0", "report:")):
        command = [sys.executable, os.path.join(REPO, "sweeps", "sims_to_bts.py"), *flags,
                   *(["--resume"] if attempt else [])]
        with open(tmp_path / f"attempt{attempt}.log", "w") as log:
            code = subprocess.run(command, env={**env, "TL_FAULT": fault}, cwd=cwd, stdout=log,
                                  stderr=subprocess.STDOUT, timeout=300).returncode
        assert code == -signal.SIGKILL, (tmp_path / f"attempt{attempt}.log").read_text()[-3000:]
        now = set(completed_trials(f"{out}/mlflow.db"))
        assert finished <= now  # every trial finished before a kill: same run, same end time
        finished = now
    with open(out / "report" / "summary.json") as stream:
        killed_report = json.load(stream)

    monkeypatch.chdir(cwd)
    assert load_script("sims_to_bts").main(flags + ["--resume"]) == 0
    assert set(completed_trials(f"{out}/mlflow.db")) == finished  # nothing ran again
    client, experiment_id = check_store(str(out), "sims_to_bts", fractions=(1.0,), num_samples=2)  # none RUNNING
    trials = tracking.find_runs(client, experiment_id, {tracking.ROLE: "trial"})
    assert len(trials) == 4 and len({t.data.tags[tracking.TRIAL_ID] for t in trials}) == 4
    assert len(tracking.find_runs(client, experiment_id, {tracking.ROLE: "base"})) == 1
    versions = registered_versions(client, "sims_to_bts")
    assert sorted(versions) == ["sims_to_bts-scratch-1", "sims_to_bts-transfer-1"], versions
    assert all(len(ids) == 1 for ids in versions.values()), versions  # one version per study
    with open(out / "report" / "summary.json") as stream:
        final_report = json.load(stream)
    recomputed = json_safe(summarize(MlflowClient(f"sqlite:///{out}/mlflow.db"), "sims_to_bts", str(tmp_path / "again")))
    for report in (killed_report, recomputed):  # as written: NaN (no supported class) is null
        for key in ("table", "baseline", "fractions", "reduction"):
            assert report[key] == final_report[key], key
    assert list(cwd.iterdir()) == []  # nothing written where the drivers were started
