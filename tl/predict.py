"""What `tl predict` needs beyond a canonical data set: a model named by a URI, raw survey files
read on the fly (unlabelled objects kept), and the table of probabilities written as Parquet or CSV.

Model references (--model):
  models:/<name>@<alias>   a registered model version (sweeps register `champion`, tl.sweep.results)
  models:/<name>/<version>
  runs:/<run_id>/<path>    a run's artifact; `model` (the mlflow.pytorch wrapper) means its `model_dir`
  a MODEL_DIR path
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

from tl.errors import TLError

RAW_FORMATS = ("bts", "alerce", "ztf-forced", "plasticc", "snana")
RAW_MODULES = {"bts": "tl.ingest.bts", "alerce": "tl.ingest.alerce", "ztf-forced": "tl.ingest.ztf_forced",
               "plasticc": "tl.ingest.plasticc", "snana": "tl.ingest.snana"}
RAW_SURVEYS = {"bts": "ztf", "alerce": "ztf", "ztf-forced": "ztf", "plasticc": "lsst"}
OUTPUT_SUFFIXES = (".parquet", ".csv")
MODEL_DIR_ARTIFACT = "model_dir"  # where sweep trials log their MODEL_DIR (tl.sweep.tracking)


def check_out_suffix(out: str) -> None:
    if not out.lower().endswith(OUTPUT_SUFFIXES):
        raise TLError(f"--out {out}: name a .parquet or .csv file")


def check_model_reference(reference: str, tracking_uri: str | None) -> None:
    """Refuse a malformed models:/ or runs:/ reference, and a sqlite store that does not exist
    (MLflow would create an empty one), before connecting."""
    if reference.startswith("models:/"):
        rest = reference[len("models:/"):]
        name, at, alias = rest.rpartition("@")
        base, slash, number = rest.rpartition("/")
        if not ((at and name and alias) or (slash and base and number.isdigit())):
            raise TLError(f"--model {reference}: expected models:/<name>@<alias> or models:/<name>/<version>")
    elif reference.startswith("runs:/") and not reference[len("runs:/"):].split("/")[0]:
        raise TLError(f"--model {reference}: expected runs:/<run_id>/<path>")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if is_model_uri(reference) and uri.startswith("sqlite:///"):
        database = uri[len("sqlite:///"):]
        if not os.path.isfile(database):
            raise TLError(f"--tracking-uri {uri}: no such sqlite database {database}")


def is_model_uri(reference: str) -> bool:
    return reference.startswith(("models:/", "runs:/"))


def resolve_model(reference: str, scratch: str, tracking_uri: str | None = None) -> str:
    """A local MODEL_DIR for `reference` (see module doc); URIs are downloaded under `scratch`."""
    if not is_model_uri(reference):
        return reference
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        if reference.startswith("models:/"):
            run_id, path = _registered_run(client, reference[len("models:/"):]), MODEL_DIR_ARTIFACT
        else:
            run_id, _, path = reference[len("runs:/"):].partition("/")
            path = MODEL_DIR_ARTIFACT if path.strip("/") in ("", "model") else path.strip("/")
        local = client.download_artifacts(run_id, path, scratch)
    except TLError:
        raise
    except Exception as error:  # mlflow raises MlflowException, OSError, ... for a bad reference
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise TLError(f"--model {reference}: cannot be fetched ({message})") from None
    if not os.path.exists(os.path.join(local, "model.json")):
        raise TLError(f"--model {reference}: artifact {path!r} of run {run_id} is not a tl MODEL_DIR")
    return local


def _registered_run(client, name_and_version: str) -> str:
    """The run id behind models:/<name>@<alias> or models:/<name>/<version>."""
    if "@" in name_and_version:
        name, _, alias = name_and_version.rpartition("@")
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, _, number = name_and_version.rpartition("/")
        version = client.get_model_version(name, number)
    if not version.run_id:
        raise TLError(f"--model models:/{name_and_version}: the model version has no run")
    return version.run_id


class _KeepAll(dict):
    """A label map that keeps every object: the class `known` maps its raw label to, else ""
    (not a model class, so encoded with label -1: unlabelled)."""

    def __init__(self, known: dict[str, str]):
        super().__init__()
        self.known = known

    def get(self, label, default=None):
        return self.known.get(str(label).strip()) or ""


@dataclass
class RawRead:
    dataset: "Dataset"  # noqa: F821  (tl.data; labels "" where unknown)
    dropped: dict[str, int]  # reason -> objects that could not be read


def read_raw(source_format: str, src: str) -> RawRead:
    """Read raw files of `source_format` at `src` through its ingester, keeping unlabelled objects."""
    from tl.ingest import common

    if not os.path.exists(src):
        raise TLError(f"--src {src}: no such file or directory")
    from tl.taxonomy import RAW_LABEL_MAPS

    module = importlib.import_module(RAW_MODULES[source_format])
    if source_format == "bts":  # new alerts have no catalogue entry: every light curve is an object
        raw, survey, known = _read_bts_curves(src), "ztf", RAW_LABEL_MAPS["bts"]
    elif source_format == "snana":  # the label map and the survey come from the files
        raw, labels, survey = module.read(src)
        known = labels.raw_labels
    else:
        raw, survey, known = module.read(src), RAW_SURVEYS[source_format], RAW_LABEL_MAPS[source_format]
    dataset, drops = common.assemble(raw, source_format, survey, seed=0, label_map=_KeepAll(known))
    return RawRead(dataset, dict(drops.objects))


def _read_bts_curves(src: str):
    """BTS light curves (`src/lightcurves/*.csv`, or `src` a folder of them) as a RawSource of one
    object per file; type, redshift and A_V from the BTS catalogue where it lists the object, else
    unlabelled with NaN redshift and E(B-V) (the model's missing-value flags)."""
    import glob

    import numpy as np
    import pandas as pd

    from tl.ingest import bts, common

    curves = os.path.join(src, bts.LIGHT_CURVES)
    paths = sorted(glob.glob(os.path.join(curves if os.path.isdir(curves) else src, "*.csv")))
    paths = [p for p in paths if os.path.basename(p) != bts.CATALOGUE]
    if not paths:
        raise TLError(f"--src {src}: no BTS light-curve CSV (in {bts.LIGHT_CURVES}/ or the folder itself)")
    drops = common.DropLog()
    observations, n_rows = bts.read_light_curves(paths, drops)
    objects = pd.DataFrame({"object_id": [bts.object_id_of(p) for p in paths]})
    catalogue_path = os.path.join(src, bts.CATALOGUE)
    if os.path.isfile(catalogue_path):
        catalogue = bts.read_catalogue(catalogue_path).drop_duplicates("ZTFID").set_index("ZTFID")
        found = catalogue.reindex(objects["object_id"])
        objects["raw_label"] = found["type"].fillna("").astype(str).to_numpy()
        objects["redshift"] = found["redshift"].to_numpy(dtype=float)
        objects["mwebv"] = (found["A_V"] / bts.R_V).to_numpy(dtype=float)
    else:
        objects["raw_label"], objects["redshift"], objects["mwebv"] = "", np.nan, np.nan
    return common.RawSource(objects, observations, drops, n_rows, objects["raw_label"].copy())


def write_table(table, out: str) -> None:
    """The predictions as Parquet or CSV (by the suffix of `out`), written atomically."""
    from tl.atomic import write_file

    if out.lower().endswith(".csv"):
        write_file(out, lambda f: table.to_csv(f, index=False), "w")
    else:
        write_file(out, lambda f: table.to_parquet(f, index=False), "wb")
