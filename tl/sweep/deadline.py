"""The sweep's --time-budget as a Tune stopper that reads its deadline from a file.

Tune pickles a study's TuneConfig and RunConfig and restores them as they were: a study interrupted
(Ctrl-C) and restored by --resume would keep the TuneConfig.time_budget_s of the run that started
it. This stopper is restored too, but it reads the deadline (Unix time) from `path` at every check,
and the sweep rewrites that file at each start: a restored study obeys the budget of the run that
resumed it."""

from __future__ import annotations

import os
import time

from ray import tune

from tl.atomic import write_file


def write_deadline(path: str, budget_s: float | None) -> None:
    """Set the deadline to now + `budget_s`; None removes it (no deadline)."""
    if budget_s is None:
        if os.path.exists(path):
            os.remove(path)
        return
    write_file(path, lambda stream: stream.write(repr(time.time() + budget_s)), "w")


def read_deadline(path: str) -> float | None:
    try:
        with open(path) as stream:
            return float(stream.read())
    except FileNotFoundError:
        return None


def deadline_passed(path: str) -> bool:
    deadline = read_deadline(path)
    return deadline is not None and time.time() >= deadline


class DeadlineStopper(tune.Stopper):
    """Stops the whole study once the deadline in `path` has passed; no file, no deadline."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return deadline_passed(self.path)
