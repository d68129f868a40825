"""`tl simulate --match-real DATA_DIR`: keep simulated objects in proportion to how real they look.

Per class, a gradient-boosting classifier learns to tell a calibration simulation's per-object
summaries (tl.lc_summaries: detections, durations, colour, cadence, S/N, flux/peak, redshift) from
those of a real data set's train split. Its odds p / (1 - p) estimate the density ratio
real / simulated (Cranmer, Pavez & Louppe 2015, arXiv:1506.02169; the reweighting of simulation to
data of Rogozhnikov 2016, arXiv:1608.05806). A simulated object is then kept with probability
min(1, ratio / cap), cap = the ratio's CAP_QUANTILE quantile on the calibration sample: rejection
sampling towards the real distribution, as far as the simulation covers it and the cap allows.

Every kept object is an unmodified simulation; what changes is which ones are kept (population
and selection, jointly). The classifier's strength is set by early stopping on a quarter of the
calibration data, so with few real objects it stays weak and rejects little; classes with fewer
than MIN_REAL real objects are kept as simulated. The real objects it saw are no longer an honest
yardstick for the output: validate against other objects (benchmarks/validate_simulator.py
--match-real with --real-split val, or a held-out half).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tl.config import MAX_SEED
from tl.data import Dataset, assign_splits, read_dataset
from tl.errors import TLError
from tl.lc_summaries import QUANTITIES, summaries
from tl.simulate import class_quotas, parse_class_mix, simulate

MIN_REAL = 20  # real objects a class needs to be matched
CAP_QUANTILE = 0.99  # keep probability = min(1, ratio / this quantile of the ratio): bounds the cost
CALIBRATION_PER_CLASS = 3000  # simulated objects per class: FIT_SHARE to fit the classifier, the rest for the cap
FIT_SHARE = 2 / 3
MAX_ITERATIONS = 300  # boosting rounds at most; early stopping ends far sooner
LEARNING_RATE = 0.05
MIN_SAMPLES_LEAF = 20
MAX_BATCH = 50_000  # objects per simulate() call: bounds the memory of a large matched simulation
REASON_REJECTED = "not selected: rejected by --match-real"
REASON_SURPLUS = "not used: simulated past the class's quota (--match-real)"


@dataclass(frozen=True)
class ClassMatch:
    """One class's classifier (fitted on n_real and n_simulated objects) and its keep rule; `acceptance`:
    the mean keep probability on the calibration objects it was not fitted on."""
    label: str
    n_real: int
    n_simulated: int
    iterations: int
    cap: float
    acceptance: float
    classifier: object = field(repr=False, compare=False)

    def keep_probability(self, table: pd.DataFrame) -> np.ndarray:
        return np.minimum(density_ratio(self.classifier, table) / self.cap, 1.0)


@dataclass(frozen=True)
class Match:
    source: str
    classes: dict[str, ClassMatch]

    def keep_probability(self, table: pd.DataFrame) -> np.ndarray:
        """Per summaries row, its keep probability (1 for classes not matched)."""
        probability = np.ones(len(table))
        for label, match in self.classes.items():
            rows = (table["class"] == label).to_numpy()
            if rows.any():
                probability[rows] = match.keep_probability(table[rows])
        return probability

    def describe(self) -> dict:
        """For dataset.json: per class n_real, n_simulated, iterations, cap, acceptance."""
        return {"source": self.source, "cap_quantile": CAP_QUANTILE, "classes": {
            label: {"n_real": m.n_real, "n_simulated": m.n_simulated, "iterations": m.iterations,
                    "cap": m.cap, "acceptance": m.acceptance} for label, m in self.classes.items()}}


def density_ratio(classifier, table: pd.DataFrame) -> np.ndarray:
    """Odds real : simulated of each row (the classifier is fitted class-balanced, so no prior factor)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one thread: the same floating-point sums, so the same output, everywhere
        p = classifier.predict_proba(table[list(QUANTITIES)].to_numpy(float))[:, 1]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return p / (1 - p)


def fit_class(label: str, simulated: pd.DataFrame, real: pd.DataFrame, seed: int) -> ClassMatch:
    """The classifier simulated (0) vs real (1) on the QUANTITIES, class-balanced, early-stopped, fitted
    on FIT_SHARE of `simulated`; the cap and the acceptance from the rest (on the objects it fitted, its
    ratios are biased low)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    fitted = np.random.default_rng([seed, 3]).random(len(simulated)) < FIT_SHARE
    classifier = HistGradientBoostingClassifier(
        max_iter=MAX_ITERATIONS, learning_rate=LEARNING_RATE, min_samples_leaf=MIN_SAMPLES_LEAF,
        early_stopping=True, validation_fraction=0.25, n_iter_no_change=15, class_weight="balanced",
        random_state=seed)
    features = pd.concat([simulated[fitted][list(QUANTITIES)], real[list(QUANTITIES)]]).to_numpy(float)
    with threadpool_limits(1):
        classifier.fit(features, np.r_[np.zeros(fitted.sum()), np.ones(len(real))])
    ratio = density_ratio(classifier, simulated[~fitted])
    cap = float(np.quantile(ratio, CAP_QUANTILE))
    return ClassMatch(label, len(real), int(fitted.sum()), int(classifier.n_iter_), cap,
                      float(np.mean(np.minimum(ratio / cap, 1.0))), classifier)


def real_summaries(path: str, labels) -> pd.DataFrame:
    """summaries() of the train split of the tl data set at `path` (every object if it has no split),
    checked to hold >= MIN_REAL objects of at least one of `labels` (TLError naming the flag)."""
    if not os.path.isfile(os.path.join(path, "dataset.json")):
        raise TLError(f"--match-real {path}: not a tl data set (no dataset.json)")
    data = read_dataset(path)
    chosen = data.objects[data.objects["split"] == "train"] if "split" in data.objects else data.objects
    real = summaries(chosen, data.observations[data.observations["object_id"].isin(chosen["object_id"])])
    counts = real["class"].value_counts()
    if not any(counts.get(label, 0) >= MIN_REAL for label in labels):
        raise TLError(f"--match-real {path}: no simulated class has >= {MIN_REAL} train objects with a ZTF g/r "
                      f"detection there ({', '.join(f'{k} {v}' for k, v in counts.items()) or 'none at all'})")
    return real


def fit_match(simulated: pd.DataFrame, real: pd.DataFrame, source: str, seed: int) -> Match:
    """A ClassMatch for each class with >= MIN_REAL real objects and simulated ones too."""
    classes = {}
    for label, real_class in real.groupby("class"):
        simulated_class = simulated[simulated["class"] == label]
        if len(real_class) >= MIN_REAL and len(simulated_class) >= MIN_REAL:
            classes[label] = fit_class(label, simulated_class, real_class, seed)
    return Match(source, classes)


def derived_seed(seed: int, *keys: int) -> int:
    """A seed for one simulate() call of simulate_matched, fixed by (seed, keys)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0]) % (MAX_SEED + 1)


def simulate_matched(survey: str, n: int, seed: int, match_real: str, class_mix: str | dict | None = None,
                     calibration_per_class: int = CALIBRATION_PER_CLASS, **settings) -> Dataset:
    """`n` objects of tl.simulate.simulate(survey, ..., **settings), each class kept by its
    ClassMatch against the train split of the data set at `match_real` (module docstring).
    Every simulated object not written is counted in meta["dropped"]; meta["match_real"] holds the
    classifiers' description and each class's realised acceptance."""
    if survey != "ztf":
        raise TLError("--match-real compares ZTF g/r light curves: use --survey ztf")
    mix = class_mix if isinstance(class_mix, dict) else parse_class_mix(class_mix)
    quotas = {label: q for label, q in class_quotas(n, {k: v / sum(mix.values()) for k, v in mix.items()}).items()
              if q > 0}
    real = real_summaries(match_real, quotas)
    calibration = simulate(survey, calibration_per_class * len(quotas), derived_seed(seed, 0), **settings,
                           class_mix={label: 1 / len(quotas) for label in quotas})
    match = fit_match(summaries(calibration.objects, calibration.observations), real, match_real, seed)
    rng = np.random.default_rng([seed, 1])
    kept, tally = [], {"generated": {}, "dropped": {}, "examined": {}}
    for index, label in enumerate(quotas, start=1):
        kept += _fill_class(survey, label, quotas[label], match, (seed, index), rng, settings, tally)
    described = {**match.describe(), "calibration_objects": len(calibration.objects)}
    return _assemble(kept, survey, n, seed, described, tally, quotas, calibration.meta["settings"])


def _fill_class(survey, label, quota, match, seed_keys, rng, settings, tally) -> list:
    """Batches of `label` simulated (batch k with derived_seed(*seed_keys, k)) and kept by `match` until
    `quota` are kept: [(objects, observations)]; adds the batches' counts to `tally`."""
    parts, remaining, examined = [], quota, 0
    rate = match.classes[label].acceptance if label in match.classes else 1.0
    while remaining > 0:
        size = remaining if label not in match.classes else int(remaining / max(rate, 0.01) * 1.1) + 16
        batch = simulate(survey, min(size, MAX_BATCH), derived_seed(*seed_keys, len(parts)), **settings,
                         class_mix={label: 1.0})
        objects, observations = _keep(batch, match, rng, remaining)
        parts.append((objects, observations))
        _add(tally["generated"], batch.meta["generated"])
        _add(tally["dropped"], {**batch.meta["dropped"], f"{REASON_REJECTED} ({label})": objects.attrs["rejected"],
                                f"{REASON_SURPLUS} ({label})": objects.attrs["surplus"]})
        examined += objects.attrs["examined"]
        remaining -= len(objects)
        rate = max((quota - remaining) / examined, 0.01)
    tally["examined"][label] = examined
    return parts


def _keep(batch: Dataset, match: Match, rng: np.random.Generator, room: int):
    """The objects of `batch` kept by `match` (at most `room`, in order; attrs: examined, rejected,
    surplus) and their observations. Objects without a positive g/r detection cannot be judged: kept."""
    table = summaries(batch.objects, batch.observations).set_index("object_id")
    probability = pd.Series(1.0, index=batch.objects["object_id"].to_numpy())
    probability[table.index] = match.keep_probability(table)
    keep = rng.random(len(probability)) < probability.to_numpy()
    chosen = np.flatnonzero(keep)
    examined = len(keep) if len(chosen) <= room else int(chosen[room - 1]) + 1
    chosen = chosen[:room]
    objects = batch.objects.iloc[chosen].reset_index(drop=True)
    objects.attrs.update(examined=examined, rejected=examined - len(chosen), surplus=len(keep) - examined)
    return objects, batch.observations[batch.observations["object_id"].isin(objects["object_id"])]


def _add(total: dict, counts: dict) -> None:
    for key, count in counts.items():
        if count:
            total[key] = total.get(key, 0) + count


def _assemble(kept, survey, n, seed, described, tally, quotas, settings) -> Dataset:
    """One Dataset of the kept parts: objects shuffled and renamed sim-<survey>-match-0000000, ..."""
    objects = pd.concat([o.assign(part=k) for k, (o, _) in enumerate(kept)], ignore_index=True)
    observations = pd.concat([obs.assign(part=k) for k, (_, obs) in enumerate(kept)], ignore_index=True)
    position = np.empty(len(objects), dtype=int)
    position[np.random.default_rng([seed, 2]).permutation(len(objects))] = np.arange(len(objects))
    names = pd.DataFrame({"part": objects["part"], "object_id": objects["object_id"], "position": position})
    observations = observations.merge(names, on=["part", "object_id"], how="left", validate="many_to_one")
    observations = observations.iloc[np.argsort(observations["position"].to_numpy(), kind="stable")]
    new_ids = np.array([f"sim-{survey}-match-{k:07d}" for k in range(len(objects))])
    objects = objects.assign(object_id=new_ids[position]).iloc[np.argsort(position)].drop(columns=["part", "split"])
    observations = observations.assign(object_id=new_ids[observations["position"].to_numpy()])
    objects = objects.reset_index(drop=True)
    objects["split"] = assign_splits(objects, seed)
    for label, quota in quotas.items():
        described["classes"].setdefault(label, {})["realised_acceptance"] = quota / tally["examined"][label]
    meta = {"name": f"sim-{survey}-matched-n{n}-seed{seed}", "survey": survey, "source": "simulation",
            "dropped": dict(sorted(tally["dropped"].items())), "generated": tally["generated"],
            "settings": {**settings, "n": n, "seed": seed, "class_mix": {k: q / n for k, q in quotas.items()},
                         "match_real": described["source"]},
            "match_real": described}
    return Dataset(objects, observations[["object_id", "mjd", "band", "flux", "flux_err", "detected"]]
                   .reset_index(drop=True), meta)
