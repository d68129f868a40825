"""A full or unwritable storage mid-sweep (issue 15 item 4): told apart from other errors through
the wrappers it arrives in (no Ray), and end to end (slow): the project's sweep (one scratch
study) on a 64 MB tmpfs that is filled while its trials run stops with one line and status 75; after space
is freed, --resume finishes with every trial once, every epoch once and nothing left RUNNING."""

import errno
import glob
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from tl.sweep.audit import audit
from tmpfs import mounted_tmpfs
from tl.sweep.driver import close_after
from tl.sweep.runs import SweepInterrupted
from tl.sweep.storage import EXIT_STORAGE, StorageFault, storage_fault, tune_state_intact

REPO = Path(__file__).parents[1]


def wrapped(inner: BaseException) -> MlflowException:
    """`inner` as MLflow's SQL store raises it: the cause of an MlflowException."""
    try:
        try:
            raise inner
        except BaseException as error:
            raise MlflowException("(raised as a result of Query-invoked autoflush) ...") from error
    except MlflowException as outer:
        return outer


@pytest.mark.parametrize("inner, reason", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    (sqlite3.OperationalError("database or disk is full"), "no space left on the device"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "read-only file system"),
    (RuntimeError("ray.exceptions.RayTaskError: OSError: [Errno 28] No space left on device"),
     "no space left on the device"),
])
def test_a_storage_fault_is_found_through_the_errors_wrapping_it(inner, reason):
    assert storage_fault(inner) == reason
    assert storage_fault(wrapped(inner)) == reason


@pytest.mark.parametrize("error", [ValueError("bad value"), OSError(errno.ENOENT, "No such file"),
                                   sqlite3.OperationalError("no such table: runs"), KeyboardInterrupt()])
def test_other_errors_are_not_storage_faults(error):
    assert storage_fault(error) is None
    assert storage_fault(wrapped(error)) is None


def test_an_error_chain_with_a_cycle_ends():
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert storage_fault(first) is None


class FakeRuns:
    def __init__(self, closing_error=None):
        self.closing_error, self.closed = closing_error, []

    def close(self, status):
        self.closed.append(status)
        if self.closing_error:
            raise self.closing_error


def test_a_storage_fault_becomes_one_line_naming_the_places_even_when_the_runs_cannot_be_closed():
    full = wrapped(sqlite3.OperationalError("database or disk is full"))
    runs = FakeRuns(closing_error=wrapped(sqlite3.OperationalError("database or disk is full")))
    with pytest.raises(StorageFault) as raised:
        close_after(runs, full, ["/data/out", "/data/out/tune", "http://mlflow:5000"])
    message = str(raised.value)
    assert "\n" not in message and "no space left on the device under /data/out or /data/out/tune;" in message
    assert "http://" not in message and "--resume" in message
    assert runs.closed == ["FAILED"]


def test_other_errors_close_the_runs_and_are_left_to_the_caller():
    runs = FakeRuns()
    close_after(runs, ValueError("a bug"), ["/out"])  # returns: the caller re-raises the original
    close_after(runs, SweepInterrupted("ctrl-c"), ["/out"])
    assert runs.closed == ["FAILED", "KILLED"]
    broken = FakeRuns(closing_error=RuntimeError("store gone"))
    with pytest.raises(RuntimeError, match="store gone"):
        close_after(broken, ValueError("a bug"), ["/out"])


def a_tune_state(tmp_path) -> Path:
    experiment = tmp_path / "tune" / "study"
    experiment.mkdir(parents=True)
    (experiment / "experiment_state-1.json").write_text(json.dumps({"trial_data": [[1, 2]] * 50}))
    (experiment / "searcher-state-1.pkl").write_bytes(pickle.dumps({"trials": list(range(100))}))
    (experiment / "search_gen_state-1.json").write_bytes(pickle.dumps({"a pickle": "named .json"}))
    (experiment / "tune_trial_1").mkdir()  # trial directories are not read
    return experiment


@pytest.mark.parametrize("truncate", [None, "experiment_state-1.json", "searcher-state-1.pkl",
                                      "search_gen_state-1.json"])
def test_a_tune_state_truncated_by_a_full_disk_is_found(tmp_path, truncate):
    experiment = a_tune_state(tmp_path)
    if truncate:
        content = (experiment / truncate).read_bytes()
        (experiment / truncate).write_bytes(content[: len(content) // 2])
    assert tune_state_intact(str(tmp_path / "tune"), "study") is (truncate is None)
    assert tune_state_intact(str(tmp_path / "tune"), "never-started")


# --- end to end -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs under tmp_path."""
    with mounted_tmpfs(tmp_path / "disk", "size=64m") as mount:
        yield mount


def fill(disk: Path) -> Path:
    """Write zeros to `disk` until it refuses (ENOSPC); returns the filler file."""
    filler = disk / "filler"
    with open(filler, "wb") as stream:
        try:
            while True:
                stream.write(b"\0" * (1 << 20))
                stream.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def sweep(out: Path, *flags: str, timeout: float = 600) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "sweeps" / "ztf_to_lsst.py"), "--smoke-test", "--fractions", "1.0",
               "--modes", "scratch", "--out", str(out), *flags]
    return subprocess.Popen(command, cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_disk_filled_mid_study_stops_the_sweep_with_one_line_and_resume_finishes_it(small_disk):
    out = small_disk / "sweep"
    running = sweep(out)
    deadline = time.monotonic() + 500
    # the moment: a trial of the fraction study has saved an epoch checkpoint (trials are running)
    while not glob.glob(str(out / "tune" / "*-f*" / "*" / "checkpoint_*")):
        assert running.poll() is None, running.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no fraction-study checkpoint within 500 s"
        time.sleep(0.2)
    filler = fill(small_disk)
    stdout, stderr = running.communicate(timeout=600)
    assert running.returncode == EXIT_STORAGE, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith("ztf_to_lsst: error: storage: no space left on the device under ")
    assert str(out) in lines[0] and "--resume" in lines[0]
    assert not (out / "report" / "summary.json").exists(), "no report from a sweep that stopped"

    os.remove(filler)
    resumed = sweep(out, "--resume")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    assert (out / "report" / "summary.json").exists()
    figures = audit(f"sqlite:///{out / 'mlflow.db'}")
    assert figures["trials"] == 2, figures  # the one study's 2 trials
    assert figures["trials_finished"] == figures["trials"]
    assert figures["runs_not_finished"] == 0
    assert figures["runs_duplicated"] == 0
    assert figures["epochs_missing_or_doubled"] == 0
