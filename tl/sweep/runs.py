"""The sweep driver's record of what ran: the MLflow run hierarchy and the resume state.

MLflow layout (tl.sweep.tracking): experiment `spec.name`; sweep run -> base run, and sweep run ->
fraction run -> trial runs (both modes, tagged `mode`). Resume state: `<out>/sweep_state.json`
(tl.sweep.state). A study cut by --time-budget is started again under a new Tune name on --resume
(`attempt_name`): Tune marks the trials it stopped at a deadline as finished, so restoring it
would run nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mlflow.tracking import MlflowClient

from tl.errors import TLError
from tl.sweep import tracking
from tl.sweep.deadline import deadline_passed
from tl.sweep.state import STATE_FILE, SweepState
from tl.sweep.study import Study

DEADLINE_FILE = "deadline"


class SweepInterrupted(TLError):
    """A study stopped before its trials ended with time left (Ctrl-C): --resume continues."""  # --time-budget for the Tune studies (tl.sweep.deadline)


def dataset_tag(path: str, digest: str) -> str:
    """A data set's name in tags: its directory name and the start of its content hash."""
    return f"{os.path.basename(os.path.normpath(path))}@{digest[:12]}"


def sweep_run_name(name: str) -> str:
    return f"sweep {name}"


def fraction_run_name(fraction: float) -> str:
    """The parent run of one target fraction's trials: "f=0.25"."""
    return f"f={fraction:g}"


@dataclass
class SweepRuns:
    """MLflow runs and resume state of one sweep, written only by the driver."""
    client: MlflowClient
    experiment_id: str
    out: str
    state: SweepState
    lineage: dict  # tl.sweep.tracking.lineage_tags
    common_tags: dict  # lineage + source_dataset and target_dataset
    skipped: list[str] = field(default_factory=list)  # Study.key of studies not (fully) run

    @classmethod
    def open(cls, client: MlflowClient, experiment: str, out: str, resume: bool, lineage: dict,
             datasets: dict[str, str]) -> "SweepRuns":
        """`datasets`: {"source_dataset": tag, "target_dataset": tag} (dataset_tag)."""
        state = SweepState.load_or_new(os.path.join(out, STATE_FILE), resume)
        return cls(client, tracking.experiment_id(client, experiment), out, state, dict(lineage),
                   {**lineage, **datasets})

    @property
    def deadline_file(self) -> str:
        return os.path.join(self.out, DEADLINE_FILE)

    def save(self) -> None:
        self.state.save(os.path.join(self.out, STATE_FILE))

    def start(self, name: str, params: dict, description: str = "") -> None:
        """Open (or, on resume, reopen) the sweep run with the sweep's settings, lineage and
        `description` (the run's description in the MLflow UI)."""
        if self.state.sweep_run_id is not None:
            for run_id in (self.state.sweep_run_id, *self.state.fraction_runs.values()):
                self.client.update_run(run_id, status="RUNNING")
            return
        note = {tracking.NOTE: description} if description else {}
        run_id = tracking.child_run(self.client, self.experiment_id, None, sweep_run_name(name),
                                    {**self.common_tags, tracking.ROLE: "sweep", **note})
        tracking.log_params(self.client, run_id, params)
        self.state.sweep_run_id, self.state.run_token = run_id, run_id[:8]
        self.save()

    def fraction_run(self, fraction: float) -> str:
        key = f"{fraction:g}"
        if key not in self.state.fraction_runs:
            run_id = tracking.child_run(
                self.client, self.experiment_id, self.state.sweep_run_id, fraction_run_name(fraction),
                {**self.common_tags, tracking.ROLE: "fraction", "base_run_id": self.state.base_run_id or "none",
                 "data.target_fraction": key})
            tracking.log_params(self.client, run_id, {"data.target_fraction": fraction})
            self.state.fraction_runs[key] = run_id
            self.save()
        return self.state.fraction_runs[key]

    def parent_of(self, study: Study) -> str:
        return self.state.sweep_run_id if study.is_base else self.fraction_run(study.fraction)

    def study_runs(self, study: Study) -> list:
        return tracking.find_runs(self.client, self.experiment_id,
                                  {tracking.STAGE: study.key, "mlflow.parentRunId": self.parent_of(study)})

    def check_finished(self, study: Study, expected: int) -> bool:
        """Whether every trial of `study` ended; raise if it stopped early without the time budget
        running out (Ctrl-C: Tune stops and returns).

        Counted from MLflow, where every ended trial has an outcome, not from Tune's experiment
        state (whose last save can fail when interrupted)."""
        ended = [run for run in self.study_runs(study) if tracking.OUTCOME in run.data.tags]
        if len(ended) >= expected:
            return True
        if not deadline_passed(self.deadline_file):
            raise SweepInterrupted(f"sweep interrupted during {study.key} ({len(ended)} of {expected} trials ended); "
                          "rerun the same command with --resume")
        return False

    def cut_short(self, study: Study) -> None:
        """Record that --time-budget stopped `study`: the next run starts it again (attempt_name).

        Its trials stopped mid-run stay RUNNING in MLflow (Tune reports no end for them); they are
        marked KILLED so the UI shows no live run, and --resume deletes them."""
        for run in self.study_runs(study):
            if run.info.status == "RUNNING":
                self.client.set_tag(run.info.run_id, "tl.note", "stopped by --time-budget")
                self.client.set_terminated(run.info.run_id, "KILLED")
        self._new_attempt(study)
        self.skipped.append(study.key)
        print(f"tl sweep: {study.key} stopped by --time-budget before its trials ended")

    def start_again(self, study: Study, why: str) -> None:
        """Discard `study`'s current attempt now and start it again under a new Tune name."""
        self._new_attempt(study)
        print(f"tl sweep: {study.key}: {why}; the study starts again")

    def _new_attempt(self, study: Study) -> None:
        """The next attempt_name of `study` is a new Tune experiment; its current attempt's MLflow
        runs are deleted when that name is first asked for."""
        self.state.attempts[study.key] = self.state.attempts.get(study.key, 0) + 1
        self.state.restart.append(study.key)
        self.save()

    def attempt_name(self, study: Study) -> str:
        """The Tune experiment name of `study`'s current attempt; the MLflow runs of a cut
        attempt's partial trials are deleted first (once; a restart interrupted by Ctrl-C is
        restored as usual)."""
        if study.key in self.state.restart:
            for run in self.study_runs(study):
                self.client.delete_run(run.info.run_id)
            self.state.restart.remove(study.key)
            self.save()
        return study.tune_name(self.state.run_token, self.state.attempts.get(study.key, 0))

    def mark_done(self, study: Study) -> None:
        self.mark_done_key(study.key)

    def mark_done_key(self, key: str) -> None:
        self.state.done.append(key)
        self.save()

    def close(self, status: str = "FINISHED") -> None:
        """End the sweep run and its fraction runs (FINISHED, or FAILED / KILLED when the sweep
        stopped on an error or a Ctrl-C; --resume reopens them)."""
        for run_id in self.state.fraction_runs.values():
            self.client.set_terminated(run_id, status)
        if self.state.sweep_run_id is not None:
            self.client.set_terminated(self.state.sweep_run_id, status)
