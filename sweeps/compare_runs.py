"""Compare selected models across sweep runs on one target, e.g. transfer from two bases against one
baseline: each point is the selected models of (MLflow store, experiment, fraction, mode), every model
scored on its own outer fold's test split, folds pooled, seeds averaged (tl.stats, as `tl report`),
with 95% paired-bootstrap intervals over the target's objects.

    python sweeps/compare_runs.py --data data/plasticc --out DIR --baseline baseline \
        --point baseline sqlite:///A/mlflow.db ztf_to_lsst 1.0 scratch \
        --point lsst_base sqlite:///A/mlflow.db ztf_to_lsst 0.3 transfer \
        --point bts_base sqlite:///B/mlflow.db ztf_to_lsst 0.3 transfer --versus lsst_base

Every object is tested once by each point (out-of-fold), so the differences pair by object even
when the runs drew their folds differently. Prints and writes (compare.json, compare.md) each
point, its difference from --baseline and from every --versus, and its share of the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from tl.errors import TLError

N_BOOT = 2000


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", required=True, help="the target data set the runs were tested on")
    parser.add_argument("--point", nargs=5, action="append", required=True,
                        metavar=("NAME", "TRACKING_URI", "EXPERIMENT", "FRACTION", "MODE"))
    parser.add_argument("--baseline", required=True, help="the NAME of the baseline point")
    parser.add_argument("--versus", action="append", default=[], help="another NAME to subtract (repeatable)")
    parser.add_argument("--sweep-run-id", action="append", default=[], metavar="NAME=ID",
                        help="a point's sweep run (default: its experiment's newest)")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def load_points(args, dataset, scratch: str) -> dict:
    """{NAME: [[PredictionTable per fold] per seed]} of every --point."""
    from mlflow.tracking import MlflowClient

    from tl.sweep.selected import download, fold_points, selected_at

    runs = dict(item.split("=", 1) for item in args.sweep_run_id)
    points = {}
    for name, uri, experiment, fraction, mode in args.point:
        if name in points:
            raise TLError(f"--point {name}: the name is used twice")
        client = MlflowClient(uri)
        try:
            rows = selected_at(client, experiment, float(fraction), runs.get(name), mode=mode)
        except TLError as error:
            raise TLError(f"--point {name} ({uri}): {error}") from None
        points[name] = fold_points(rows, download(client, rows, os.path.join(scratch, name)), dataset)[mode]
    for name in (args.baseline, *args.versus):
        if name not in points:
            raise TLError(f"--baseline/--versus {name}: no --point of that name")
    return points


def compare(points: dict, baseline: str, versus: list[str]) -> tuple[dict, dict]:
    """{NAME: estimate with minus {other: difference}} and the bootstrap's facts."""
    from tl.stats import point_estimates

    estimates, facts = point_estimates(points, baseline, n_boot=N_BOOT, seed=0)
    for name, point in estimates.items():
        point["minus"] = {baseline: point.pop("difference")} if name != baseline else {}
        point["of_baseline"] = point["macro_f1"] / estimates[baseline]["macro_f1"]
    for other in versus:
        paired, _ = point_estimates(points, other, n_boot=N_BOOT, seed=0)
        for name, point in paired.items():
            if name != other:
                estimates[name]["minus"][other] = point["difference"]
    return estimates, facts


def table(estimates: dict, facts: dict) -> str:
    lines = [f"{facts['n_objects']} objects, 95% paired bootstrap ({facts['n_resamples']} resamples)", "",
             "| point | macro-F1 | of baseline | differences |", "|---|---|---|---|"]
    for name, point in estimates.items():
        low, high = point["ci95"]
        minus = "; ".join(f"- {other}: {d['macro_f1']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
                          for other, d in point["minus"].items())
        lines.append(f"| {name} | {point['macro_f1']:.3f} [{low:.3f}, {high:.3f}] | {point['of_baseline']:.1%} | {minus} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        from tl.data import read_dataset

        dataset = read_dataset(args.data)
        with tempfile.TemporaryDirectory() as scratch:
            points = load_points(args, dataset, scratch)
            estimates, facts = compare(points, args.baseline, args.versus)
        if not estimates:
            raise TLError(f"the points share no scored object ({facts.get('note', 'none left')})")
    except TLError as error:
        print(f"compare_runs: error: {error}", file=sys.stderr)
        return 2
    text = table(estimates, facts)
    print(text, end="")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "compare.json"), "w") as stream:
        json.dump({"args": vars(args), "points": estimates, "bootstrap": facts}, stream, indent=2, default=str)
    with open(os.path.join(args.out, "compare.md"), "w") as stream:
        stream.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
