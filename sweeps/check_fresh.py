"""Check the CLI defaults on fresh objects: the models sweeps/check_defaults.py trained (one per outer
fold) and, when given a sweep, its selected models at the same fraction, scored on every object of
data sets neither of them saw. Each fold's model is a replicate: the point is the mean over them,
with a 95% paired bootstrap over the fresh objects (tl.stats), and the interval of defaults - sweep.

    python sweeps/check_fresh.py --defaults DEFAULTS_OUT --fraction 0.05 --data alerce --data forced \
        --exclude data/bts --detections-only --out DIR \
        [--tracking-uri sqlite:///OUT/mlflow.db --experiment sims_to_bts [--sweep-run-id ID]]

--exclude drops the objects (by object_id) of the data set the models were trained on;
--detections-only drops non-detections, for models trained on alert detections (BTS). Every drop
is counted and printed; so are objects of classes the models do not know (tl.stats leaves them out).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

from tl.errors import TLError

MODES = ("transfer", "scratch")
N_BOOT = 2000


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--defaults", required=True, help="the --out of sweeps/check_defaults.py")
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--data", action="append", required=True, help="a fresh canonical data set (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="drop the objects of this data set")
    parser.add_argument("--detections-only", action="store_true", help="drop non-detections")
    parser.add_argument("--tracking-uri", help="the sweep's MLflow store, to score its selected models too")
    parser.add_argument("--experiment", help="the sweep's MLflow experiment (with --tracking-uri)")
    parser.add_argument("--sweep-run-id", help="default: the experiment's newest sweep run")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def fresh_objects(paths: list[str], exclude: list[str], detections_only: bool):
    """The concatenated data sets less the excluded objects (and non-detections); (dataset, drops)."""
    import pandas as pd

    from tl.data import Dataset, read_dataset

    sets = [read_dataset(path) for path in paths]
    objects = pd.concat([d.objects for d in sets], ignore_index=True)
    observations = pd.concat([d.observations for d in sets], ignore_index=True)
    repeated = objects["object_id"][objects["object_id"].duplicated()]
    if len(repeated):
        raise TLError(f"--data: object {repeated.iloc[0]} is in more than one of {', '.join(paths)}")
    drops = {}
    seen = set().union(*(set(read_dataset(path).objects["object_id"]) for path in exclude))
    known = objects["object_id"].isin(seen)
    drops["objects in --exclude"] = int(known.sum())
    objects = objects[~known]
    observations = observations[observations["object_id"].isin(objects["object_id"])]
    if detections_only:
        detected = observations["detected"].astype(bool)
        drops["non-detections"] = int((~detected).sum())
        observations = observations[detected]
    empty = ~objects["object_id"].isin(observations["object_id"])
    drops["objects left without observations"] = int(empty.sum())
    objects = objects[~empty]
    if objects.empty:
        raise TLError("--data: no object left after the drops")
    return Dataset(objects.reset_index(drop=True), observations.reset_index(drop=True), sets[0].meta), drops


def defaults_models(directory: str, fraction: float, mode: str) -> list[str]:
    """check_defaults.py's MODEL_DIRs of (fraction, mode), one per outer fold."""
    found = sorted(glob.glob(os.path.join(directory, f"{mode}-f{fraction:g}-k*", "model.json")))
    if not found:
        raise TLError(f"--defaults {directory}: no {mode}-f{fraction:g}-k* model (run sweeps/check_defaults.py)")
    return [os.path.dirname(path) for path in found]


def sweep_models(args, scratch: str) -> dict[str, list[str]]:
    """{mode: the sweep's selected MODEL_DIRs of (fraction, mode)} for every mode of MODES, downloaded
    under `scratch`; the rows are fetched once for all modes."""
    from mlflow.tracking import MlflowClient

    from tl.sweep.selected import download, selected_at

    client = MlflowClient(args.tracking_uri)
    rows = selected_at(client, args.experiment, args.fraction, args.sweep_run_id)
    by_mode = {mode: [row for row in rows if row["mode"] == mode] for mode in MODES}
    for mode, found in by_mode.items():
        if not found:
            raise TLError(f"--fraction {args.fraction:g}: the sweep of --experiment {args.experiment} "
                          f"has no completed {mode} study at this fraction")
    paths = download(client, [row for found in by_mode.values() for row in found], scratch)
    return {mode: [paths[row["run_id"]] for row in found] for mode, found in by_mode.items()}


def score(models: dict, dataset) -> tuple[dict, dict]:
    """tl.stats.point_estimates of {name: [MODEL_DIR, ...]} on every object, each model a replicate;
    differences from "sweep" when it is there."""
    from tl import stats
    from tl.evaluation import model_dir_table

    points = {name: [[model_dir_table(path, dataset, split="all")] for path in paths]
              for name, paths in models.items()}
    return stats.point_estimates(points, "sweep" if "sweep" in models else None, n_boot=N_BOOT, seed=0)


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    rows = []
    try:
        if bool(args.tracking_uri) != bool(args.experiment):
            raise TLError("--tracking-uri and --experiment go together")
        dataset, drops = fresh_objects(args.data, args.exclude, args.detections_only)
        with tempfile.TemporaryDirectory() as scratch:
            swept = sweep_models(args, scratch) if args.tracking_uri else {}
            for mode in MODES:
                models = {"defaults": defaults_models(args.defaults, args.fraction, mode)}
                if args.tracking_uri:
                    models["sweep"] = swept[mode]
                estimates, facts = score(models, dataset)
                rows.append({"mode": mode, "estimates": estimates, "bootstrap": facts,
                             "n_models": {name: len(paths) for name, paths in models.items()}})
    except TLError as error:
        print(f"check_fresh: error: {error}", file=sys.stderr)
        return 2
    print("dropped: " + ", ".join(f"{name} {count}" for name, count in drops.items()))
    for row in rows:
        facts = row["bootstrap"]
        parts = []
        for name, point in row["estimates"].items():
            low, high = point["ci95"]
            parts.append(f"{name} {point['macro_f1']:.3f} [{low:.3f}, {high:.3f}] ({row['n_models'][name]} models)")
            if point["difference"] and name != "sweep":
                d = point["difference"]
                parts.append(f"{name} - sweep {d['macro_f1']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
        print(f"{row['mode']} f={args.fraction:g} on {facts['n_objects']} fresh objects "
              f"({facts.get('n_objects_dropped', 0)} of unknown classes left out): " + "; ".join(parts))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "fresh.json"), "w") as stream:
        json.dump({"args": vars(args), "drops": drops, "modes": rows}, stream, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
