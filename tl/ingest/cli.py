"""`tl ingest FORMAT --src PATH --out DIR [--seed S]`: convert a raw format into a canonical data set.

snana also takes --labels, --survey and --sim-redshift (tl/ingest/snana.py)."""

from __future__ import annotations

import argparse
import os
import time

from tl.config import MAX_SEED
from tl.errors import TLError
from tl.ingest import FORMATS, SNANA_OPTIONS, ingest
from tl.paths import check_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=list(FORMATS), help="raw format of --src")
    parser.add_argument("--src", required=True, help="raw data: the bts/, plasticc/, alerce/ folder, "
                        "a folder (or one file) of fpbot CSVs for ztf-forced, or for snana a folder, "
                        ".LIST file or file of SNANA text (.DAT) or FITS (HEAD/PHOT) data")
    parser.add_argument("--out", required=True, help="data set directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified train/val/test split")
    parser.add_argument("--labels", default=None, help="snana: raw-label map, a known one (snphotcc, the "
                        "default; plasticc) or a YAML file with keys: [HEADER_KEY, ...] and map: {raw: class}")
    parser.add_argument("--survey", default=None, help="snana: band-table survey of the files, "
                        "instead of their SURVEY header (e.g. ps1 for Foundation)")
    parser.add_argument("--sim-redshift", action="store_true",
                        help="snana: take the simulated true redshift (SIM_REDSHIFT_CMB, ...) first")


def run(args: argparse.Namespace) -> int:
    if not os.path.exists(args.src):
        raise TLError(f"--src {args.src}: no such file or directory")
    if not 0 <= args.seed <= MAX_SEED:
        raise TLError(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
    options = {name: getattr(args, name) for name in SNANA_OPTIONS if getattr(args, name)}
    if options and args.format != "snana":
        raise TLError(f"--{next(iter(options)).replace('_', '-')} applies to snana only")
    check_output(args.out, "--out", directory=True, inputs={"--src": args.src}, marker="dataset.json",
                 kind="tl data set")
    start = time.perf_counter()
    dataset = ingest(args.format, args.src, args.out, seed=args.seed, **options)
    seconds = time.perf_counter() - start
    n_objects = len(dataset.objects)
    print(f"wrote {args.out}: {n_objects} objects, {len(dataset.observations)} observations "
          f"in {seconds:.1f} s ({n_objects / max(seconds, 1e-9):.0f} objects/s)")
    return 0
