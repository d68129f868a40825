"""Canonical data sets: read, write, check, split, and subsample.

A canonical data set is a directory (DESIGN.md section 2):

    objects.parquet       one row per object: object_id, label, raw_label, redshift, mwebv, survey, split
    observations.parquet  one row per observation: object_id, mjd, band, flux (uJy), flux_err, detected
    dataset.json          name, survey, source, classes, created_by, counts, dropped-by-reason, ...

`observations.parquet` may also be a directory of Parquet shards (as the sharded simulator writes).
Paths may be local or URIs that pyarrow understands (s3://, gs://, file://).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tl import __version__
from tl.atomic import staged_directory
from tl.errors import TLError
from tl.surveys import BAND_BY_NAME
from tl.taxonomy import CLASSES

SPLITS = ("train", "val", "test")
OBJECT_COLUMNS = {
    "object_id": "string", "label": "string", "raw_label": "string", "redshift": "float",
    "mwebv": "float", "survey": "string", "split": "string",
}
OBSERVATION_COLUMNS = {
    "object_id": "string", "mjd": "float", "band": "string", "flux": "float", "flux_err": "float",
    "detected": "bool",
}
DEFAULT_VAL_FRACTION = 0.15
DEFAULT_TEST_FRACTION = 0.15


@dataclass
class Dataset:
    objects: pd.DataFrame
    observations: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """Classes present, in taxonomy order."""
        present = set(self.objects["label"])
        return [name for name in CLASSES if name in present]

    def split(self, name: str) -> "Dataset":
        """The objects of one split (or all of them for 'all') with their observations."""
        if name == "all":
            return self
        if name not in SPLITS:
            raise TLError(f"unknown split {name!r}: use one of {', '.join(SPLITS)} or all")
        objects = self.objects[self.objects["split"] == name]
        observations = self.observations[self.observations["object_id"].isin(objects["object_id"])]
        return Dataset(objects.reset_index(drop=True), observations.reset_index(drop=True), self.meta)


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in str(path):
        try:
            return pafs.FileSystem.from_uri(str(path))
        except (pa.ArrowException, OSError, ValueError) as error:
            raise TLError(f"{path}: cannot open ({_first_line(error)})") from None
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _check_columns(df: pd.DataFrame, columns: dict[str, str], where: str) -> pd.DataFrame:
    """Check and coerce `df` to `columns`; raise naming the column (and row) at fault."""
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise TLError(f"{where}: missing column {missing[0]!r}")
    out = pd.DataFrame(index=df.index)
    for name, kind in columns.items():
        values = df[name]
        if kind == "float":
            numeric = pd.to_numeric(values, errors="coerce")
            bad = numeric.isna() & values.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise TLError(f"{where}: column {name!r} row {row}: not a number ({values.iloc[row]!r})")
            out[name] = numeric.astype("float64")
        elif kind == "bool":
            if not pd.api.types.is_bool_dtype(values):
                raise TLError(f"{where}: column {name!r} must be boolean, found {values.dtype}")
            out[name] = values.astype(bool)
        else:
            if values.isna().any():
                row = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise TLError(f"{where}: column {name!r} row {row}: empty value")
            out[name] = values.astype(str)
    return out


def validate(dataset: Dataset, where: str = "dataset") -> Dataset:
    """Check the whole contract; return a copy with canonical column types and order."""
    objects = _check_columns(dataset.objects, OBJECT_COLUMNS, f"{where}/objects.parquet")
    observations = _check_columns(
        dataset.observations, OBSERVATION_COLUMNS, f"{where}/observations.parquet"
    )
    _check_values(objects, "label", set(CLASSES), f"{where}/objects.parquet")
    _check_values(objects, "split", set(SPLITS), f"{where}/objects.parquet")
    _check_values(observations, "band", set(BAND_BY_NAME), f"{where}/observations.parquet")
    if objects["object_id"].duplicated().any():
        row = int(np.flatnonzero(objects["object_id"].duplicated().to_numpy())[0])
        raise TLError(f"{where}/objects.parquet: row {row}: duplicate object_id {objects['object_id'].iloc[row]!r}")
    orphans = ~observations["object_id"].isin(objects["object_id"])
    if orphans.any():
        row = int(np.flatnonzero(orphans.to_numpy())[0])
        raise TLError(f"{where}/observations.parquet: row {row}: object_id "
                      f"{observations['object_id'].iloc[row]!r} is not in objects.parquet")
    for name in ("redshift", "mwebv"):  # NaN means unknown; infinite is an error
        bad = np.isinf(objects[name].to_numpy())
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise TLError(f"{where}/objects.parquet: column {name!r} row {row}: infinite "
                          "(use NaN for an unknown value)")
    for name in ("mjd", "flux", "flux_err"):
        bad = ~np.isfinite(observations[name].to_numpy())
        if bad.any():
            raise TLError(f"{where}/observations.parquet: column {name!r} row {int(np.flatnonzero(bad)[0])}: not finite")
    bad = observations["flux_err"].to_numpy() <= 0
    if bad.any():
        raise TLError(f"{where}/observations.parquet: column 'flux_err' row {int(np.flatnonzero(bad)[0])}: must be > 0")
    return Dataset(objects.reset_index(drop=True), observations.reset_index(drop=True), dict(dataset.meta))


def _check_values(df: pd.DataFrame, column: str, allowed: set[str], where: str) -> None:
    bad = ~df[column].isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TLError(f"{where}: column {column!r} row {row}: {df[column].iloc[row]!r} is not one of "
                      f"{', '.join(sorted(allowed))}")


def read_dataset(path: str) -> Dataset:
    """Read and check a canonical data set directory (local path or URI)."""
    fs, base = _filesystem(path)
    try:
        info = fs.get_file_info(base)
    except (pa.ArrowException, OSError) as error:  # e.g. an unreachable s3:// bucket
        raise TLError(f"{path}: cannot reach ({_first_line(error)})") from None
    if info.type != pafs.FileType.Directory:
        raise TLError(f"{path}: not a data set directory (expected objects.parquet, observations.parquet, dataset.json)")
    tables = {}
    for name in ("objects.parquet", "observations.parquet"):
        file_path = f"{base}/{name}"
        if fs.get_file_info(file_path).type == pafs.FileType.NotFound:
            raise TLError(f"{path}: missing {name}")
        try:
            tables[name] = pads.dataset(file_path, filesystem=fs, format="parquet").to_table()
        except (pa.ArrowInvalid, OSError) as error:
            raise TLError(f"{path}/{name}: unreadable Parquet ({_first_line(error)})") from None
    try:
        with fs.open_input_stream(f"{base}/dataset.json") as stream:
            meta = json.loads(stream.read().decode())
    except FileNotFoundError:
        raise TLError(f"{path}: missing dataset.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TLError(f"{path}/dataset.json: not valid JSON ({error})") from None
    dataset = Dataset(tables["objects.parquet"].to_pandas(), tables["observations.parquet"].to_pandas(), meta)
    return validate(dataset, where=str(path))


def write_dataset(dataset: Dataset, out: str, **meta) -> Dataset:
    """Check `dataset` and write it to `out` all at once: no partial directory is ever left.

    `meta` entries (name, survey, source, dropped, ...) are merged into dataset.json, and counts
    are filled in. An existing data set at `out` is replaced only after the new one is complete.
    """
    dataset = validate(dataset, where=str(out))
    dataset.meta.update(meta)
    dataset.meta.update({
        "classes": dataset.classes,
        "n_objects": int(len(dataset.objects)),
        "n_observations": int(len(dataset.observations)),
        "class_counts": {k: int(v) for k, v in dataset.objects["label"].value_counts().items()},
        "split_counts": {k: int(v) for k, v in dataset.objects["split"].value_counts().items()},
        "created_by": dataset.meta.get("created_by", f"tl {__version__}"),
    })
    if "://" in str(out):
        _write_files(dataset, out, *_filesystem(out))
        return dataset
    with staged_directory(out, "dataset.json", "tl data set") as staging:
        _write_files(dataset, staging, pafs.LocalFileSystem(), staging)
    return dataset


def _write_files(dataset: Dataset, label: str, fs: pafs.FileSystem, base: str) -> None:
    fs.create_dir(base, recursive=True)
    for name, frame in (("objects.parquet", dataset.objects), ("observations.parquet", dataset.observations)):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, f"{base}/{name}", filesystem=fs)
    with fs.open_output_stream(f"{base}/dataset.json") as stream:
        stream.write(json.dumps(dataset.meta, indent=2, sort_keys=True).encode())


def _class_rng(seed: int, label: str, purpose: str) -> np.random.Generator:
    """A generator fixed by (seed, class, purpose): independent of row order and other classes."""
    return np.random.default_rng([seed, zlib.crc32(label.encode()), zlib.crc32(purpose.encode())])


def _shuffled_rows(group: pd.DataFrame, seed: int, label: str, purpose: str) -> np.ndarray:
    """The index labels of `group` (one class) in a seeded order: object ids sorted, then permuted
    by _class_rng(seed, label, purpose), so the order depends on the ids alone, not on the rows."""
    ids = group["object_id"].astype(str).to_numpy()
    by_id = pd.Series(group.index, index=ids)
    chosen = np.sort(ids)[_class_rng(seed, label, purpose).permutation(len(ids))]
    return by_id[chosen].to_numpy()


def assign_splits(objects: pd.DataFrame, seed: int, val_fraction: float = DEFAULT_VAL_FRACTION,
                  test_fraction: float = DEFAULT_TEST_FRACTION) -> pd.Series:
    """Stratified, seeded train/val/test labels for `objects` (a Series aligned with it).

    Per class, object ids are sorted then shuffled with a generator fixed by (seed, class), so the
    result depends only on the set of (object_id, label) pairs. A class with at least 3 objects
    gets at least one val and one test object; with 2, one train and one test; with 1, train.
    """
    split = pd.Series("train", index=objects.index, dtype=object)
    for label, group in objects.groupby("label", sort=True):
        rows = _shuffled_rows(group, seed, str(label), "split")
        n = len(rows)
        n_test = max(1, round(n * test_fraction)) if n >= 2 else 0
        n_val = max(1, round(n * val_fraction)) if n >= 3 else 0
        split[rows[:n_test]] = "test"
        split[rows[n_test:n_test + n_val]] = "val"
    return split


def assign_folds(objects: pd.DataFrame, k: int, seed: int = 0) -> pd.Series:
    """Stratified, seeded outer cross-validation folds 0..k-1 for `objects` (aligned with it).

    Per class, object ids are sorted, shuffled by (seed, class) and dealt to the folds in turn,
    each class starting where the previous one stopped, so fold sizes differ by at most one and
    every class is spread as evenly as it can be. Depends only on the (object_id, label) pairs.
    """
    folds = pd.Series(0, index=objects.index, dtype=int)
    start = 0
    for label, group in objects.groupby("label", sort=True):
        rows = _shuffled_rows(group, seed, str(label), "fold")
        folds[rows] = (start + np.arange(len(rows))) % k
        start = (start + len(rows)) % k
    return folds


def fold_split(objects: pd.DataFrame, k: int, fold: int, seed: int = 0,
               val_fraction: float = DEFAULT_VAL_FRACTION) -> pd.Series:
    """train/val/test for outer fold `fold` of `k` (a Series aligned with `objects`).

    test = the objects of fold `fold` (assign_folds); val = a stratified `val_fraction` of all
    objects drawn from the other folds (per class, seeded by (seed, class, fold)); train = the
    rest. No test object of a fold is ever in its train or val split.
    """
    folds = assign_folds(objects, k, seed)
    split = pd.Series("train", index=objects.index, dtype=object)
    split[folds == fold] = "test"
    rest = objects[folds != fold]
    for label, group in rest.groupby("label", sort=True):
        rows = _shuffled_rows(group, seed, f"{label}/{fold}", "fold-val")
        n_val = max(1, round(len(rows) * val_fraction * k / (k - 1))) if len(rows) >= 2 else 0
        split[rows[:n_val]] = "val"
    return split


def with_fold(dataset: Dataset, k: int, fold: int, seed: int = 0) -> Dataset:
    """`dataset` with its split column replaced by outer fold `fold` of `k` (fold_split)."""
    objects = dataset.objects.assign(split=fold_split(dataset.objects, k, fold, seed).to_numpy())
    return Dataset(objects, dataset.observations, dataset.meta)


def splits_for(dataset: Dataset, folds: int, fold: int) -> Dataset:
    """The train/val/test split a run with settings data.folds / data.fold uses: the data set's
    own split column when folds is 0, else outer fold `fold` of `folds` (with_fold)."""
    return with_fold(dataset, folds, fold) if folds else dataset


def subsample_train(objects: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Keep a stratified, seeded, nested `fraction` of the train split; val and test are untouched.

    Per class, ceil(fraction * n_train) objects (at least one) are kept, taken from the front of
    a permutation fixed by (seed, class): the subset for a smaller fraction is always inside the
    subset for a larger one.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise TLError(f"--fraction must be in (0, 1], got {fraction!r}")
    keep = objects["split"] != "train"
    train = objects[objects["split"] == "train"]
    for label, group in train.groupby("label", sort=True):
        rows = _shuffled_rows(group, seed, str(label), "fraction")
        keep[rows[:max(1, math.ceil(fraction * len(rows) - 1e-9))]] = True
    return objects[keep].reset_index(drop=True)


def content_hash(path: str) -> str:
    """sha256 over a data set's files (objects, observations, dataset.json): its lineage id."""
    fs, base = _filesystem(path)
    digest = hashlib.sha256()
    selector = pafs.FileSelector(base, recursive=True)
    for info in sorted(fs.get_file_info(selector), key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        digest.update(os.path.relpath(info.path, base).encode())
        with fs.open_input_stream(info.path) as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
