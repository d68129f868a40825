"""Shared pieces of the ingesters: located reading of raw CSVs, unit conversions, band tables,
the drop ledger, and assembling and writing a canonical data set.

Every raw row carries `_file` and `_line` (1-based line in its file), so an error names both.
Bad input (a missing column, a non-numeric value, an error <= 0, an unknown band) raises TLError
before anything is written; expected gaps (an empty magnitude, an unmapped class) are counted drops.
"""

from __future__ import annotations

import csv
import os
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tl.data import Dataset, assign_splits, write_dataset
from tl.errors import TLError
from tl.surveys import magnitude_to_flux as ab_flux
from tl.taxonomy import canonical_label

MISSING_TOKENS = ("", "-", "nan", "NaN", "null", "None")
OBJECT_FIELDS = ["object_id", "raw_label", "redshift", "mwebv"]
OBSERVATION_FIELDS = ["object_id", "mjd", "band", "flux", "flux_err", "detected"]


def magnitude_to_flux(magnitude, magnitude_err):
    """AB magnitude (and its error) -> flux in uJy (and its propagated error)."""
    flux = ab_flux(np.asarray(magnitude, dtype=float))
    return flux, flux * np.log(10.0) / 2.5 * np.asarray(magnitude_err, dtype=float)


def zero_point_scale(zero_point):
    """Factor from counts on an AB zero point to uJy: 10**((23.9 - zp) / 2.5), the flux of m = zp."""
    return ab_flux(np.asarray(zero_point, dtype=float))


# ---------------------------------------------------------------- reading with locations


def read_csv(path: str, columns: list[str], skiprows: int = 0, **options) -> pd.DataFrame:
    """One CSV file as a DataFrame with `_file` and `_line`; raises naming a missing column."""
    if not os.path.isfile(path):
        raise TLError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, skiprows=skiprows, **options)
    except (OSError, UnicodeDecodeError, EOFError, zlib.error, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:  # zlib.error: a corrupt .gz
        raise TLError(f"{path}: unreadable CSV ({first_line(error)})") from None
    require_columns(frame.columns, columns, path)
    frame = frame[columns].copy()
    frame["_file"] = path
    frame["_line"] = np.arange(len(frame)) + skiprows + 2  # the header is line skiprows + 1
    return frame


def read_small_csvs(paths: list[str], columns: list[str]) -> pd.DataFrame:
    """Many small CSV files as one DataFrame of strings with `_file` and `_line`.

    The csv module is several times faster than one pandas call per file for thousands of files.
    """
    pieces = {name: [] for name in columns}
    files, lines = [], []
    for path in paths:
        try:
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise TLError(f"{path}: unreadable CSV ({first_line(error)})") from None
        if not rows:
            raise TLError(f"{path}: empty file (no header line)")
        header = [name.strip() for name in rows[0]]
        require_columns(header, columns, path)
        positions = [header.index(name) for name in columns]
        for number, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise TLError(f"{path}: line {number}: {len(row)} fields, the header has {len(header)}")
            for name, position in zip(columns, positions):
                pieces[name].append(row[position])
            files.append(path)
            lines.append(number)
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in pieces.items()})
    frame["_file"] = pd.Series(files, dtype=object)
    frame["_line"] = np.asarray(lines, dtype=np.int64)
    return frame


def require_columns(present, required: list[str], path: str) -> None:
    missing = [name for name in required if name not in set(present)]
    if missing:
        raise TLError(f"{path}: missing column {missing[0]!r}")


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def where(frame: pd.DataFrame, position: int) -> str:
    """'file: line N' of the row at `position` (an iloc position); 'row N' where `_unit` says so."""
    unit = frame["_unit"].iloc[position] if "_unit" in frame else "line"
    return f"{frame['_file'].iloc[position]}: {unit} {int(frame['_line'].iloc[position])}"


def shown(value) -> str:
    """A raw value for a message: quoted text, plain numbers."""
    return repr(value) if isinstance(value, str) else str(value)


def to_float(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column as float64 with NaN for a missing value; a non-numeric or infinite value raises."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(numbers)
    else:
        text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
        missing = text.isin(MISSING_TOKENS).to_numpy()
        numbers = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~missing & ~np.isfinite(numbers)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TLError(f"{where(frame, row)}: column {column!r}: not a finite number ({shown(values.iloc[row])})")
    return numbers


def require_present(frame: pd.DataFrame, column: str, numbers: np.ndarray) -> None:
    """A value the row cannot do without (a time, a band code): missing raises."""
    missing = np.isnan(numbers)
    if missing.any():
        raise TLError(f"{where(frame, int(np.flatnonzero(missing)[0]))}: column {column!r}: empty value")


def require_positive(frame: pd.DataFrame, column: str, numbers: np.ndarray) -> None:
    """Uncertainties must be > 0 where given (NaN is left to the caller)."""
    bad = numbers <= 0
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TLError(f"{where(frame, row)}: column {column!r}: must be > 0, found {float(numbers[row])}")


def map_bands(frame: pd.DataFrame, column: str, table: dict, table_home: str) -> np.ndarray:
    """Raw band names (or integer codes) -> band names of tl.surveys through an explicit table."""
    if all(isinstance(key, int) for key in table):
        codes = to_float(frame, column)
        require_present(frame, column, codes)
        raw = pd.Series(codes).map({float(key): value for key, value in table.items()})
    else:
        raw = frame[column].astype(object).where(frame[column].notna(), "").astype(str).str.strip().map(table)
    unknown = raw.isna().to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise TLError(f"{where(frame, row)}: column {column!r}: unknown band {shown(frame[column].iloc[row])} "
                      f"(known: {', '.join(map(str, table))}; add it to the table in {table_home})")
    return raw.to_numpy(dtype=object)


# ---------------------------------------------------------------- drops and assembly


@dataclass
class DropLog:
    """Dropped objects and observations, counted by reason."""
    objects: Counter = field(default_factory=Counter)
    observations: Counter = field(default_factory=Counter)

    def drop_objects(self, reason: str, count: int) -> None:
        if count:
            self.objects[reason] += int(count)

    def drop_observations(self, reason: str, count: int) -> None:
        if count:
            self.observations[reason] += int(count)

    def as_dict(self) -> dict:
        return {"objects": dict(self.objects.most_common()),
                "observations": dict(self.observations.most_common())}


@dataclass
class RawSource:
    """What a format reader hands over: every source object and the observations it kept."""
    objects: pd.DataFrame  # OBJECT_FIELDS, one row per source object not already dropped
    observations: pd.DataFrame  # OBSERVATION_FIELDS, converted to uJy
    drops: DropLog  # drops already made while reading (objects and observations)
    n_source_observations: int  # raw observation rows read
    source_labels: pd.Series  # the raw label of every object in the source, dropped or not
    notes: dict = field(default_factory=dict)  # format-specific facts for dataset.json


def drop_rows(frame: pd.DataFrame, mask: np.ndarray, drops: DropLog, reason: str) -> pd.DataFrame:
    """Remove observation rows where `mask`, counting them under `reason`."""
    drops.drop_observations(reason, int(mask.sum()))
    return frame[~mask]


def assemble(raw: RawSource, source: str, survey: str, seed: int,
             label_map: dict[str, str] | None = None) -> tuple[Dataset, DropLog]:
    """Map labels (through `label_map`, else the taxonomy's map of `source`), drop what cannot be
    used (counted), de-duplicate, and assign splits."""
    objects = raw.objects[OBJECT_FIELDS].reset_index(drop=True)
    observations = raw.observations[OBSERVATION_FIELDS]
    drops = DropLog(Counter(raw.drops.objects), Counter(raw.drops.observations))
    observations = drop_rows(observations, ~observations["object_id"].isin(objects["object_id"]).to_numpy(),
                             drops, "object not in the source's object list")
    if label_map is None:
        objects["label"] = [canonical_label(source, label) for label in objects["raw_label"]]
    else:
        objects["label"] = [label_map.get(str(label).strip()) for label in objects["raw_label"]]
    unmapped = objects["label"].isna()
    for label, count in objects.loc[unmapped, "raw_label"].value_counts(sort=False, dropna=False).items():
        drops.drop_objects(f"unmapped raw label {label!r}", count)
    objects = objects[~unmapped]
    observations = drop_rows(observations, ~observations["object_id"].isin(objects["object_id"]).to_numpy(),
                             drops, "object dropped (unmapped raw label)")
    # One measurement per (object, mjd, band): a detection before a non-detection, then the smallest error.
    observations = observations.sort_values(["object_id", "mjd", "band", "detected", "flux_err"],
                                            ascending=[True, True, True, False, True], kind="stable")
    duplicate = observations.duplicated(["object_id", "mjd", "band"]).to_numpy()
    detected = observations["detected"].to_numpy()
    # Each group's kept (first) row precedes its duplicates: carry its `detected` forward.
    kept_detected = pd.Series(np.where(duplicate, np.nan, detected)).ffill().to_numpy() == 1
    under_detection = duplicate & ~detected & kept_detected
    drops.drop_observations("non-detection at the time of a detection", int(under_detection.sum()))
    drops.drop_observations("duplicate observation (same object, mjd, band)",
                            int((duplicate & ~under_detection).sum()))
    observations = observations[~duplicate]
    empty = ~objects["object_id"].isin(observations["object_id"].unique())
    drops.drop_objects("no observations left", int(empty.sum()))
    objects = objects[~empty].reset_index(drop=True)
    objects["survey"] = survey
    objects["split"] = assign_splits(objects, seed)
    return Dataset(objects, observations.reset_index(drop=True)), drops


def write(raw: RawSource, source: str, survey: str, src: str, out: str, seed: int,
          label_map: dict[str, str] | None = None,
          quality: Callable[[pd.DataFrame], tuple[str, dict]] | None = None) -> Dataset:
    """Assemble, print the drop summary, and write the data set (atomically) with its provenance.
    `quality(observations)` of the ingested observations -> (a line printed, notes for dataset.json)."""
    dataset, drops = assemble(raw, source, survey, seed, label_map)
    n_objects = len(raw.source_labels)
    # Nothing lost silently: what was ingested plus what was dropped is what the source holds.
    assert len(dataset.objects) + sum(drops.objects.values()) == n_objects, "objects do not add up"
    assert len(dataset.observations) + sum(drops.observations.values()) == raw.n_source_observations, \
        "observations do not add up"
    print(drop_summary(source, n_objects, raw.n_source_observations, dataset, drops))
    if dataset.objects.empty:
        raise TLError(f"{src}: no object left to ingest ({n_objects} in the source, all dropped: see the table above)")
    notes = dict(raw.notes)
    if quality is not None:
        line, quality_notes = quality(dataset.observations)
        print(line)
        notes.update(quality_notes)
    raw_counts = raw.source_labels.astype(str).value_counts()
    return write_dataset(
        dataset, out, name=source, survey=survey, source=source, src=os.path.abspath(src), seed=seed,
        raw_label_counts={str(k): int(v) for k, v in raw_counts.items()},
        n_source_objects=int(n_objects), n_source_observations=int(raw.n_source_observations),
        dropped=drops.as_dict(), **notes,
    )


def drop_summary(source: str, n_objects: int, n_observations: int, dataset: Dataset, drops: DropLog) -> str:
    """A per-reason table of what was dropped, with totals that add up to the source."""
    lines = [f"{source}: {n_objects} source objects -> {len(dataset.objects)} ingested, "
             f"{sum(drops.objects.values())} dropped; {n_observations} observations -> "
             f"{len(dataset.observations)} ingested, {sum(drops.observations.values())} dropped"]
    for kind, counter in (("objects", drops.objects), ("observations", drops.observations)):
        lines.append(f"  dropped {kind}:" + ("" if counter else " none"))
        width = max((len(reason) for reason in counter), default=0)
        lines += [f"    {reason:<{width}}  {count:>8}" for reason, count in counter.most_common()]
    return "\n".join(lines)
