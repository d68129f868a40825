"""Ingesters: one module per raw format, each writing a canonical data set (DESIGN.md section 2).

    tl ingest {bts,plasticc,ztf-forced,alerce,snana} --src PATH --out DIR [--seed S]
    tl ingest snana --src PATH --out DIR [--labels NAME|MAP.yaml] [--survey NAME] [--sim-redshift]

Each module provides `read(src)` and `ingest(src, out, seed=0, **options) -> Dataset`; only snana
takes options (SNANA_OPTIONS).

Bad input raises TLError (one line naming file, line and column; nothing is written): a missing
file or column, a non-numeric or infinite number, an uncertainty <= 0, an unknown band, an invalid
flag value, a duplicate object id, an empty time. Expected gaps are counted drops, printed as a
table and kept in dataset.json["dropped"]: an unmapped raw label, a catalogue object without light
curve, an empty magnitude/flux/amplitude, a repeated (object, mjd, band) measurement (the detection,
then the smallest error, is kept), an object with no observation left.
"""

from __future__ import annotations

import importlib

FORMATS = {  # format name on the command line -> module
    "bts": "tl.ingest.bts",
    "plasticc": "tl.ingest.plasticc",
    "ztf-forced": "tl.ingest.ztf_forced",
    "alerce": "tl.ingest.alerce",
    "snana": "tl.ingest.snana",
}
SNANA_OPTIONS = ("labels", "survey", "sim_redshift")


def ingest(source_format: str, src: str, out: str, seed: int = 0, **options):
    """Convert the raw data at `src` (one of FORMATS) into a canonical data set at `out`."""
    return importlib.import_module(FORMATS[source_format]).ingest(src, out, seed=seed, **options)
