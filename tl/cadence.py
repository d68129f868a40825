"""Nightly sampling beyond the survey model: drawn from real light curves (`tl simulate
--cadence-from DATA_DIR`) and randomised field by field (`--vary-depth`, `--vary-cadence`).

A real alert light curve's detections are a stretch of its field's visit sequence: which nights,
how many visits, which bands, at what time of night, how far apart. A CadenceLibrary keeps those
stretches (one per real object, times relative to its first night); `library_visits` lays them
end to end over each simulated object's window, a real night-to-night gap between two
stretches, and keeps the visits in the field's season. Depth stays the survey model's.

Real stretches are only where the real object was bright enough to be detected, so the faint
ends of light curves, where some visits fail, are sampled a little sparser than their fields were.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from tl.errors import TLError
from tl.surveys import band_moon_loss, schedule_visits


@dataclass(frozen=True)
class CadenceLibrary:
    """Real visit stretches, concatenated: stretch k is offsets[start[k]: start[k] + length[k]]
    (days after the UT midnight before its first visit) in bands band[...] (indices into `bands`)."""

    bands: tuple[str, ...]
    offsets: np.ndarray  # (n_visits,) float days
    band: np.ndarray  # (n_visits,) int8
    start: np.ndarray  # (n_stretches,) int
    length: np.ndarray  # (n_stretches,)
    night_gaps: np.ndarray  # (n_gaps,) int >= 1: gaps between consecutive observed nights
    source: str

    @property
    def span_nights(self) -> np.ndarray:
        """(n_stretches,) nights from a stretch's first night to the one after its last."""
        last = self.start + self.length - 1
        return np.floor(self.offsets[last]).astype(int) + 1


def library_from_dataset(dataset, bands: tuple[str, ...], source: str) -> CadenceLibrary:
    """The detections of `dataset` (its train split when it has splits) in `bands`, per object."""
    objects = dataset.objects
    if "split" in objects and (objects["split"] == "train").any():
        objects = objects[objects["split"] == "train"]
    obs = dataset.observations
    obs = obs[obs["object_id"].isin(objects["object_id"]) & obs["band"].isin(bands) & obs["detected"]]
    if obs.empty:
        raise TLError(f"--cadence-from {source}: no detection in the bands {', '.join(bands)}")
    obs = obs.sort_values(["object_id", "mjd"], kind="stable")
    mjd = obs["mjd"].to_numpy(float)
    ids = obs["object_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, len(ids)])
    first_night = np.floor(mjd[starts])
    offsets = mjd - np.repeat(first_night, lengths)
    nights = np.floor(mjd)
    same_object = np.r_[False, ids[1:] == ids[:-1]]
    gaps = np.diff(nights)[same_object[1:]]
    if not np.any(gaps >= 1):
        raise TLError(f"--cadence-from {source}: no light curve spans two nights (no night gaps to draw)")
    band_index = {name: k for k, name in enumerate(bands)}
    band = np.array([band_index[b] for b in obs["band"].to_numpy()], dtype=np.int8)
    return CadenceLibrary(bands=tuple(bands), offsets=offsets, band=band, start=starts, length=lengths,
                          night_gaps=gaps[gaps >= 1].astype(int), source=source)


def load_library(path: str, bands: tuple[str, ...]) -> CadenceLibrary:
    """CadenceLibrary of the tl data set at `path` (TLError naming the flag if it is not one)."""
    from tl.data import read_dataset

    if not os.path.isfile(os.path.join(path, "dataset.json")):
        raise TLError(f"--cadence-from {path}: not a tl data set (no dataset.json)")
    return library_from_dataset(read_dataset(path), bands, path)


def library_visits(library: CadenceLibrary, first_night, n_nights, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(object index, mjd, band index into library.bands) of every visit in each object's window
    [first_night, first_night + n_nights), sorted by object then time: stretches drawn at random,
    the first one entered at a random night, each next one a real night gap after the last."""
    first_night = np.asarray(first_night, dtype=int)
    if len(first_night) == 0:
        return np.zeros(0, np.intp), np.zeros(0), np.zeros(0, np.intp)
    end = first_night + np.asarray(n_nights, dtype=int)
    span = library.span_nights
    pick = rng.integers(0, len(library.start), len(first_night))
    cursor = first_night - np.floor(rng.random(len(first_night)) * span[pick]).astype(int)
    active = np.arange(len(first_night))
    pieces = []
    while len(active):
        stretch = pick[active]
        visit = _stretch_visits(library, stretch)  # (n_visits,) indices into the library
        owner = np.repeat(active, library.length[stretch])
        mjd = np.repeat(cursor[active], library.length[stretch]) + library.offsets[visit]
        inside = (mjd >= first_night[owner]) & (mjd < end[owner])
        pieces.append((owner[inside], mjd[inside], library.band[visit][inside]))
        cursor[active] += span[stretch] + library.night_gaps[rng.integers(0, len(library.night_gaps), len(active))] - 1
        active = active[cursor[active] < end[active]]
        pick[active] = rng.integers(0, len(library.start), len(active))
    obj, mjd, band = (np.concatenate(column) for column in zip(*pieces))
    order = np.lexsort((mjd, obj))
    return obj[order], mjd[order], band[order].astype(np.intp)


def _stretch_visits(library: CadenceLibrary, stretch: np.ndarray) -> np.ndarray:
    """Library indices of the visits of `stretch` (stretch indices), stretch after stretch."""
    lengths = library.length[stretch]
    first = np.repeat(library.start[stretch] - np.cumsum(lengths) + lengths, lengths)
    return first + np.arange(lengths.sum())


def library_schedule(survey, library: CadenceLibrary, bands, first_night, n_nights, rng, season_offset):
    """surveys.schedule_visits with the nights, times and bands of `library`: (object index, mjd,
    band index into `bands`, 5-sigma limit), visits out of the field's season dropped; depth is
    the survey's, with its night-to-night scatter."""
    obj, mjd, band = library_visits(library, first_night, n_nights, rng)
    night = np.floor(mjd).astype(int)
    in_season = (night - np.asarray(season_offset)[obj]) % 365 < survey.season_days
    obj, mjd, band, night = obj[in_season], mjd[in_season], band[in_season], night[in_season]
    band = np.array([list(bands).index(b) for b in library.bands])[band]  # library -> `bands` index
    new_night, night_index = _nights(obj, night)
    # a real night with one detection may have had a visit in the other band that missed a
    # fading (reddening) object: single-visit nights take the survey's band shares instead
    single = np.bincount(night_index)[night_index] == 1
    weights = np.array([survey.band_weights[b] for b in bands])
    band[single] = np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(int(single.sum())), side="right")
    depth = np.array([survey.depth[b] for b in bands])
    nightly = rng.normal(0, survey.depth_scatter, int(new_night.sum()))[night_index]
    moon = band_moon_loss(survey, bands, band, night)
    return obj, mjd, band, depth[band] + nightly - moon + rng.normal(0, 0.1, len(obj))


@dataclass(frozen=True)
class Sampling:
    """How a simulation samples its fields beyond the survey model (the defaults: as the model)."""

    library: CadenceLibrary | None = None  # nights, times and bands from real light curves
    vary_depth: float = 0.0  # sigma (mag) of each field's depth offset (deeper or shallower fields)
    vary_cadence: float = 0.0  # each field keeps a share U(1 - vary_cadence, 1] of its observed nights


def sampled_visits(survey, sampling: Sampling, bands, first_night, n_nights, rng, season_offset):
    """surveys.schedule_visits (or library_schedule) with `sampling`'s randomised conditions:
    (object index, mjd, band index, 5-sigma limit), sorted by object then time."""
    if sampling.library is None:
        obj, mjd, band, limit = schedule_visits(survey, bands, first_night, n_nights, rng, season_offset)
    else:
        obj, mjd, band, limit = library_schedule(survey, sampling.library, bands, first_night, n_nights, rng,
                                                 season_offset)
    n_objects = len(first_night)
    if sampling.vary_depth > 0:
        limit = limit + rng.normal(0, sampling.vary_depth, n_objects)[obj]
    if sampling.vary_cadence > 0:
        new_night, night_index = _nights(obj, np.floor(mjd))
        keep_share = 1.0 - sampling.vary_cadence * rng.random(n_objects)
        kept_night = rng.random(int(new_night.sum())) < keep_share[obj[new_night]]
        keep = kept_night[night_index]
        obj, mjd, band, limit = obj[keep], mjd[keep], band[keep], limit[keep]
    return obj, mjd, band, limit


def _nights(obj, night) -> tuple[np.ndarray, np.ndarray]:
    """(first visit of its night?, night number 0, 1, ...) per visit, visits sorted by object then time."""
    new_night = np.ones(len(obj), dtype=bool)
    new_night[1:] = (obj[1:] != obj[:-1]) | (night[1:] != night[:-1])
    return new_night, np.cumsum(new_night) - 1
