"""MLflow conventions of a sweep (DESIGN.md section 7): run hierarchy, tags, lineage, trial logging.

One experiment per sweep. Runs are nested: sweep (tag tl.role=sweep) -> base (tl.role=base) and
target fraction (tl.role=fraction) -> trial (tl.role=trial). Every trial run carries the dotted
config names as params, the tags below, per-epoch metrics (step = epoch), the final test metrics,
and as artifacts the model (mlflow.pytorch, with signature), `model_dir/` (a self-contained
MODEL_DIR), `config.json` and `confusion_matrix.png`.

Only the sweep driver process writes to MLflow (one writer: safe with SQLite). Trials are logged by
`TrialLogger`, a Tune callback that runs in that process.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import urllib.error
import urllib.request
from importlib import metadata

from tl.errors import TLError

ROLE = "tl.role"  # sweep | base | fraction | trial
TRIAL_ID = "tl.tune_trial_id"  # the Tune trial id: the dedupe key on --resume
OUTCOME = "tl.outcome"  # completed | pruned | failed
STAGE = "tl.stage"  # "<fraction>/<mode>/<seed>" of a trial, "base" for the base model
TRIAL_TAGS = ("base_run_id", "source_dataset", "target_dataset", "mode")
PACKAGES = ("tl", "torch", "ray", "optuna", "mlflow", "numpy", "pandas", "scikit-learn", "pyarrow")
TEST_METRICS = ("test_macro_f1", "test_balanced_accuracy", "test_roc_auc_macro")


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
    import pyarrow.fs as pafs

    try:
        if "://" in path:
            fs, base = pafs.FileSystem.from_uri(path)
        else:
            fs, base = pafs.LocalFileSystem(), os.path.abspath(path)
        fs.create_dir(base, recursive=True)
        probe = f"{base}/.tl-write-probe"
        with fs.open_output_stream(probe) as stream:
            stream.write(b"ok")
        fs.delete_file(probe)
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
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


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


def packed_width(max_length: int) -> int:
    """Columns of a packed input row: metadata (5), length (1), sequence (max_length x 5)."""
    from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES

    return len(METADATA_FEATURES) + 1 + max_length * len(SEQUENCE_FEATURES)


def pack_inputs(dataset, max_length: int):
    """An EncodedDataset as one float32 array (N, packed_width): the logged model's input."""
    import numpy as np

    from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES

    n_meta, n_seq = len(METADATA_FEATURES), len(SEQUENCE_FEATURES)
    rows = np.zeros((len(dataset), packed_width(max_length)), dtype=np.float32)
    for i in range(len(dataset)):
        sequence, metadata, _ = dataset[i]
        rows[i, :n_meta] = metadata.numpy()
        rows[i, n_meta] = len(sequence)
        rows[i, n_meta + 1:n_meta + 1 + len(sequence) * n_seq] = sequence.numpy().reshape(-1)
    return rows


def packed_model(classifier, max_length: int):
    """The classifier behind a single-tensor interface, as MLflow's pytorch flavor requires."""
    from tl.packed import PackedInputClassifier

    return PackedInputClassifier(classifier, max_length)


def log_trial_model(client, run_id: str, checkpoint_dir: str, title: str) -> str:
    """Log a finished trial's final checkpoint (a MODEL_DIR and evaluation.json) to `run_id`:
    the model (mlflow.pytorch, with signature), model_dir/, config.json, confusion_matrix.png.
    Returns the logged model's URI."""
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    from tl.modeldir import load_model_dir

    model_dir = os.path.join(checkpoint_dir, "model")
    with open(os.path.join(checkpoint_dir, "evaluation.json")) as stream:
        evaluation = json.load(stream)["evaluation"]
    loaded = load_model_dir(model_dir)
    client.log_artifacts(run_id, model_dir, "model_dir")
    log_json(client, run_id, loaded.config.flat(), "config.json")
    figure = confusion_figure(evaluation["confusion"], evaluation["classes"], title)
    client.log_figure(run_id, figure, "confusion_matrix.png")
    import matplotlib.pyplot as plt

    plt.close(figure)
    max_length = loaded.config.data.max_length
    wrapper = packed_model(loaded.model, max_length).eval()
    example = np.zeros((2, packed_width(max_length)), dtype=np.float32)
    example[:, 5] = 1  # length 1: a valid (if trivial) light curve
    with torch.no_grad():
        output = wrapper(torch.from_numpy(example)).numpy()
    signature = infer_signature(example, output)
    torch_version = torch.__version__.split("+")[0]
    with mlflow.start_run(run_id=run_id):
        # pickle, not pt2: torch.export cannot trace the packed-sequence GRU with dynamic lengths
        info = mlflow.pytorch.log_model(wrapper, name="model", signature=signature,
                                        serialization_format="pickle",
                                        pip_requirements=[f"torch=={torch_version}"])
    client.set_tag(run_id, "tl.model_uri", info.model_uri)
    return info.model_uri
