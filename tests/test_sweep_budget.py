"""The sweep's bookkeeping when --time-budget stops a study: no Ray, the Tune study is faked.

A study counts as done only when all its trials ended. One cut short by the budget gets no
champion and, on --resume, starts again under a new Tune name after its partial trials' MLflow runs
are deleted (Tune marks trials stopped at the deadline as terminated, so restoring would run
nothing). An early stop without the budget running out is an interruption: an error telling the
user to resume.
"""

import pytest
from mlflow.tracking import MlflowClient

import tl.sweep.stages
from tl.errors import TLError
from tl.sweep import tracking
from tl.sweep.deadline import write_deadline
from tl.sweep.resources import plan_resources
from tl.sweep.runs import SweepRuns
from tl.sweep.spec import SweepSpec
from tl.sweep.stages import SweepContext, study_stage
from tl.sweep.study import Study

STUDY = Study(0.25, "scratch", 0)
STAGE = STUDY.key
PAST, FUTURE = -1, 3600


class FakeStudies:
    """Stands in for tl.sweep.search.run_study (each call ends `trials_that_end` trials) and the
    champion registration; records the Tune names and the champions."""

    def __init__(self, monkeypatch, trials_that_end: int):
        self.trials_that_end, self.names, self.champions = trials_that_end, [], []
        monkeypatch.setattr(tl.sweep.stages, "run_study", self.run_study)
        monkeypatch.setattr(tl.sweep.stages, "log_importances", lambda *args: None)
        monkeypatch.setattr(tl.sweep.stages, "register_champion", lambda *args: self.champions.append(args[3].key))

    def run_study(self, *, name, logger, num_samples, **_):
        self.names.append(name)
        for trial in range(num_samples):  # the trials that did not end stay RUNNING, as under Tune
            ended = {tracking.OUTCOME: "completed"} if trial < self.trials_that_end else {}
            run_id = tracking.child_run(logger.client, logger.experiment_id, logger.parent_run_id,
                                        f"trial-{trial}", {tracking.STAGE: logger.study.key, **ended})
            if ended:
                logger.client.set_terminated(run_id, "FINISHED")


def make_sweep(tmp_path, resume=False) -> SweepContext:
    spec = SweepSpec(name="budget", source_data="source", target_data="target", out=str(tmp_path),
                     num_samples=2, resume=resume)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = SweepRuns.open(MlflowClient(uri), "budget", str(tmp_path), resume, {},
                          {"source_dataset": "source@0", "target_dataset": "target@1"})
    if not resume:
        runs.state.sweep_run_id = tracking.child_run(runs.client, runs.experiment_id, None, "sweep", {})
        runs.state.run_token = "test"
    return SweepContext(spec, runs, uri, str(tmp_path / "tune"), plan_resources({"CPU": 2}, 1), "tune",
                        {"source": "0" * 64, "target": "1" * 64})


def run(sweep: SweepContext, seconds_to_deadline: float) -> None:
    write_deadline(sweep.runs.deadline_file, seconds_to_deadline)  # as run_sweep does from --time-budget
    study_stage(sweep, STUDY, None, None, None)


def stage_runs(sweep: SweepContext) -> list:
    return tracking.find_runs(sweep.runs.client, sweep.runs.experiment_id, {tracking.STAGE: STAGE})


def test_a_study_whose_trials_all_ended_is_done_with_a_champion(tmp_path, monkeypatch):
    studies, sweep = FakeStudies(monkeypatch, trials_that_end=2), make_sweep(tmp_path)
    run(sweep, PAST)
    assert sweep.runs.state.done == [STAGE] and sweep.runs.skipped == []
    assert studies.champions == [STAGE] and studies.names == ["test-f0.25-scratch-s0"]


def test_a_study_cut_short_by_the_budget_is_not_done(tmp_path, monkeypatch):
    studies, sweep = FakeStudies(monkeypatch, trials_that_end=1), make_sweep(tmp_path)
    run(sweep, PAST)
    assert STAGE not in sweep.runs.state.done
    assert sweep.runs.skipped == [STAGE] and studies.champions == []
    statuses = sorted(run.info.status for run in stage_runs(sweep))
    assert statuses == ["FINISHED", "KILLED"]  # the stopped trial is not left RUNNING


def test_resume_runs_a_cut_study_again_under_a_new_name_without_its_partial_trials(tmp_path, monkeypatch):
    studies = FakeStudies(monkeypatch, trials_that_end=1)
    run(make_sweep(tmp_path), PAST)
    cut_trials = [run.info.run_id for run in stage_runs(make_sweep(tmp_path, resume=True))]
    assert len(cut_trials) == 2

    studies.trials_that_end = 2
    resumed = make_sweep(tmp_path, resume=True)
    run(resumed, FUTURE)
    assert studies.names == ["test-f0.25-scratch-s0", "test-f0.25-scratch-s0-r1"]
    assert resumed.runs.state.done == [STAGE] and studies.champions == [STAGE]
    remaining = [run.info.run_id for run in stage_runs(resumed)]
    assert len(remaining) == 2 and not set(cut_trials) & set(remaining)


def test_a_study_cut_short_before_the_deadline_is_an_interruption(tmp_path, monkeypatch):
    FakeStudies(monkeypatch, trials_that_end=1)
    sweep = make_sweep(tmp_path)
    with pytest.raises(TLError, match="--resume"):
        run(sweep, FUTURE)
    assert STAGE not in sweep.runs.state.done


def test_runs_of_another_sweep_in_the_same_experiment_do_not_count(tmp_path, monkeypatch):
    FakeStudies(monkeypatch, trials_that_end=2)
    run(make_sweep(tmp_path / "first"), PAST)
    other = make_sweep(tmp_path / "first")  # same MLflow store and experiment, a new sweep
    FakeStudies(monkeypatch, trials_that_end=1)
    with pytest.raises(TLError, match="1 of 2 trials ended"):
        run(other, FUTURE)
