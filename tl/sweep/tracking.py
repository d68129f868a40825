"""MLflow conventions of a sweep (DESIGN.md section 7): run hierarchy, tags, lineage, trial logging.

One experiment per sweep. Runs are nested: sweep (tag tl.role=sweep) -> base (tl.role=base) and
target fraction (tl.role=fraction) -> trial (tl.role=trial). Every trial run carries the dotted
config names as params, the tags below, per-epoch metrics (step = epoch), the final test metrics,
and as artifacts `model_dir/` (a self-contained MODEL_DIR), `config.json` and `confusion_matrix.png`;
a registered champion's run also has the model as `mlflow.pytorch` (`model/`, with signature).

Only the sweep driver process writes to MLflow (one writer: safe with SQLite). Trials are logged by
`TrialLogger`, a Tune callback that runs in that process. Every function takes an `MlflowClient`;
nothing sets MLflow's process-global tracking URI.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import subprocess
import tempfile
import urllib.error
import urllib.request
from importlib import metadata

from tl.errors import TLError
from tl.sweep.storage import write_probe

ROLE = "tl.role"  # sweep | base | fraction | trial
TRIAL_ID = "tl.tune_trial_id"  # the Tune trial id: the dedupe key on --resume
OUTCOME = "tl.outcome"  # completed | pruned | failed
STAGE = "tl.stage"  # a study's key (tl.sweep.study.Study.key): "<fraction>/<mode>/<seed>", or "base"
PREDICTIONS_FILE = "predictions.csv"  # per-object val/test probabilities of a trial (tl.evaluation.prediction_table)
MODEL_URI = "tl.model_uri"  # set on a trial run once its mlflow.pytorch model is logged (champions)
NOTE = "mlflow.note.content"  # a run's (or experiment's) description in the MLflow UI
# MLflow 3.17's UI opens every experiment in the view of its global GenAI / Model training switch
# (GenAI by default), not of the experiment's mlflow.experimentKind tag: EXPERIMENT_VIEW opens it
# in the model-training view (README).
EXPERIMENT_VIEW = "?workflowType=machine_learning"
PACKAGES = ("tl", "torch", "ray", "optuna", "mlflow", "numpy", "pandas", "scikit-learn", "pyarrow")


def check_tracking_uri(uri: str) -> None:
    """Fail with a one-line TLError unless the MLflow tracking store at `uri` answers."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise TLError(f"--tracking-uri {uri}: MLflow server not reachable ({error})") from None
        return
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        parent = os.path.dirname(os.path.abspath(path)) or "."
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as error:
            raise TLError(f"--tracking-uri {uri}: cannot create {parent} ({error})") from None
        if not os.access(parent, os.W_OK):
            raise TLError(f"--tracking-uri {uri}: directory {parent} is not writable")
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:  # any store error: the message is what the user needs
        raise TLError(f"--tracking-uri {uri}: {type(error).__name__}: {str(error).splitlines()[0]}") from None


def check_storage(path: str) -> None:
    """Fail with a one-line TLError unless `path` (local or URI) accepts a file write and delete."""
    try:
        write_probe(path)
    except Exception as error:
        raise TLError(f"--storage {path}: not writable ({type(error).__name__}: {str(error).splitlines()[0]})") from None


def git_commit() -> str:
    """The commit of the checkout `tl` is imported from, with '-dirty' if it has local changes."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def lineage_tags(dataset_hashes: dict[str, str]) -> dict[str, str]:
    """Tags that let any number be traced and rerun: commit, data hashes, package versions."""
    tags = {"tl.git_commit": git_commit()}
    tags.update({f"tl.data_hash.{name}": digest for name, digest in dataset_hashes.items()})
    tags.update({f"tl.version.{name}": version for name, version in package_versions().items()})
    return tags


def experiment_id(client, name: str) -> str:
    """The experiment `name`, created when missing; under a SQLite store its artifacts go next to
    the database (`<db dir>/artifacts`), not MLflow's default `<current directory>/mlruns`."""
    experiment = client.get_experiment_by_name(name)
    if experiment:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(client.tracking_uri))


def artifact_location(tracking_uri: str) -> str | None:
    """`file://<db dir>/artifacts` for `sqlite:///<db>`; None (the server's artifact root) otherwise."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri[len("sqlite:///"):]
    return pathlib.Path(os.path.abspath(database)).parent.joinpath("artifacts").as_uri()


def find_runs(client, experiment: str, tags: dict[str, str]) -> list:
    """Runs of `experiment` carrying every tag in `tags` (oldest first)."""
    clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    return list(reversed(client.search_runs([experiment], " and ".join(clauses), max_results=10000,
                                            order_by=["attributes.start_time DESC"])))


def child_run(client, experiment: str, parent_id: str | None, name: str, tags: dict[str, str]) -> str:
    """Create a run nested under `parent_id`; returns its id."""
    tags = dict(tags)
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    return client.create_run(experiment, run_name=name, tags=tags).info.run_id


def log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(key, str(value)) for key, value in sorted(params.items())]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start:start + 100])


def log_metrics(client, run_id: str, metrics: dict, step: int) -> None:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(key, float(value), now, step) for key, value in metrics.items()
             if isinstance(value, (int, float)) and not isinstance(value, bool)]
    if items:
        client.log_batch(run_id, metrics=items)


def log_json(client, run_id: str, data, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w") as stream:
            json.dump(data, stream, indent=2, sort_keys=True, default=str)
        client.log_artifact(run_id, path)


def confusion_figure(confusion, classes, title: str):
    """A matplotlib Figure of a confusion matrix (rows true, columns predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(confusion, dtype=float)
    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)))
    axis.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, f"{int(value)}", ha="center", va="center", fontsize=8)
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def log_trial_artifacts(client, run_id: str, checkpoint_dir: str, title: str) -> None:
    """Log a finished trial's final checkpoint (a MODEL_DIR, evaluation.json, predictions.csv) to
    `run_id`: model_dir/, config.json, predictions.csv (per-object val and test probabilities) and
    confusion_matrix.png (about 0.1 s; the mlflow.pytorch model, which costs several times that, is
    logged for champions only: log_pytorch_model)."""
    import matplotlib.pyplot as plt

    model_dir = os.path.join(checkpoint_dir, "model")
    with open(os.path.join(checkpoint_dir, "evaluation.json")) as stream:
        evaluation = json.load(stream)["evaluation"]
    with open(os.path.join(model_dir, "model.json")) as stream:
        config = json.load(stream)["config"]
    client.log_artifacts(run_id, model_dir, "model_dir")
    log_json(client, run_id, config, "config.json")
    predictions = os.path.join(checkpoint_dir, PREDICTIONS_FILE)
    if os.path.exists(predictions):
        client.log_artifact(run_id, predictions)
    figure = confusion_figure(evaluation["confusion"], evaluation["classes"], title)
    client.log_figure(run_id, figure, "confusion_matrix.png")
    plt.close(figure)


def log_pytorch_model(client, run_id: str) -> str:
    """Log the run's MODEL_DIR as an `mlflow.pytorch` model (single-tensor input, tl.packed; with
    signature) under artifact path `model`; returns its `runs:/` URI. Idempotent: a run that
    already has it (tag tl.model_uri) is left as it is."""
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    from tl.modeldir import load_model_dir
    from tl.packed import PackedInputClassifier, packed_width

    run = client.get_run(run_id)
    if MODEL_URI in run.data.tags:
        return run.data.tags[MODEL_URI]
    with tempfile.TemporaryDirectory() as scratch:
        loaded = load_model_dir(client.download_artifacts(run_id, "model_dir", scratch))
        max_length = loaded.config.data.max_length
        wrapper = PackedInputClassifier(loaded.model, max_length, correction=loaded.prior_correction).eval()
        example = np.zeros((2, packed_width(max_length)), dtype=np.float32)
        example[:, 5] = 1  # length 1: a valid (if trivial) light curve
        with torch.no_grad():
            output = wrapper(torch.from_numpy(example)).numpy()
        path = os.path.join(scratch, "model")
        # pickle, not pt2: torch.export cannot trace the packed-sequence GRU with dynamic lengths
        mlflow.pytorch.save_model(wrapper, path, signature=infer_signature(example, output),
                                  serialization_format="pickle",
                                  pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
        client.log_artifacts(run_id, path, "model")
    uri = f"runs:/{run_id}/model"
    client.set_tag(run_id, MODEL_URI, uri)
    return uri
