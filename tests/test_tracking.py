"""MLflow conventions against a REAL `mlflow server` on loopback, and the pre-flight checks."""

import json
import time

import numpy as np
import pytest

from mlflow_server import free_port, running_server
from toy import make_toy_dataset
from tl.packed import PackedInputClassifier, pack_inputs
from tl.sweep import tracking
from tl.config import Config
from tl.errors import TLError

TINY = {"train.epochs": 1, "model.gru_hidden": 8, "model.gru_layers": 1, "model.dense_hidden": 8,
        "model.dense_second": 8, "data.max_length": 30, "model.dropout": 0.0}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1 with its own SQLite store and artifact root."""
    root = tmp_path_factory.mktemp("mlflow_server")
    with running_server(f"sqlite:///{root}/store.db", root / "server.log", artifacts=root / "artifacts") as uri:
        yield uri


def test_unreachable_tracking_server_fails_fast():
    started = time.monotonic()
    with pytest.raises(TLError, match="not reachable"):
        tracking.check_tracking_uri(f"http://127.0.0.1:{free_port()}")
    assert time.monotonic() - started < 15


def test_unwritable_storage_fails(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(TLError, match="--storage"):
        tracking.check_storage(str(blocker / "tune"))
    tracking.check_storage(str(tmp_path / "tune"))  # a fresh local directory is fine
    assert (tmp_path / "tune").is_dir() and not list((tmp_path / "tune").iterdir())


def test_lineage_tags_hash_the_data(tmp_path):
    from tl.data import content_hash, write_dataset

    path = str(tmp_path / "toy")
    write_dataset(make_toy_dataset(5), path)
    tags = tracking.lineage_tags({"target": content_hash(path)})
    assert tags["tl.data_hash.target"] == content_hash(path) and len(tags["tl.data_hash.target"]) == 64
    assert tags["tl.version.torch"].split("+")[0] == __import__("torch").__version__.split("+")[0]
    assert tags["tl.git_commit"]


def test_packed_model_reproduces_the_classifier():
    """The single-tensor wrapper MLflow logs gives the same probabilities as predict_proba."""
    from tl.evaluation import predict_proba
    from tl.experiment import prepare

    prepared = prepare(Config().override(TINY), make_toy_dataset(8))
    wrapper = PackedInputClassifier(prepared.model, 30).eval()
    import torch

    with torch.no_grad():
        packed = wrapper(torch.from_numpy(pack_inputs(prepared.test, 30))).numpy()
    np.testing.assert_allclose(packed, predict_proba(prepared.model, prepared.test), atol=1e-5)


def test_trial_model_logged_to_a_real_server_reproduces_its_test_metric(mlflow_server, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from tl.evaluation import compute_metrics, evaluate
    from tl.experiment import prepare
    from tl.modeldir import save_model_dir
    from tl.training import fit

    tracking.check_tracking_uri(mlflow_server)
    prepared = prepare(Config().override(TINY), make_toy_dataset(10))
    result = fit(prepared)
    evaluation = evaluate(result.model, prepared.test, prepared.classes)
    checkpoint = tmp_path / "final"
    save_model_dir(str(checkpoint / "model"), prepared, result.model, history=result.history)
    (checkpoint / "evaluation.json").write_text(json.dumps({"metrics": {}, "evaluation": evaluation}))

    client = MlflowClient(mlflow_server)
    experiment = tracking.experiment_id(client, "server_test")
    parent = tracking.child_run(client, experiment, None, "fraction", {tracking.ROLE: "fraction"})
    run = tracking.child_run(client, experiment, parent, "trial", {tracking.ROLE: "trial", "mode": "scratch"})
    tracking.log_metrics(client, run, {"test_macro_f1": evaluation["macro_f1"]}, step=1)
    tracking.log_trial_artifacts(client, run, str(checkpoint), title="trial")
    model_uri = tracking.log_pytorch_model(client, run)
    assert tracking.log_pytorch_model(client, run) == model_uri  # logged once
    client.set_terminated(run, "FINISHED")

    found = tracking.find_runs(client, experiment, {tracking.ROLE: "trial", "mlflow.parentRunId": parent})
    assert [r.info.run_id for r in found] == [run]
    names = {item.path for item in client.list_artifacts(run)}
    assert {"model_dir", "config.json", "confusion_matrix.png", "model"} <= names
    mlflow.set_tracking_uri(mlflow_server)  # the test's own reading of the model, as a user would
    logged = mlflow.pyfunc.load_model(model_uri)
    assert logged.metadata.signature is not None
    proba = logged.predict(pack_inputs(prepared.test, 30))
    metrics = compute_metrics(prepared.test.labels.numpy(), np.asarray(proba), prepared.classes)
    assert metrics["macro_f1"] == pytest.approx(client.get_run(run).data.metrics["test_macro_f1"], abs=1e-9)
