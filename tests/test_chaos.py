"""The chaos run's CI version (benchmarks/chaos_sweep.py; slow): the project's sweep (one scratch
study of 4 trials, 2 at a time) on a 3-node local cluster whose two worker nodes are both SIGKILLed
(and replaced) twice, the first time as soon as a trial has saved an epoch. Every trial finishes,
Tune restored the lost ones, and the store has one run per trial with every epoch once."""

import pytest

from scripts import load_script
from test_cluster_autoscaling import ray_env  # noqa: F401  (the shared local Ray is stopped meanwhile)

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("ray_env")
def test_a_sweep_finishes_every_trial_while_worker_nodes_are_killed(tmp_path):
    chaos = load_script("benchmarks/chaos_sweep.py")
    args = chaos.parse(["--kill-every", "10,20", "--max-kills", "2", "--victims", "2", "--out", str(tmp_path / "sweep"),
                        "--", "--fractions", "1.0", "--modes", "scratch", "--num-samples", "4", "--epochs", "20"])
    figures = chaos.run_chaos(args)
    assert figures["sweep_exit_status"] == 0
    assert figures["node_kills"] >= 1
    assert figures["restarts"] >= 1, "the first kill lands while a trial runs"
    assert figures["trials"] == 4
    assert figures["trials_finished"] == figures["trials"]
    assert figures["runs_not_finished"] == 0
    assert figures["runs_duplicated"] == 0
    assert figures["epochs_missing_or_doubled"] == 0
