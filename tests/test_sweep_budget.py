"""The sweep's bookkeeping when --time-budget stops a study: no Ray, the Tune study is faked.

A study counts as done only when all its trials ended; one cut short by the budget stays open, so
--resume continues it, and it gets no champion. An early stop without the budget running out is an
interruption (an error telling the user to resume).
"""

import time

import pytest

import tl.search
import tl.sweep_results
from tl import tracking
from tl.errors import TLError
from tl.sweep import Sweep, SweepSpec

STAGE = "0.25/scratch/0"


def make_sweep(tmp_path, monkeypatch, trials_that_end: int):
    """A Sweep on a fresh SQLite store whose studies end `trials_that_end` trials of 2."""
    champions = []

    def fake_run_study(*, logger, **_):
        for trial in range(trials_that_end):
            tracking.child_run(logger.client, logger.experiment_id, logger.parent_run_id, f"trial-{trial}",
                               {tracking.STAGE: logger.stage, tracking.OUTCOME: "completed"})

    monkeypatch.setattr(tl.search, "run_study", fake_run_study)
    monkeypatch.setattr(tl.sweep_results, "log_importances", lambda *args: None)
    monkeypatch.setattr(tl.sweep_results, "register_champion", lambda *args: champions.append(args[3]))
    spec = SweepSpec(name="budget", source_data="source", target_data="target", out=str(tmp_path),
                     num_samples=2)
    sweep = Sweep(spec, str(tmp_path), f"sqlite:///{tmp_path}/mlflow.db", str(tmp_path / "tune"),
                  {"source": "0" * 64, "target": "1" * 64}, tl.search.plan_resources({"CPU": 2}, 1))
    sweep.state.update(sweep_run_id=tracking.child_run(sweep.client, sweep.experiment_id, None, "sweep", {}),
                       run_token="test", base_run_id="none")
    return sweep, champions


def test_a_study_cut_short_by_the_budget_stays_open_for_resume(tmp_path, monkeypatch):
    sweep, champions = make_sweep(tmp_path, monkeypatch, trials_that_end=1)
    sweep.study(0.25, "scratch", 0, None, None, deadline=time.monotonic() - 1)
    assert STAGE not in sweep.state["done"]
    assert sweep.skipped == [STAGE]
    assert champions == []


def test_a_study_whose_trials_all_ended_is_done_with_a_champion(tmp_path, monkeypatch):
    sweep, champions = make_sweep(tmp_path, monkeypatch, trials_that_end=2)
    sweep.study(0.25, "scratch", 0, None, None, deadline=time.monotonic() - 1)
    assert sweep.state["done"] == [STAGE]
    assert sweep.skipped == []
    assert champions == [STAGE]


def test_a_study_cut_short_before_the_deadline_is_an_interruption(tmp_path, monkeypatch):
    sweep, champions = make_sweep(tmp_path, monkeypatch, trials_that_end=1)
    with pytest.raises(TLError, match="--resume"):
        sweep.study(0.25, "scratch", 0, None, None, deadline=time.monotonic() + 3600)
    assert STAGE not in sweep.state["done"]
