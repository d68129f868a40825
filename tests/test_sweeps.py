"""End-to-end sweeps (slow: they start Ray): each script's --smoke-test, resume, a failing trial.

The scripts run in-process on the shared local Ray instance, with one DDP worker per trial so
three trials run side by side (the 2-worker DDP path is covered by tests/test_worker.py).
"""

import json
import os

import numpy as np
import pytest

import scripts
from ray_fixture import ray_session  # noqa: F401  (a fixture)
from tl.packed import pack_inputs
from tl.sweep import tracking
from tl.config import Config
from tl.sweep.cli import SMOKE_OVERRIDES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--smoke-test", "--workers-per-trial", "1"]


def load_script(name: str):
    return scripts.load_script(f"sweeps/{name}.py")


def runs_of(client, experiment_id, **tags):
    return tracking.find_runs(client, experiment_id, tags)


def check_store(out: str, experiment: str, fractions=(0.25, 1.0), num_samples=2):
    """The MLflow layout of DESIGN.md section 7, checked run by run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out}/mlflow.db")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    (sweep,) = runs_of(client, experiment_id, **{tracking.ROLE: "sweep"})
    unended = [run.info.run_name for run in client.search_runs([experiment_id]) if run.info.status == "RUNNING"]
    assert unended == []  # the sweep, base, fraction and trial runs all ended
    (base,) = runs_of(client, experiment_id, **{tracking.ROLE: "base"})
    assert base.data.tags["mlflow.parentRunId"] == sweep.info.run_id
    assert base.data.tags[tracking.OUTCOME] == "completed"
    fraction_runs = runs_of(client, experiment_id, **{tracking.ROLE: "fraction"})
    assert sorted(float(r.data.params["data.target_fraction"]) for r in fraction_runs) == sorted(fractions)
    settings = set(Config().flat())
    for fraction_run in fraction_runs:
        assert fraction_run.data.tags["mlflow.parentRunId"] == sweep.info.run_id
        fraction = float(fraction_run.data.params["data.target_fraction"])
        trials = runs_of(client, experiment_id, **{"mlflow.parentRunId": fraction_run.info.run_id})
        assert {t.data.tags["mode"] for t in trials} == {"transfer", "scratch"}
        for mode in ("transfer", "scratch"):
            of_mode = [t for t in trials if t.data.tags["mode"] == mode]
            assert 1 <= len(of_mode) <= num_samples
            assert len({t.data.tags[tracking.TRIAL_ID] for t in of_mode}) == len(of_mode)  # no duplicates
        for trial in trials:
            used = settings if trial.data.tags["mode"] == "transfer" else {s for s in settings if not s.startswith("transfer.")}
            assert used == set(trial.data.params)  # the settings the trial uses, no others
            assert float(trial.data.params["data.target_fraction"]) == fraction
            tags = trial.data.tags
            assert tags["base_run_id"] == (base.info.run_id if tags["mode"] == "transfer" else "none")
            assert tags["source_dataset"].startswith("source@") and tags["target_dataset"].startswith("target@")
            assert tags["tl.git_commit"] and tags["tl.data_hash.target"]
            if tags[tracking.OUTCOME] != "completed":
                continue
            assert "test_macro_f1" in trial.data.metrics and "best_val_macro_f1" in trial.data.metrics
            history = client.get_metric_history(trial.info.run_id, "val_macro_f1")
            steps = sorted(m.step for m in history)  # one value per epoch, 1..k, ASHA may stop early
            assert steps == list(range(1, len(steps) + 1)) and len(steps) <= SMOKE_OVERRIDES["train.epochs"]
            names = {a.path for a in client.list_artifacts(trial.info.run_id)}
            assert {"model_dir", "config.json", "confusion_matrix.png"} <= names
        importance = {a.path for a in client.list_artifacts(fraction_run.info.run_id)}
        assert f"importance_{fraction:g}_transfer_0.json" in importance
        assert f"importance_{fraction:g}_scratch_0.png" in importance
    with open(os.path.join(out, "report", "summary.json")) as stream:
        summary = json.load(stream)
    assert set(summary["fraction_of_baseline"]) == {f"{f:g}" for f in fractions}
    assert "reduction" in summary and os.path.getsize(os.path.join(out, "report", "data_efficiency.png")) > 0
    return client, experiment_id


def check_champion_reproduces_its_test_metric(client, experiment: str, target: str):
    """The registered champion loads from MLflow and gives its run's logged test macro-F1."""
    import mlflow

    from tl.data import read_dataset
    from tl.encoding import encode
    from tl.evaluation import compute_metrics
    from tl.modeldir import load_model_dir

    name = f"{experiment}-transfer-1"
    run = client.get_run(client.get_model_version_by_alias(name, "champion").run_id)
    completed = tracking.find_runs(client, run.info.experiment_id,
                                   {tracking.STAGE: "1/transfer/0", tracking.OUTCOME: "completed"})
    best = max(completed, key=lambda r: r.data.metrics["best_val_macro_f1"])
    assert best.info.run_id == run.info.run_id  # the champion is the best trial on validation
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(client.tracking_uri)  # the test's reading, as a user would: tl sets no global URI
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    finally:
        mlflow.set_tracking_uri(previous)
    # The target's test split, encoded with the normalisation stored in the trial's MODEL_DIR.
    loaded = load_model_dir(client.download_artifacts(run.info.run_id, "model_dir"))
    max_length = loaded.config.data.max_length
    test = encode(read_dataset(target).split("test"), loaded.classes, loaded.normalizer, max_length)
    proba = model.predict(pack_inputs(test, max_length))
    metrics = compute_metrics(test.labels.numpy(), np.asarray(proba), loaded.classes)
    assert metrics["macro_f1"] == pytest.approx(run.data.metrics["test_macro_f1"], abs=1e-9)


@pytest.mark.slow
def test_ztf_to_lsst_smoke(ray_session, tmp_path):
    out = str(tmp_path / "ztf_to_lsst")
    assert load_script("ztf_to_lsst").main(FAST + ["--out", out]) == 0
    client, _ = check_store(out, "ztf_to_lsst")
    check_champion_reproduces_its_test_metric(client, "ztf_to_lsst", os.path.join(out, "data", "target"))
    check_early_classification(client, out)
    check_compare_runs(out)


def check_compare_runs(out: str):
    """sweeps/compare_runs.py on the smoke store (its points re-scored from the MODEL_DIRs) against
    the report's summary.json (from the logged predictions): the same estimates and differences."""
    uri = f"sqlite:///{out}/mlflow.db"
    argv = ["--data", os.path.join(out, "data", "target"), "--out", os.path.join(out, "compare"),
            "--point", "base", uri, "ztf_to_lsst", "1", "scratch", "--point", "t1", uri, "ztf_to_lsst", "1", "transfer",
            "--point", "t25", uri, "ztf_to_lsst", "0.25", "transfer", "--baseline", "base", "--versus", "t1"]
    assert load_script("compare_runs").main(argv) == 0
    with open(os.path.join(out, "compare", "compare.json")) as stream:
        points = json.load(stream)["points"]
    with open(os.path.join(out, "report", "summary.json")) as stream:
        fractions = json.load(stream)["fractions"]
    assert points["base"]["macro_f1"] == pytest.approx(fractions["1"]["scratch"]["macro_f1"], abs=1e-9)
    for name, fraction in (("t1", "1"), ("t25", "0.25")):
        assert points[name]["macro_f1"] == pytest.approx(fractions[fraction]["transfer"]["macro_f1"], abs=1e-9)
        assert points[name]["minus"]["base"]["macro_f1"] == pytest.approx(
            fractions[fraction]["transfer"]["difference"]["macro_f1"], abs=1e-9)
    assert points["t25"]["minus"]["t1"]["macro_f1"] == pytest.approx(
        points["t25"]["macro_f1"] - points["t1"]["macro_f1"], abs=1e-9)
    assert points["t1"]["of_baseline"] == pytest.approx(points["t1"]["macro_f1"] / points["base"]["macro_f1"])
    unknown = argv[:-2] + ["--versus", "nobody"]
    assert load_script("compare_runs").main(unknown) == 2


def check_early_classification(client, out: str):
    """sweeps/early_classification.py on the smoke store: on full light curves each mode's point
    (one seed, one split: the champion alone) is the champion's logged test macro-F1 and the
    report's point estimate (through the MODEL_DIR, a second path); cut light curves score lower
    or equal on average and every interval holds its estimate."""
    tracking_uri = f"sqlite:///{out}/mlflow.db"
    argv = ["--tracking-uri", tracking_uri, "--experiment", "ztf_to_lsst", "--fraction", "1",
            "--data", os.path.join(out, "data", "target"), "--days", "5,20", "--out", os.path.join(out, "early")]
    assert load_script("early_classification").main(argv) == 0
    with open(os.path.join(out, "early", "early_classification.json")) as stream:
        rows = json.load(stream)["rows"]
    assert [(r["mode"], r["days"]) for r in rows] == [
        (mode, days) for days in (5.0, 20.0, None) for mode in ("transfer", "scratch")]
    with open(os.path.join(out, "report", "summary.json")) as stream:
        summary = json.load(stream)
    for mode in ("transfer", "scratch"):
        run = client.get_run(client.get_model_version_by_alias(f"ztf_to_lsst-{mode}-1", "champion").run_id)
        full = next(r for r in rows if r["mode"] == mode and r["days"] is None)
        assert full["macro_f1"] == pytest.approx(run.data.metrics["test_macro_f1"], abs=1e-9)
        assert full["macro_f1"] == pytest.approx(summary["fractions"]["1"][mode]["macro_f1"], abs=1e-9)
    for row in rows:
        assert row["ci95"][0] <= row["macro_f1"] <= row["ci95"][1]
        assert (row["minus_scratch"] is None) == (row["mode"] == "scratch")
    assert os.path.getsize(os.path.join(out, "early", "early_classification.png")) > 0
    unswept = [("0.5" if previous == "--fraction" else value) for previous, value in zip([None, *argv], argv)]
    assert load_script("early_classification").main(unswept) == 2  # no study at 0.5: one line, exit 2


def completed_trials(database: str) -> list[tuple[str, str, int]]:
    """(trial id, stage, end time) of completed trial runs, read from the SQLite store directly."""
    import sqlite3

    if not os.path.exists(database):
        return []
    with sqlite3.connect(database, timeout=30) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"tags", "runs"} <= tables:  # MLflow is still creating the store
            return []
        rows = connection.execute(
            "SELECT a.value, b.value, r.end_time FROM tags a JOIN tags b ON a.run_uuid = b.run_uuid "
            "JOIN tags c ON a.run_uuid = c.run_uuid JOIN runs r ON r.run_uuid = a.run_uuid WHERE a.key = ? AND b.key = ? AND c.key = ? "
            "AND c.value = 'completed'", (tracking.TRIAL_ID, tracking.STAGE, tracking.OUTCOME)).fetchall()
    return rows


@pytest.mark.slow
def test_sims_to_bts_interrupted_then_resumed(ray_session, tmp_path):
    """Ctrl-C after the first finished trial; --resume completes the sweep without rerunning it."""
    import signal
    import subprocess
    import sys
    import time

    out = str(tmp_path / "sims_to_bts")
    # 8 trials per study: `tune` trials take about a second, and the interrupt must land mid-sweep
    flags = [*FAST, "--fractions", "1.0", "--num-samples", "8", "--out", out]
    command = [sys.executable, os.path.join(REPO, "sweeps", "sims_to_bts.py"), *flags]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)  # its own Ray instance, as a user's first run would have
    env.pop("MLFLOW_TRACKING_URI", None)  # set by mlflow in this process by the earlier in-process sweeps
    with open(tmp_path / "first_run.log", "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 400
        while not [row for row in completed_trials(f"{out}/mlflow.db") if row[1] != "base"]:
            assert process.poll() is None, (tmp_path / "first_run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no trial finished within 400 s"
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    finished_before = set(completed_trials(f"{out}/mlflow.db"))

    assert load_script("sims_to_bts").main(flags + ["--resume"]) == 0
    client, experiment_id = check_store(out, "sims_to_bts", fractions=(1.0,), num_samples=8)
    finished_after = set(completed_trials(f"{out}/mlflow.db"))
    assert code != 0
    assert finished_before <= finished_after  # trials finished before the interrupt: not rerun ...
    trials = tracking.find_runs(client, experiment_id, {tracking.ROLE: "trial"})
    ids = [run.data.tags[tracking.TRIAL_ID] for run in trials]
    assert len(ids) == len(set(ids))  # ... and no trial has two MLflow runs
    assert len(runs_of(client, experiment_id, **{tracking.ROLE: "sweep"})) == 1


@pytest.mark.slow
def test_failing_trials_are_recorded_and_the_sweep_finishes(ray_session, tmp_path):
    from mlflow.tracking import MlflowClient

    from tl.data import Dataset, write_dataset
    from tl.simulate import simulate
    from tl.sweep.driver import run_sweep
    from tl.sweep.spec import SweepSpec

    simulated = simulate("ztf", 120, 5)  # with no val split: every trial fails (early stopping needs one)
    objects = simulated.objects.assign(split=simulated.objects["split"].replace("val", "train"))
    target = str(tmp_path / "target")
    write_dataset(Dataset(objects, simulated.observations, simulated.meta), target, **simulated.meta)
    spec = SweepSpec(name="failing", source_data=target, target_data=target, out=str(tmp_path / "out"),
                     fractions=(0.5, 1.0), num_samples=1, modes=("scratch",), workers_per_trial=1,
                     overrides=dict(SMOKE_OVERRIDES))
    summary = run_sweep(spec)
    assert summary["reduction"] is None and summary["table"] == []
    client = MlflowClient(f"sqlite:///{tmp_path}/out/mlflow.db")
    experiment_id = client.get_experiment_by_name("failing").experiment_id
    trials = tracking.find_runs(client, experiment_id, {tracking.ROLE: "trial"})
    assert len(trials) == 2
    for trial in trials:
        assert trial.info.status == "FAILED" and trial.data.tags[tracking.OUTCOME] == "failed"
        assert "the val split has no objects" in trial.data.tags["tl.error"]
