"""One trial's training, and the two sessions it runs under (the sweep's two trial executors).

`run_trial_body` is the trial, written as numbered steps: prepare data and model, resume from the
last checkpoint, train reporting every epoch, report the test metrics and the final MODEL_DIR.
It talks to Ray only through a session:

- `TrainSession`: inside a Ray Train worker (`train_loop_per_worker`, run by a TorchTrainer per
  trial: DDP, gloo on CPU, NCCL on GPU): `ray.train.report` and `ray.train.get_checkpoint`;
- `TuneSession`: inside the Tune trial's own actor (one worker): `ray.tune.report` and
  `ray.tune.get_checkpoint`. Tune reuses the actor between trials, so the decoded data sets, the
  unpacked base model and the encoded splits are cached per process (`_cached_data`), keyed by
  the data sets' content hashes and the data settings.

Data reach workers on any node through the object store: the sweep driver reads each canonical
data set once and `ray.put`s it; the base model travels as the bytes of a MODEL_DIR archive.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import tarfile
import tempfile
import time

import ray
import ray.train
import ray.train.torch
import ray.tune
import torch

from tl.config import Config
from tl.evaluation import evaluate, prediction_table
from tl.experiment import PreparedData, prepare, prepare_data
from tl.modeldir import save_model_dir
from tl.sweep.tracking import PREDICTIONS_FILE
from tl.training import fit

STATE_FILE = "train_state.pt"  # per-epoch checkpoint: fit()'s resume state
MODEL_DIR = "model"  # final checkpoint: a MODEL_DIR and the test evaluation
EVALUATION_FILE = "evaluation.json"
CACHED_ENCODINGS = 4  # encoded (data, base, data settings) kept per process
FAULT_MARKERS = "TL_TEST_MARKERS"  # tests only: DIR[:EPOCH], see mark_epoch


def pack_directory(path: str) -> bytes:
    """A directory as the bytes of a gzipped tar archive (to ship a MODEL_DIR through Ray)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(path, arcname=".")
    return buffer.getvalue()


def unpack_directory(archive_bytes: bytes, path: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r:gz") as archive:
        archive.extractall(path, filter="data")  # refuses members that leave `path`
    return path


def _resolve(value):
    """Values in the loop config may be object refs (on a cluster) or plain values (local mode)."""
    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class TrainSession:
    """The trial body's view of a Ray Train worker."""

    wrap_model = staticmethod(ray.train.torch.prepare_model)
    wrap_loader = staticmethod(ray.train.torch.prepare_data_loader)

    @property
    def rank(self) -> int:
        return ray.train.get_context().get_world_rank()

    def checkpoint(self):
        return ray.train.get_checkpoint()

    def report(self, metrics: dict, directory: str | None, name: str) -> None:
        checkpoint = ray.train.Checkpoint.from_directory(directory) if directory else None
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=name)


class TuneSession:
    """The trial body's view of a single-worker Tune trial (no DDP; the GPU when one is given)."""

    rank = 0
    wrap_loader = None

    def __init__(self):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def wrap_model(self, module):
        return module.to(self.device)

    def checkpoint(self):
        return ray.tune.get_checkpoint()

    def report(self, metrics: dict, directory: str | None, name: str) -> None:
        checkpoint = ray.tune.Checkpoint.from_directory(directory) if directory else None
        ray.tune.report(metrics, checkpoint=checkpoint)


_DATASETS: dict[str, object] = {}  # content hash -> Dataset
_BASE_DIRS: dict[str, str] = {}  # content hash of the archive -> unpacked MODEL_DIR
_ENCODED: collections.OrderedDict = collections.OrderedDict()  # see _cached_data


def _cached_data(config: Config, loop_config: dict) -> PreparedData:
    """The encoded splits of this trial, from this process's cache when an earlier trial had the
    same target, base model and config.data (uncached without the hashes: local mode, tests)."""
    target_hash, base_hash = loop_config.get("target_hash"), loop_config.get("base_hash")
    base_bytes = loop_config.get("base_model")
    if target_hash is None or (base_bytes is not None and base_hash is None):
        scratch = tempfile.mkdtemp(prefix="tl-base-")
        base_dir = unpack_directory(_resolve(base_bytes), scratch) if base_bytes is not None else None
        return prepare_data(config, _resolve(loop_config["target"]), base_dir)
    key = (target_hash, base_hash, config.data)
    if key not in _ENCODED:
        if target_hash not in _DATASETS:
            _DATASETS[target_hash] = _resolve(loop_config["target"])
        if base_hash is not None and base_hash not in _BASE_DIRS:
            _BASE_DIRS[base_hash] = unpack_directory(_resolve(base_bytes), tempfile.mkdtemp(prefix="tl-base-"))
        _ENCODED[key] = prepare_data(config, _DATASETS[target_hash], _BASE_DIRS.get(base_hash))
        while len(_ENCODED) > CACHED_ENCODINGS:
            _ENCODED.popitem(last=False)
    _ENCODED.move_to_end(key)
    return _ENCODED[key]


def run_trial_body(loop_config: dict, session) -> None:
    """One trial. loop_config: overrides (dotted config), target (Dataset or ref) and target_hash,
    base_model (MODEL_DIR archive bytes or ref; None from scratch) and base_hash, optional info
    (stored in the MODEL_DIR) and final_checkpoint_dir (keep the final checkpoint there: local mode)."""
    config = Config().override(loop_config["overrides"])
    # 1. Prepare data (cached per process) and model.
    prepared = prepare(config, None, prepared_data=_cached_data(config, loop_config))

    # 2. Resume from the last checkpoint of this trial, if a worker or driver was restarted.
    resume_state = None
    checkpoint = session.checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            if os.path.exists(os.path.join(directory, EVALUATION_FILE)):  # already finished
                with open(os.path.join(directory, EVALUATION_FILE)) as stream:
                    session.report(json.load(stream)["metrics"], directory, "final")
                return
            resume_state = torch.load(os.path.join(directory, STATE_FILE), weights_only=True)

    # 3. Train, reporting (and checkpointing, from rank 0) every epoch.
    def report(metrics: dict, get_state) -> None:
        with tempfile.TemporaryDirectory() as directory:
            if session.rank == 0:
                torch.save(get_state(), os.path.join(directory, STATE_FILE))
            session.report(dict(metrics), directory if session.rank == 0 else None,
                           f"epoch-{int(metrics['epoch']):04d}")
        mark_epoch(session.rank, int(metrics["epoch"]))

    result = fit(prepared, report=report, wrap_model=session.wrap_model, wrap_loader=session.wrap_loader,
                 resume_state=resume_state)

    # 4. Report the best epoch's validation metrics, the test metrics and the model (rank 0).
    metrics = {**final_metrics(result.history, result.best_epoch),
               "epoch_budget": float(result.epoch_budget), "best_step": float(result.best_step),
               "converged": float(result.converged)}
    correction = result.prior_correction  # how the model decides (tl.prior): val, test, predictions
    # Local mode (num_workers=0) keeps checkpoints in memory only: a caller that wants the
    # final model passes final_checkpoint_dir; otherwise the report copies it to storage.
    keep = loop_config.get("final_checkpoint_dir")
    with (contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory()) as directory:
        if session.rank == 0:
            if config.train.tune_logit_adjustment:  # tau was chosen after training, on validation
                metrics["val_macro_f1"] = evaluate(result.model, prepared.val, prepared.classes,
                                                   correction=correction)["macro_f1"]
            evaluation = evaluate(result.model, prepared.test, prepared.classes, correction=correction)
            metrics.update({f"test_{key}": float(evaluation[key])
                            for key in ("macro_f1", "balanced_accuracy", "roc_auc_macro")})
            save_model_dir(os.path.join(directory, MODEL_DIR), prepared, result.model,
                           history=result.history, metrics={"test": evaluation, "training": result.summary()},
                           info=loop_config.get("info", {}), prior_correction=correction)
            with open(os.path.join(directory, EVALUATION_FILE), "w") as stream:
                json.dump({"metrics": metrics, "evaluation": evaluation}, stream, default=float)
            prediction_table(result.model, {"val": prepared.val, "test": prepared.test}, prepared.classes,
                             correction=correction).to_csv(os.path.join(directory, PREDICTIONS_FILE), index=False)
        session.report(metrics, directory if session.rank == 0 else None, "final")


def mark_epoch(rank: int, epoch: int) -> None:
    """Fault-injection tests only (no-op unless $TL_TEST_MARKERS is set): after an epoch's report,
    touch DIR/rank<rank>-epoch<epoch>-pid<pid>, so a test can SIGKILL this process by its pid; with
    DIR:EPOCH, wait there (15 s) after that epoch the first time it is reached."""
    value = os.environ.get(FAULT_MARKERS)
    if not value:
        return
    directory, _, hold = value.partition(":")
    first = not any(name.startswith(f"rank{rank}-epoch{epoch}-") for name in os.listdir(directory))
    open(os.path.join(directory, f"rank{rank}-epoch{epoch}-pid{os.getpid()}"), "w").close()
    if hold and int(hold) == epoch and first:
        time.sleep(15)


def train_loop_per_worker(loop_config: dict) -> None:
    """A Ray Train worker (TorchTrainer's train_loop_per_worker): the trial body under DDP."""
    run_trial_body(loop_config, TrainSession())


def final_metrics(history: list[dict], best_epoch: int) -> dict:
    """The validation metrics of the best epoch (whose weights the model holds), marked final."""
    best = next((row for row in history if int(row["epoch"]) == int(best_epoch)), history[-1])
    metrics = {key: float(value) for key, value in best.items()}
    metrics["final"] = 1.0
    return metrics
