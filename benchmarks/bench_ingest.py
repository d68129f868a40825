"""Time the four ingesters on the real raw files in ../shared/data (or $TL_SHARED_DATA).

    python benchmarks/bench_ingest.py [--data DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

from tl.ingest import ingest

SOURCES = {"bts": "bts", "plasticc": "plasticc", "ztf-forced": "ztf_forced_photometry", "alerce": "alerce"}


def main() -> None:
    default = os.environ.get("TL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default), help="folder holding the raw data sets")
    args = parser.parse_args()
    print(f"{'format':<11} {'objects':>8} {'observations':>13} {'seconds':>8} {'objects/s':>10} {'obs/s':>10}")
    with tempfile.TemporaryDirectory() as scratch:
        for source_format, folder in SOURCES.items():
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the drop tables
                dataset = ingest(source_format, os.path.join(args.data, folder), os.path.join(scratch, source_format))
            seconds = time.perf_counter() - start
            n_objects, n_observations = len(dataset.objects), len(dataset.observations)
            print(f"{source_format:<11} {n_objects:>8} {n_observations:>13} {seconds:>8.2f} "
                  f"{n_objects / seconds:>10.0f} {n_observations / seconds:>10.0f}")


if __name__ == "__main__":
    main()
