"""Chaos run: the project's sweep on a 3-node local Ray cluster while worker nodes are killed.

    python benchmarks/chaos_sweep.py [--kill-every 20,40] [--first-kill S] [--max-kills 0] [--seed 0] \
        [--out /tmp/chaos] [--json benchmarks/results/chaos/chaos.json] [-- extra sweep flags]

A `ray.cluster_utils.Cluster` with a head that runs nothing (0 CPUs) and two worker nodes of
--node-cpus logical CPUs each runs `sweeps/ztf_to_lsst.py --smoke-test --executor tune` with
--max-failures retries per trial. From the first epoch checkpoint of a fraction study's trial (or
--first-kill seconds) on, every U(--kill-every) seconds a random worker node (or both: --victims 2) is killed
(SIGKILL of its raylet and workers: `remove_node(allow_graceful=False)`) and a fresh one is added,
as a spot cluster's autoscaler would (Ray's release chaos tests do the same with their node killer).
When the sweep has ended, its MLflow store is audited (`tl.sweep.audit`): trials, their states, restarts
(tag tl.restarts), epochs reported again after a restore (tag tl.epochs_repeated), epochs
missing from a trial's metric history, and duplicated runs (two runs of one Tune trial id).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from tl.sweep.audit import audit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--kill-every", default="20,40", help="seconds between node kills: LOW,HIGH (uniform)")
    parser.add_argument("--first-kill", type=float, default=None,
                        help="seconds to the first kill (default: when a fraction study's trial has checkpointed)")
    parser.add_argument("--max-kills", type=int, default=0, help="stop killing after this many (0: no limit)")
    parser.add_argument("--node-cpus", type=int, default=1, help="logical CPUs per worker node")
    parser.add_argument("--victims", type=int, default=1, choices=(1, 2),
                        help="worker nodes killed at each kill (2: both, as when a zone's spot nodes are reclaimed)")
    parser.add_argument("--max-failures", type=int, default=50, help="the sweep's --max-failures")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="the sweep's --out (default: a temp dir, removed)")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("sweep_flags", nargs="*", help="after --: more flags for sweeps/ztf_to_lsst.py")
    return parser.parse_args(argv)


class NodeKiller:
    """Kills a random worker node of `cluster` every U(low, high) s and adds a replacement. Call
    `poll` from the main thread: Cluster.add_node installs signal handlers."""

    def __init__(self, cluster, low: float, high: float, first: float | None, max_kills: int, node_cpus: int,
                 seed: int, tune_dir: str, victims: int = 1):
        self.cluster, self.low, self.high, self.tune_dir, self.victims = cluster, low, high, tune_dir, victims
        self.max_kills, self.node_cpus = max_kills, node_cpus
        self.rng = random.Random(seed)
        self.next_kill = first  # seconds since the start; None: at the first fraction checkpoint
        self.kills: list[float] = []  # seconds since the start of each kill

    def fraction_trial_checkpointed(self) -> bool:
        """A trial of a fraction study (2 trials at a time: both nodes busy) has saved an epoch."""
        return bool(glob.glob(os.path.join(self.tune_dir, "*-f*", "*", "checkpoint_*")))

    def poll(self, elapsed: float) -> None:
        if self.max_kills and len(self.kills) >= self.max_kills:
            return
        if self.next_kill is None and self.fraction_trial_checkpointed():
            self.next_kill = elapsed
        if self.next_kill is None or elapsed < self.next_kill:
            return
        nodes = sorted(self.cluster.worker_nodes, key=lambda node: node.unique_id)
        for victim in self.rng.sample(nodes, self.victims):
            self.cluster.remove_node(victim, allow_graceful=False)
        self.kills.append(round(elapsed, 1))
        for _ in range(self.victims):
            self.cluster.add_node(num_cpus=self.node_cpus)
        self.next_kill = elapsed + self.rng.uniform(self.low, self.high)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_chaos(args) -> dict:
    """Start the cluster (its own Ray temp dir and auth-free env), run the sweep under the node
    killer, shut everything down and restore the environment; returns the figures."""
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="tlchaos", dir="/tmp")  # Ray's socket paths must stay < 108 chars
    saved = dict(os.environ)
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_TMPDIR=temp, TUNE_DISABLE_AUTO_CALLBACK_LOGGERS="1")
    os.environ.pop("RAY_ADDRESS", None)
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "dashboard_port": free_port()})
        for _ in range(2):
            cluster.add_node(num_cpus=args.node_cpus)
        return sweep_under_kills(cluster, args, args.out or os.path.join(temp, "sweep"), temp)
    finally:
        if cluster is not None:
            cluster.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(temp, ignore_errors=True)


def sweep_under_kills(cluster, args, out: str, temp: str) -> dict:
    low, high = (float(value) for value in args.kill_every.split(","))
    command = [sys.executable, os.path.join(REPO, "sweeps", "ztf_to_lsst.py"), "--smoke-test",
               "--address", cluster.address, "--executor", "tune", "--max-failures", str(args.max_failures),
               "--out", out, *args.sweep_flags]
    killer = NodeKiller(cluster, low, high, args.first_kill, args.max_kills, args.node_cpus, args.seed,
                        os.path.join(out, "tune"), args.victims)
    log_path = os.path.join(temp, "sweep.log")
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=temp, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            killer.poll(time.monotonic() - started)
            time.sleep(0.5)
    code = process.returncode
    if code != 0:
        with open(log_path) as log:
            sys.stderr.write(log.read()[-3000:])
    return {"sweep_exit_status": code, "node_kills": len(killer.kills), "kill_times_s": killer.kills,
            "wall_s": round(time.monotonic() - started, 1), **audit(f"sqlite:///{out}/mlflow.db")}


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    figures = run_chaos(args)
    figures.update(date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), load_average=os.getloadavg(),
                   machine=f"{os.cpu_count()} cores", kill_every_s=args.kill_every, node_cpus=args.node_cpus)
    print(json.dumps(figures, indent=2))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as stream:
            json.dump(figures, stream, indent=2)
    return 0 if figures["sweep_exit_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
