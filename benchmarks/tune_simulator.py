"""Tune a class's light-curve model or the survey to the BTS train split: minimise the sim-vs-real AUC.

    python benchmarks/tune_simulator.py --space "SN II" [--trials 100] [--seeds 0 1] [--n 1500]
                                        [--bts /work/runs/bts] [--storage sqlite:///tune.db] [--study NAME]
                                        [--confirm K] [--confirm-seeds 10 11 12] [--ks-penalty W]

Each trial patches the models of a search space (SPACES: the class's model, and a new sub-type where
the space has one; or the ZTF survey alone) with values drawn by Optuna's TPE sampler, simulates `--n`
BTS-like ZTF alert-stream objects of the class for each seed in `--seeds` (the same seeds for every
trial: common random numbers, so that trials differ by their parameters, not their noise) and scores
them with validate_simulator's sim-vs-real classifier against the train split; a space that scores
several classes ("ZTF": SN Ia, SN II and SN Ibc) averages their scores. The objective is the mean
AUC over the seeds (with `--ks-penalty W`, plus W times the summed excess of each quantity's KS beyond
max(0.1, null95): minimising the AUC alone can trade marginal fits for joint ones); a best trial is
therefore optimistic (selected
among many noisy scores, in sample): `--confirm K` re-scores the K best on other seeds, to choose
among them; then validate_simulator.py (several seeds, and the val split, which nothing here sees)
before the values go into tl/lightcurve_models.py. Several processes may share one
`--storage` (parallel workers of one study; give each OMP_NUM_THREADS=1: two workers with OpenMP's
default threads on 2 cores ran a trial in ~100 s instead of ~3 s here). Prints the best trial's values.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate_simulator as validation  # noqa: E402

from tl import lightcurve_models as lc  # noqa: E402
from tl.simulate import simulate  # noqa: E402
from tl.surveys import SURVEY_MODELS, ZTF, SurveyModel  # noqa: E402

@dataclasses.dataclass(frozen=True)
class Space:
    """What a study searches: the class it scores, and per model name the fields' bounds: (low, high)
    of a float, one (low, high) pair per entry of a (centre, spread) tuple, or a tuple of choices.
    A model not in lc.MODELS is a new sub-type of `label`: a copy of `base` with these fields, whose
    share of the class is searched in (low, high) `share`. `survey`: ZTF cadence and depth fields
    (they change every class: score several with `scored`, or check the others with
    validate_simulator.py). `scored`: the classes whose mean score is the objective (default: label)."""

    label: str
    models: dict[str, dict]
    base: str = ""
    share: tuple[float, float] = (0.0, 0.0)
    survey: dict = dataclasses.field(default_factory=dict)  # ZTF SurveyModel fields; a dict field per key
    scored: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.scored or (self.label,)


SN_II_FIELDS = {"peak_magnitude": ((-17.8, -16.4), (0.5, 1.2)), "rise_days": ((4.0, 14.0), (0.3, 0.9)),
                "fade_days": ((20.0, 80.0), (0.3, 0.8)), "peak_magnitude_per_ln_fade": (-1.5, 1.2),
                "temperature_peak_k": ((8000.0, 30000.0), (1000.0, 6000.0)),
                "temperature_late_k": (5000.0, 7500.0), "cooling_days": (5.0, 40.0),
                "cools_from_first_light": (False, True), "plateau_end_days": ((60.0, 140.0), (10.0, 40.0))}
SN_IA_FIELDS = {
    "peak_magnitude": ((-19.6, -19.0), (0.15, 0.45)), "rise_days": ((9.0, 13.0), (0.05, 0.25)),
    "fade_days": ((11.0, 17.0), (0.1, 0.3)), "peak_magnitude_per_ln_fade": (-1.5, 0.0),
    "first_light_rises": (1.4, 2.0), "tail_fraction": (0.1, 0.4), "tail_half_life_days": (18.0, 40.0),
    "temperature_peak_k": ((10000.0, 14000.0), (700.0, 2200.0)), "temperature_late_k": (4500.0, 6500.0),
    "cooling_days": (12.0, 28.0), "host_ebv_mean": (0.02, 0.2)}
SN_IBC_FIELDS = {
    "peak_magnitude": ((-18.0, -16.5), (0.4, 1.0)), "rise_days": ((8.0, 16.0), (0.15, 0.5)),
    "fade_days": ((6.0, 16.0), (0.2, 0.6)), "peak_magnitude_per_ln_fade": (-1.0, 1.0),
    "first_light_rises": (1.2, 2.0), "tail_fraction": (0.0, 0.3), "tail_half_life_days": (20.0, 100.0),
    "temperature_peak_k": ((5500.0, 11000.0), (800.0, 2500.0)), "temperature_late_k": (4000.0, 6500.0),
    "cooling_days": (10.0, 50.0), "host_ebv_mean": (0.1, 0.5)}
ZTF_FIELDS = {
    "depth": {"ztf_g": (20.3, 21.3), "ztf_r": (20.1, 21.1)}, "depth_scatter": (0.2, 0.6),
    "grid_days": {1: (0.05, 0.3), 2: (0.05, 0.3), 3: (0.3, 0.8), 4: (0.0, 0.15)},
    "grid_probability": (0.7, 1.0), "grid_jitter": (0.0, 0.5), "pair_probability": (0.3, 0.8),
    "weather_loss": (0.15, 0.35), "weather_run_nights": (1.0, 4.0), "repeat_probability": (0.0, 0.2),
    "night_probability": (0.0, 0.15), "detection_snr": (5.0, 7.0)}
SPACES: dict[str, Space] = {
    "SN II": Space("SN II", {"SN II": SN_II_FIELDS}),
    # two SN II populations: IIP-like (own model, searched) and the rest
    "SN II+IIP": Space("SN II", {"SN II": SN_II_FIELDS, "SN IIP": SN_II_FIELDS}, base="SN II", share=(0.1, 0.8)),
    "SN Ia": Space("SN Ia", {"SN Ia": SN_IA_FIELDS}),
    "SN Ia+ZTF": Space("SN Ia", {"SN Ia": SN_IA_FIELDS}, survey=ZTF_FIELDS),
    "SN Ibc": Space("SN Ibc", {"SN Ibc": SN_IBC_FIELDS}),
    # the survey alone, scored on the three supernova classes at once (its fields change them all)
    "ZTF": Space("", {}, survey=ZTF_FIELDS, scored=("SN Ia", "SN II", "SN Ibc")),
}


def suggest(trial, name: str, field: str, bounds):
    """One value of a model field: a float, a (centre, spread) pair, or a choice."""
    key = f"{name}.{field}"
    if isinstance(bounds[0], tuple):
        return tuple(trial.suggest_float(f"{key}[{i}]", *pair) for i, pair in enumerate(bounds))
    if isinstance(bounds[0], bool):
        return trial.suggest_categorical(key, list(bounds))
    return trial.suggest_float(key, *bounds)


def suggest_survey(trial, survey: SurveyModel, fields: dict) -> SurveyModel:
    """ZTF with this trial's values of `fields`; a dict field (depth per band, grid shares) per key."""
    values = {}
    for field, bounds in fields.items():
        if isinstance(bounds, dict):
            values[field] = {**getattr(survey, field), **{key: trial.suggest_float(f"ztf.{field}[{key}]", *pair)
                                                          for key, pair in bounds.items()}}
        else:
            values[field] = trial.suggest_float(f"ztf.{field}", *bounds)
    return dataclasses.replace(survey, **values)


def current_values(space: Space) -> dict:
    """Today's values of the space as Optuna parameters (those within their bounds; a new sub-type
    starts as its base)."""
    values = {}
    for name, fields in space.models.items():
        model = lc.MODELS.get(name, lc.MODELS.get(space.base))
        for field, bounds in fields.items():
            value = getattr(model, field)
            if isinstance(bounds[0], tuple):
                values.update({f"{name}.{field}[{i}]": v for i, (v, pair) in enumerate(zip(value, bounds))
                               if pair[0] <= v <= pair[1]})
            elif isinstance(bounds[0], bool) or bounds[0] <= value <= bounds[1]:
                values[f"{name}.{field}"] = value
    for field, bounds in space.survey.items():
        value = getattr(ZTF, field)
        if isinstance(bounds, dict):
            values.update({f"ztf.{field}[{key}]": value[key] for key, (low, high) in bounds.items()
                           if low <= value.get(key, low - 1) <= high})
        elif bounds[0] <= value <= bounds[1]:
            values[f"ztf.{field}"] = value
    return values


@contextlib.contextmanager
def patched(trial, space: Space):
    """lc.MODELS (and a new sub-type's share) with this trial's values, restored afterwards."""
    models, shares, canonical = dict(lc.MODELS), dict(lc.SUBTYPE_SHARES), dict(lc.CANONICAL_CLASS)
    surveys = dict(SURVEY_MODELS)
    if space.survey:
        SURVEY_MODELS["ztf"] = suggest_survey(trial, ZTF, space.survey)
    for name, fields in space.models.items():
        model = lc.MODELS.get(name, lc.MODELS.get(space.base))
        lc.MODELS[name] = dataclasses.replace(model, **{field: suggest(trial, name, field, bounds)
                                                        for field, bounds in fields.items()})
        if name not in models:
            share = trial.suggest_float(f"{name}.share", *space.share)
            lc.SUBTYPE_SHARES[space.label] = {**shares.get(space.label, {}), name: share}
            lc.CANONICAL_CLASS[name] = space.label
    try:
        yield
    finally:
        for table, saved in ((lc.MODELS, models), (lc.SUBTYPE_SHARES, shares), (lc.CANONICAL_CLASS, canonical),
                             (SURVEY_MODELS, surveys)):
            table.clear()
            table.update(saved)


def score_classes(labels, real, seeds, n: int, ks_penalty: float = 0.0) -> float:
    """The mean of score over the classes `labels` (each simulated on its own, `n` objects a seed)."""
    return float(np.mean([score(label, real, seeds, n, ks_penalty) for label in labels]))


def score(label: str, real, seeds, n: int, ks_penalty: float = 0.0) -> float:
    """Mean over `seeds` of the sim-vs-real AUC (+ ks_penalty x the summed validation.ks_excess) for the
    models now in lc.MODELS."""
    values = []
    for seed in seeds:
        data = simulate("ztf", n, seed, bts_like=True, alerts_only=True, class_mix={label: 1.0})
        simulated = validation.summaries(data.objects, data.observations)
        if ks_penalty:
            result = validation.compare(simulated, real[real["class"] == label], seed)[label]
            excess = sum(validation.ks_excess(q) for q in result["quantities"].values())
            values.append(result["auc"] + ks_penalty * excess)
        else:
            values.append(validation.sim_vs_real_auc(simulated, real[real["class"] == label], seed))
    return float(np.mean(values))


def objective(space: Space, real, seeds, n: int, ks_penalty: float = 0.0):
    def run(trial) -> float:
        with patched(trial, space):
            return score_classes(space.classes, real, seeds, n, ks_penalty)
    return run


def confirm(study, space: Space, real, seeds, n: int, top: int, ks_penalty: float = 0.0) -> None:
    """Re-score the `top` best trials on other seeds (the best in-sample score is optimistic)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for trial in sorted(done, key=lambda t: t.value)[:top]:
        with patched(optuna.trial.FixedTrial(trial.params), space):
            fresh = score_classes(space.classes, real, seeds, n, ks_penalty)
        print(f"trial {trial.number}: {trial.value:.3f} in the search, {fresh:.3f} on seeds {seeds}", flush=True)


def main(argv=None) -> int:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True, choices=sorted(SPACES))
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--bts", default="/work/runs/bts")
    parser.add_argument("--storage", default=None, help="Optuna storage URL shared by parallel workers")
    parser.add_argument("--study", default=None)
    parser.add_argument("--sampler-seed", type=int, default=0)
    parser.add_argument("--confirm", type=int, default=0, metavar="K",
                        help="after the search, re-score the K best trials on --confirm-seeds")
    parser.add_argument("--confirm-seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--ks-penalty", type=float, default=0.0, metavar="W",
                        help="minimise AUC + W x the summed KS excess beyond max(0.1, null95) (default: the AUC)")
    args = parser.parse_args(argv)
    if args.ks_penalty < 0:
        parser.error(f"--ks-penalty must be >= 0, got {args.ks_penalty}")
    space = SPACES[args.space]
    real = validation.real_summaries(args.bts, "train")
    study = optuna.create_study(study_name=args.study or f"simulator-{args.space}", storage=args.storage,
                                load_if_exists=True, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=args.sampler_seed, multivariate=True))
    if not study.trials:
        study.enqueue_trial(current_values(space), skip_if_exists=True)  # trial 0: today's model
    study.optimize(objective(space, real, args.seeds, args.n, args.ks_penalty), n_trials=args.trials)
    print(f"best {'AUC' if not args.ks_penalty else 'AUC + penalty'} {study.best_value:.3f} "
          f"(trial {study.best_trial.number}, in sample)")
    for key, value in sorted(study.best_params.items()):
        print(f"  {key} = {value}")
    if args.confirm:
        confirm(study, space, real, args.confirm_seeds, args.n, args.confirm, args.ks_penalty)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
