"""Light curves -> fixed-width observation vectors the network reads, for every survey alike.

Each object becomes a sequence of observations, one row each (SEQUENCE_FEATURES):

    time      days since the object's first detection, observer frame (no redshift is needed,
              so objects without a redshift encode the same way), standardised
    flux      flux / peak, where peak = max |flux| over the encoded observations: the light-curve
              shape is independent of distance and of the survey's depth; then standardised
    flux_err  flux_err / peak, standardised
    band      (effective wavelength - 600 nm) / 200 nm from tl.surveys: a fixed physical scale,
              so a ZTF-trained network reads LSST bands without input surgery
    detected  1.0 or 0.0

and a metadata vector (METADATA_FEATURES): log10 peak flux (uJy), redshift, MW E(B-V), each
standardised, and one "missing" flag for redshift and E(B-V) (a missing value is zero after
standardisation, i.e. the training mean, and its flag is 1).

Truncation rule: the sequence starts at the first detection (earlier non-detections are not
encoded; an object with no detection starts at its first observation) and keeps the first
`max_length` observations after that, in time order. For early classification,
`truncate_days` cuts light curves to the first N days after first detection BEFORE encoding.

Standardisation statistics (Normalizer) come from the train split only and are saved with the
model. Objects without any observation cannot be encoded: they are dropped and counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from tl.data import Dataset
from tl.errors import TLError
from tl.surveys import BAND_BY_NAME

SEQUENCE_FEATURES = ("time", "flux", "flux_err", "band", "detected")
METADATA_FEATURES = ("log_peak_flux", "redshift", "redshift_missing", "mwebv", "mwebv_missing")
WAVELENGTH_CENTER_NM = 600.0
WAVELENGTH_SCALE_NM = 200.0
_STANDARDISED_SEQUENCE = (0, 1, 2)  # columns of SEQUENCE_FEATURES scaled by the Normalizer
_STANDARDISED_METADATA = (0, 1, 3)  # columns of METADATA_FEATURES scaled by the Normalizer


@dataclass
class RawEncoding:
    """Unstandardised encoding of a data set (missing metadata left as NaN)."""

    object_ids: list[str]
    labels: list[str]
    sequences: list[np.ndarray]  # each (length, len(SEQUENCE_FEATURES)), float64
    metadata: np.ndarray  # (n_objects, len(METADATA_FEATURES)), float64, NaN where missing
    dropped_no_observations: int = 0


@dataclass
class Normalizer:
    """Mean and standard deviation of the standardised features, from a train split."""

    sequence_mean: list[float]
    sequence_std: list[float]
    metadata_mean: list[float]
    metadata_std: list[float]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Normalizer":
        return cls(**{key: [float(v) for v in values[key]] for key in
                      ("sequence_mean", "sequence_std", "metadata_mean", "metadata_std")})


def truncate_days(dataset: Dataset, days: float) -> Dataset:
    """Keep each object's observations up to `days` after its first detection (early classification).

    Observations before the first detection are kept (they are dropped later by the encoding
    rule anyway); objects with no detection are measured from their first observation.
    """
    if not days >= 0:
        raise TLError(f"--days must be >= 0, got {days!r}")
    obs = dataset.observations
    detected_mjd = obs["mjd"].where(obs["detected"])
    start = detected_mjd.groupby(obs["object_id"]).transform("min")
    start = start.fillna(obs.groupby("object_id")["mjd"].transform("min"))
    kept = obs[obs["mjd"] <= start + days].reset_index(drop=True)
    return Dataset(dataset.objects, kept, dataset.meta)


def encode_raw(dataset: Dataset, max_length: int) -> RawEncoding:
    """Encode every object of `dataset` (see the module docstring); objects keep their order."""
    if max_length < 1:
        raise TLError(f"data.max_length must be >= 1, got {max_length}")
    obs = dataset.observations.sort_values(["object_id", "mjd"], kind="stable")
    groups = {object_id: group for object_id, group in obs.groupby("object_id", sort=False)}
    object_ids, labels, sequences, metadata = [], [], [], []
    dropped = 0
    for row in dataset.objects.itertuples(index=False):
        group = groups.get(row.object_id)
        if group is None:
            dropped += 1
            continue
        sequence, peak = _encode_sequence(group, max_length)
        object_ids.append(row.object_id)
        labels.append(row.label)
        sequences.append(sequence)
        metadata.append([np.log10(peak), row.redshift, np.nan, row.mwebv, np.nan])
    metadata = np.array(metadata, dtype=np.float64).reshape(-1, len(METADATA_FEATURES))
    metadata[:, 2] = np.isnan(metadata[:, 1])
    metadata[:, 4] = np.isnan(metadata[:, 3])
    return RawEncoding(object_ids, labels, sequences, metadata, dropped)


def _encode_sequence(group: pd.DataFrame, max_length: int) -> tuple[np.ndarray, float]:
    """(length, 5) unstandardised rows of one object (sorted by mjd), and its peak |flux|."""
    detected = group["detected"].to_numpy()
    first = int(np.argmax(detected)) if detected.any() else 0
    group = group.iloc[first:first + max_length]
    flux = group["flux"].to_numpy()
    peak = max(float(np.abs(flux).max()), 1e-3)  # uJy; guards an all-zero light curve
    wavelength = np.array([BAND_BY_NAME[b].wavelength_nm for b in group["band"]])
    mjd = group["mjd"].to_numpy()
    sequence = np.column_stack([
        mjd - mjd[0],
        flux / peak,
        group["flux_err"].to_numpy() / peak,
        (wavelength - WAVELENGTH_CENTER_NM) / WAVELENGTH_SCALE_NM,
        group["detected"].to_numpy().astype(np.float64),
    ])
    return sequence, peak


def fit_normalizer(raw: RawEncoding) -> Normalizer:
    """Standardisation statistics of a (train) encoding; a constant feature gets std 1."""
    if not raw.sequences:
        raise TLError("cannot compute normalisation statistics: the train split has no encodable objects")
    rows = np.concatenate(raw.sequences)[:, _STANDARDISED_SEQUENCE]
    meta = raw.metadata[:, _STANDARDISED_METADATA]
    meta_mean = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in meta.T])
    meta_std = np.array([np.nanstd(c) if np.isfinite(c).any() else 1.0 for c in meta.T])
    return Normalizer(
        sequence_mean=rows.mean(axis=0).tolist(),
        sequence_std=_safe_std(rows.std(axis=0)).tolist(),
        metadata_mean=meta_mean.tolist(),
        metadata_std=_safe_std(meta_std).tolist(),
    )


def _safe_std(std: np.ndarray) -> np.ndarray:
    return np.where(std > 1e-8, std, 1.0)


def standardise(raw: RawEncoding, normalizer: Normalizer) -> tuple[list[np.ndarray], np.ndarray]:
    """float32 sequences and metadata, standardised; missing metadata filled with 0 (the mean)."""
    seq_cols, meta_cols = list(_STANDARDISED_SEQUENCE), list(_STANDARDISED_METADATA)
    sequences = []
    for sequence in raw.sequences:
        sequence = sequence.copy()
        sequence[:, seq_cols] = (sequence[:, seq_cols] - normalizer.sequence_mean) / normalizer.sequence_std
        sequences.append(sequence.astype(np.float32))
    metadata = raw.metadata.copy()
    metadata[:, meta_cols] = (metadata[:, meta_cols] - normalizer.metadata_mean) / normalizer.metadata_std
    return sequences, np.nan_to_num(metadata, nan=0.0).astype(np.float32)


def check_bands(dataset: Dataset, band_table: list[dict], where: str) -> None:
    """Raise naming the first band of `dataset` that is not in the model's saved band table."""
    known = {row["name"] for row in band_table}
    unknown = sorted(set(dataset.observations["band"]) - known)
    if unknown:
        raise TLError(f"{where}: band {unknown[0]!r} is not in the model's band table "
                      f"({', '.join(sorted(known))}); the model cannot read it")


class EncodedDataset(torch.utils.data.Dataset):
    """Standardised objects ready for the model: item i is (sequence (L, 5), metadata (5,), label).

    label is the index into the model's classes, or -1 for an object whose class the model lacks.
    """

    def __init__(self, object_ids: list[str], sequences: list[np.ndarray], metadata: np.ndarray,
                 labels: np.ndarray, dropped: dict[str, int] | None = None):
        self.object_ids = list(object_ids)
        self.sequences = [torch.from_numpy(s) for s in sequences]
        self.metadata = torch.from_numpy(metadata)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.dropped = dict(dropped or {})  # reason -> number of objects not encoded

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int):
        return self.sequences[index], self.metadata[index], self.labels[index]


def encode(dataset: Dataset, classes: list[str], normalizer: Normalizer, max_length: int) -> EncodedDataset:
    """Encode and standardise `dataset`; labels index `classes` (-1 when not among them)."""
    return from_raw(encode_raw(dataset, max_length), classes, normalizer)


def from_raw(raw: RawEncoding, classes: list[str], normalizer: Normalizer) -> EncodedDataset:
    """Standardise an already computed RawEncoding (see `encode`)."""
    sequences, metadata = standardise(raw, normalizer)
    index = {name: i for i, name in enumerate(classes)}
    labels = np.array([index.get(label, -1) for label in raw.labels], dtype=np.int64)
    dropped = {"no observations": raw.dropped_no_observations} if raw.dropped_no_observations else {}
    return EncodedDataset(raw.object_ids, sequences, metadata, labels, dropped)


def collate(batch):
    """Pad a list of items into (sequences (B, T, 5), lengths (B,), metadata (B, 5), labels (B,)).

    The model packs the padded batch with `lengths`, so padding never reaches the GRU.
    """
    sequences, metadata, labels = zip(*batch)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    padded = torch.nn.utils.rnn.pad_sequence(list(sequences), batch_first=True)
    return padded, lengths, torch.stack(metadata), torch.stack(labels)


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    """A DataLoader of padded batches (see `collate`).

    With shuffle, the order of epoch e is fixed by (seed, e): `fit` reseeds the sampler's generator
    each epoch, so a resumed run sees the same batches as an uninterrupted one.
    """
    sampler = None
    if shuffle:
        sampler = torch.utils.data.RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate)
