"""The sweep's stages and typed state without Ray: the Tune study is faked, MLflow is a SQLite store.

Each test here failed on the sweep before tl/sweep/: the freeze-depth range and the logged model
params came from the sweep's settings instead of the base model actually used; trial MODEL_DIRs had
no lineage; a scratch-only sweep resumed with transfer looked for a base run called "none".
"""

import json

import pytest
from mlflow.tracking import MlflowClient

import tl.sweep.stages
from tl.errors import TLError
from tl.config import Config
from tl.model import max_freeze_depth
from tl.sweep import tracking
from tl.sweep.resources import plan_resources
from tl.sweep.runs import SweepRuns
from tl.sweep.space import make_space
from tl.sweep.spec import SweepSpec
from tl.sweep.stages import BaseModel, SweepContext, base_model, study_stage
from tl.sweep.state import SweepState
from tl.sweep.study import Study
from tl.sweep.trial_logger import TrialLogger

SWEEP_SETTINGS = {"model.gru_layers": 2, "model.gru_hidden": 16}
BASE_SETTINGS = {"model.gru_layers": 1, "model.gru_hidden": 8}  # another architecture


def make_sweep(tmp_path, resume=False, **spec_fields) -> SweepContext:
    spec = SweepSpec(name="stages", source_data="source", target_data="target", out=str(tmp_path),
                     num_samples=1, resume=resume, overrides=dict(SWEEP_SETTINGS), **spec_fields)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = SweepRuns.open(MlflowClient(uri), "stages", str(tmp_path), resume, {"tl.git_commit": "abc"},
                          {"source_dataset": "source@0", "target_dataset": "target@1"})
    if runs.state.sweep_run_id is None:
        runs.start("stages", {})
    return SweepContext(spec, runs, uri, str(tmp_path / "tune"), plan_resources({"CPU": 2}, 1), "tune",
                        {"source": "0" * 64, "target": "1" * 64})


class RecordedStudy:
    """Stands in for run_study: records its arguments and logs one trial through the real logger."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(tl.sweep.stages, "run_study", self)
        monkeypatch.setattr(tl.sweep.stages, "log_importances", lambda *args: None)
        monkeypatch.setattr(tl.sweep.stages, "register_champion", lambda *args: None)

    def __call__(self, *, logger: TrialLogger, **arguments):
        self.calls.append({"logger": logger, **arguments})
        trial = type("Trial", (), {"trial_id": f"t{len(self.calls)}", "config": {"transfer.freeze_depth": 1}})()
        run_id = logger.run_id(trial)
        logger.client.set_tag(run_id, tracking.OUTCOME, "completed")


def test_transfer_trials_search_and_log_the_base_models_architecture(tmp_path, monkeypatch):
    studies = RecordedStudy(monkeypatch)
    sweep = make_sweep(tmp_path)
    base = BaseModel("base-run", b"archive", "d" * 64, Config().override(BASE_SETTINGS))
    study_stage(sweep, Study(0.5, "transfer", 0), None, None, base)
    (call,) = studies.calls
    assert call["config"].model.gru_layers == 1  # the space is built for the base model's blocks
    deepest = make_space("transfer", call["config"]).deepest_freeze
    assert deepest == max_freeze_depth(Config().override(BASE_SETTINGS).model)
    assert deepest < max_freeze_depth(Config().override(SWEEP_SETTINGS).model)
    (trial,) = tracking.find_runs(sweep.runs.client, sweep.runs.experiment_id, {tracking.ROLE: "trial"})
    assert trial.data.params["model.gru_layers"] == "1" and trial.data.params["model.gru_hidden"] == "8"
    assert trial.data.tags["base_run_id"] == "base-run"


def test_every_trial_payload_carries_its_lineage(tmp_path, monkeypatch):
    studies = RecordedStudy(monkeypatch)
    sweep = make_sweep(tmp_path)
    study_stage(sweep, Study(0.25, "scratch", 1), "target-ref", None, None)
    payload = studies.calls[0]["payload"]
    assert payload.info["study"] == "0.25/scratch/1" and payload.info["lineage"] == {"tl.git_commit": "abc"}
    assert payload.info["target_dataset"] == "target@1" and payload.target_hash == "1" * 64
    loop = payload.loop_config({"train.lr": 1e-3})
    assert loop["info"] == payload.info and loop["overrides"]["data.target_fraction"] == 0.25


def test_a_scratch_only_sweep_resumed_with_transfer_trains_its_base_model(tmp_path, monkeypatch):
    sweep = make_sweep(tmp_path, modes=("scratch",))
    sweep.runs.save()
    state = json.loads((tmp_path / "sweep_state.json").read_text())
    assert state["base_run_id"] is None  # not the string "none"
    trained = []
    monkeypatch.setattr(tl.sweep.stages, "_train_base", lambda sweep, ref: trained.append(ref) or "new-base")
    resumed = make_sweep(tmp_path, resume=True, modes=("transfer", "scratch"))
    with pytest.raises(TLError, match="base run new-base: no model_dir"):
        base_model(resumed, "source-ref")  # the fake base run has no artifact to download
    assert trained == ["source-ref"] and resumed.runs.state.base_run_id == "new-base"


def test_state_written_by_the_untyped_sweep_still_loads(tmp_path):
    path = tmp_path / "sweep_state.json"
    path.write_text(json.dumps({"fraction_runs": {"1": "f"}, "done": ["1/scratch/0"], "sweep_run_id": "s",
                                "run_token": "s", "base_run_id": "none"}))
    state = SweepState.load(str(path))
    assert state.base_run_id is None and state.done == ["1/scratch/0"] and state.attempts == {}
    state.save(str(path))
    assert SweepState.load(str(path)) == state


def test_unknown_state_entries_are_an_error_naming_the_file(tmp_path):
    path = tmp_path / "sweep_state.json"
    path.write_text(json.dumps({"done": [], "surprise": 1}))
    with pytest.raises(TLError, match="sweep_state.json: unknown entries"):
        SweepState.load(str(path))


def test_every_name_of_a_study_derives_from_it():
    study = Study(0.05, "transfer", 2)
    assert study.key == "0.05/transfer/2"
    assert study.tune_name("abcd") == "abcd-f0.05-transfer-s2" and study.tune_name("abcd", 1).endswith("-r1")
    assert study.registered_name("bts") == "bts-transfer-0.05"
    assert study.trial_run_name(3) == "transfer f=0.05 s2 #3" and Study.base().trial_run_name(1) == "base"
    assert Study(0.05, "transfer", 2, fold=3).label == "transfer f=0.05 s2 k3"
    assert Study(0.05, "transfer", 2, fold=3).key == "0.05/transfer/2/k3"
    assert Study.base().key == "base" and Study.base().tune_name("abcd") == "abcd-base"
    with pytest.raises(ValueError):
        Study(0.5, "finetune")


def test_seeds_mean_one_thing_each():
    """Replicate r: one subset draw for every fraction and mode (nested, paired subsets), its own
    initialisation per mode, and a sampler seed that no other study of the grid shares."""
    grid = [Study(f, mode, seed, fold) for f in (0.02, 0.05, 1.0) for mode in ("transfer", "scratch")
            for seed in range(3) for fold in (None, 0, 1)]
    assert len({study.sampler_seed for study in grid}) == len(grid)
    for study in grid:
        assert study.subset_seed == study.seed
        assert study.init_seed == Study(1.0, study.mode, study.seed).init_seed  # not tied to the fraction
    assert len({Study(1.0, mode, seed).init_seed for mode in ("transfer", "scratch") for seed in range(3)}) == 6
    overrides = Study(0.05, "scratch", 2, fold=1).overrides(folds=5)
    assert overrides == {"data.target_fraction": 0.05, "data.seed": 2, "train.seed": Study(0.05, "scratch", 2).init_seed,
                         "data.folds": 5, "data.fold": 1}
    Config().override(overrides)  # valid settings


@pytest.mark.parametrize("folds, fold", [(0, None), (3, 1)])
def test_the_zero_shot_point_equals_evaluating_the_base_model_directly(tmp_path, folds, fold):
    from tl.data import write_dataset
    from tl.experiment import prepare
    from tl.modeldir import save_model_dir
    from tl.sweep.stages import zero_shot_stage
    from tl.sweep.worker import pack_directory
    from tl.training import fit
    from toy import make_toy_dataset

    tiny = {"train.epochs": 2, "model.gru_hidden": 8, "model.gru_layers": 1, "data.max_length": 30}
    prepared = prepare(Config().override(tiny), make_toy_dataset(10, seed=1))
    save_model_dir(str(tmp_path / "base"), prepared, fit(prepared).model)
    target = make_toy_dataset(10, seed=2)
    write_dataset(target, str(tmp_path / "target"), **target.meta)
    archive = pack_directory(str(tmp_path / "base"))
    base = BaseModel("base-run", archive, "d" * 64, Config().override(tiny))
    sweep = make_sweep(tmp_path / "sweep", folds=folds)
    zero_shot_stage(sweep, base, target, fold)
    (run,) = tracking.find_runs(sweep.runs.client, sweep.runs.experiment_id, {tracking.ROLE: "zero_shot"})
    zero_shot_stage(sweep, base, target, fold)  # done: not logged twice
    assert len(tracking.find_runs(sweep.runs.client, sweep.runs.experiment_id, {tracking.ROLE: "zero_shot"})) == 1

    # The same point computed directly: the base model's head read by class name on the fold's test
    # split, by hand (the target's classes are the base's here, so no class is missing).
    from tl.data import splits_for
    from tl.encoding import encode
    from tl.evaluation import evaluate
    from tl.modeldir import load_model_dir

    loaded = load_model_dir(str(tmp_path / "base"))
    test = splits_for(target, folds, fold or 0).split("test")
    direct = evaluate(loaded.model, encode(test, loaded.classes, loaded.normalizer, 30), loaded.classes)
    assert sorted(loaded.classes) == sorted(set(target.objects["label"]))
    assert run.data.metrics["test_macro_f1"] == pytest.approx(direct["macro_f1"], abs=1e-12)
    assert int(run.data.params["data.fold"]) == (fold or 0)
