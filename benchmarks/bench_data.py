"""Throughput (objects per second) and peak memory of the simulator and the ingesters at 10k and 100k objects.

    python benchmarks/bench_data.py [--sizes 10000,100000] [--kinds simulate-ztf,...] [--work DIR]
                                    [--json benchmarks/results/data/data.json]

Kinds: simulate-ztf, simulate-ztf-bts (--bts-like --alerts-only), simulate-lsst (tl.simulate.simulate
+ write_dataset, as `tl simulate` does), simulate-ztf-bts-matched (also --match-real $TL_BENCH_MATCH_REAL,
default /work/runs/bts: tl.realism.simulate_matched),
ingest-plasticc, ingest-bts (tl.ingest.ingest, as `tl ingest` does). Each measurement runs in a fresh
subprocess, so its peak resident memory (getrusage ru_maxrss) is its own and includes the interpreter
and imports (about 0.3 GB); the peak summed resident memory of the process and any worker
processes (sampled every 0.2 s from /proc) is reported too. The simulator runs with
`--workers $TL_BENCH_WORKERS` (default 1) where the measured code has that option. Ingest inputs of N objects are synthesised first (not timed) under --work
by replicating the real raw files of ../shared/data with new object ids: PLAsTiCC metadata rows and
light-curve rows (id + k * 10**9), BTS catalogue rows and light-curve files (ZTFID + "_k", files
hard-linked). Objects per second counts source objects (raw rows in, before the taxonomy's drops);
the kept count is reported too. The work folder is deleted at the end unless --keep.
`--code DIR[,DIR...]` measures each kind with the `tl` package found in each DIR (e.g. an export of
main's tl/ next to this tree's), one after the other in the same run, so old/new ratios share the
machine's load; every row records its code folder, the UTC time and `uptime`'s load averages.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KINDS = ("simulate-ztf", "simulate-ztf-bts", "simulate-lsst", "ingest-plasticc", "ingest-bts", "simulate-ztf-bts-matched")
ID_OFFSET = 10**9  # PLAsTiCC training ids are < 2 * 10**8


# ------------------------------------------------------------------ synthetic raw inputs (not timed)

def synthesise_plasticc(src: str, n: int, out: str) -> str:
    """A plasticc/ folder of n objects: the real metadata and light curves replicated with new ids."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    metadata = pacsv.read_csv(os.path.join(src, "plasticc_train_metadata.csv"))
    curves = pacsv.read_csv(os.path.join(src, "plasticc_train_lightcurves.csv.gz"))
    copies = math.ceil(n / metadata.num_rows)
    meta_parts, curve_parts = [], []
    for copy in range(copies):
        take = min(metadata.num_rows, n - copy * metadata.num_rows)
        part = metadata.slice(0, take)
        offset = pa.scalar(copy * ID_OFFSET, pa.int64())
        ids = part["object_id"].cast(pa.int64())
        meta_parts.append(part.set_column(0, "object_id", pc.add(ids, offset)))
        chosen = curves.filter(pc.is_in(curves["object_id"].cast(pa.int64()), value_set=ids))
        curve_parts.append(chosen.set_column(0, "object_id", pc.add(chosen["object_id"].cast(pa.int64()), offset)))
    os.makedirs(out)
    pacsv.write_csv(pa.concat_tables(meta_parts), os.path.join(out, "plasticc_train_metadata.csv"))
    pacsv.write_csv(pa.concat_tables(curve_parts), os.path.join(out, "plasticc_train_lightcurves.csv"))
    return out


def synthesise_bts(src: str, n: int, out: str) -> str:
    """A bts/ folder of n objects: catalogue rows and light-curve files replicated as ZTFID_k."""
    import pandas as pd

    curves_dir = os.path.join(out, "lightcurves")
    originals = os.path.join(out, "originals")  # one private copy; replicas are hard links to it
    os.makedirs(curves_dir)
    shutil.copytree(os.path.join(src, "lightcurves"), originals)
    catalogues = {name: pd.read_csv(os.path.join(src, name), dtype=str, keep_default_na=False)
                  for name in ("bts_catalog_2021-09-22.csv", "bts_catalog_2021-04-02.csv")}
    with_curve = {path.stem for path in Path(originals).glob("*.csv")}
    ids = sorted(set(catalogues["bts_catalog_2021-09-22.csv"]["ZTFID"]) & with_curve)
    names = [(ztfid, ztfid if copy == 0 else f"{ztfid}_{copy}")
             for copy in range(math.ceil(n / len(ids))) for ztfid in ids][:n]
    for ztfid, name in names:
        os.link(os.path.join(originals, ztfid + ".csv"), os.path.join(curves_dir, name + ".csv"))
    replicated = pd.DataFrame(names, columns=["ZTFID", "name"])
    for file_name, catalogue in catalogues.items():
        rows = replicated.merge(catalogue, on="ZTFID", how="inner")
        rows = rows.assign(ZTFID=rows["name"]).drop(columns="name")
        rows.to_csv(os.path.join(out, file_name), index=False)
    return out


# ------------------------------------------------------------------ one measurement (child process)

def tree_rss_mib(root: int) -> float:
    """Resident memory (MiB) of process `root` and all its descendants, from /proc."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as stream:
                    fields = dict(line.split(":", 1) for line in stream if ":" in line)
            except OSError:  # exited meanwhile
                continue
            parents[int(entry)] = int(fields["PPid"])
            rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier and pid not in tree]
        tree.update(children)
        frontier = children
    return sum(rss.get(pid, 0.0) for pid in tree)


class TreeMemory:
    """Peak of tree_rss_mib(this process), sampled every 0.2 s in a thread while in the `with` block."""

    def __enter__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_mib(os.getpid()))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def simulator_workers() -> dict:
    """--workers as a keyword (from $TL_BENCH_WORKERS), where the measured code has workers."""
    import inspect

    import tl.simulate

    workers = int(os.environ.get("TL_BENCH_WORKERS", "1"))
    return {"workers": workers} if "workers" in inspect.signature(tl.simulate.simulate).parameters else {}


def measure(kind: str, n: int, src: str | None, work: str) -> dict:
    """Run one kind once in this process; returns seconds, counts and peak memory."""
    cpu_before = time.process_time()
    with TreeMemory() as memory:
        row = _measure(kind, n, src, work)
    # CPU seconds of this process (imports excluded): on a loaded machine a steadier measure than the wall time
    return {**row, "peak_tree_rss_mib": max(memory.peak, row["peak_rss_mib"]),
            "cpu_seconds": time.process_time() - cpu_before}


def _measure(kind: str, n: int, src: str | None, work: str) -> dict:
    from tl.data import write_dataset

    out = os.path.join(work, f"out-{kind}-{n}")
    start = time.perf_counter()
    if kind.startswith("simulate-"):
        from tl.simulate import simulate

        bts = kind.startswith("simulate-ztf-bts")
        workers = simulator_workers()
        if kind.endswith("-matched"):
            from tl.realism import simulate_matched

            dataset = simulate_matched("ztf", n, 0, os.environ.get("TL_BENCH_MATCH_REAL", "/work/runs/bts"),
                                       bts_like=True, alerts_only=True, **workers)
        else:
            dataset = simulate(kind.split("-")[1], n, seed=0, bts_like=bts, alerts_only=bts, **workers)
        simulated = time.perf_counter()
        dataset = write_dataset(dataset, out, **dataset.meta)
        source_objects = sum(dataset.meta["generated"].values())  # before the survey's selection
        phases = {"simulate_seconds": simulated - start, "write_seconds": time.perf_counter() - simulated,
                  "workers": workers.get("workers", 1)}
    else:
        from tl.ingest import ingest

        with contextlib.redirect_stdout(io.StringIO()):  # the drop table
            dataset = ingest(kind.split("-")[1], src, out, seed=0)
        source_objects = dataset.meta["n_source_objects"]
        phases = {}
    seconds = time.perf_counter() - start
    rows = n if kind.startswith("ingest-") else len(dataset.objects)
    return {"kind": kind, "n": n, "seconds": seconds, "objects_per_second": rows / seconds,
            "objects_kept": len(dataset.objects), "observations_kept": len(dataset.observations),
            "source_objects": int(source_objects), **phases,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(kind: str, n: int, src: str | None, work: str, code: str | None = None) -> dict:
    """`measure` in a fresh interpreter (with `tl` imported from `code` if given); its last stdout
    line is the JSON row."""
    command = [sys.executable, __file__, "--child", kind, "--n", str(n), "--work", work]
    if src:
        command += ["--src", src]
    environment = dict(os.environ)
    if code:
        environment["PYTHONPATH"] = os.pathsep.join([code, environment.get("PYTHONPATH", "")])
    load_before = os.getloadavg()[0]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"bench_data: {kind} n={n} failed:\n{done.stderr[-2000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update(process_seconds=time.perf_counter() - started, load_average_before=load_before,
               load_average_after=os.getloadavg()[0], uptime_before=uptime, code=code or "this tree",
               date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("TL_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--data", default=default_data, help="folder holding bts/ and plasticc/")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--code", default=None, help="comma-separated folders holding a tl/ to measure each")
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.n, args.src, args.work)))
        return 0

    kinds = args.kinds.split(",")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"--kinds: unknown {unknown[0]!r} (known: {', '.join(KINDS)})")
    work = args.work or tempfile.mkdtemp(prefix="tl-bench-data-")
    rows = []
    print(f"{'kind':<24} {'n':>7} {'kept':>7} {'seconds':>8} {'CPU s':>7} {'objects/s':>10} {'peak MiB':>9} "
          f"{'tree MiB':>9} {'load':>5}")
    try:
        for n in [int(size) for size in args.sizes.split(",")]:
            for kind in kinds:
                src = None
                if kind.startswith("ingest-"):
                    source = kind.split("-")[1]
                    synthesise = synthesise_plasticc if source == "plasticc" else synthesise_bts
                    src = synthesise(os.path.join(args.data, source), n, os.path.join(work, f"raw-{source}-{n}"))
                for code in (args.code.split(",") if args.code else [None]):
                    row = run_child(kind, n, src, work, code)
                    rows.append(row)
                    print(f"{kind:<24} {n:>7} {row['objects_kept']:>7} {row['seconds']:>8.1f} {row['cpu_seconds']:>7.1f} "
                          f"{row['objects_per_second']:>10.0f} {row['peak_rss_mib']:>9.0f} "
                          f"{row['peak_tree_rss_mib']:>9.0f} "
                          f"{row['load_average_before']:>5.1f} {row['code']}", flush=True)
                    shutil.rmtree(os.path.join(work, f"out-{kind}-{n}"), ignore_errors=True)
                for path in (src, os.path.join(work, f"out-{kind}-{n}")):
                    if path and not args.keep:
                        shutil.rmtree(path, ignore_errors=True)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        report = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                  "python": sys.version.split()[0], "rows": rows}
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
