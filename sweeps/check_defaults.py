"""Check the CLI defaults without a search: `tl transfer` and `tl train` as a user runs them (the
recipes of tl/recipes.py), at one fraction, on every outer fold of a target, pooled over the folds
with paired-bootstrap intervals (tl.stats), next to scratch on all labels when asked.

    python sweeps/check_defaults.py --base BASE_MODEL_DIR --data data/bts --fraction 0.05 --folds 5 \
        --out /tmp/defaults [--baseline] [--set model.gru_hidden=32 ...]

Compare its `transfer` line with the sweep's point at that fraction (results/*/table.md): the
defaults reproduce what the sweep found when the two intervals overlap. `--set` goes to both
commands (e.g. the sweep's train.max_steps); MODEL_DIRs and check.json are written under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tl.errors import TLError


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--base", required=True, help="MODEL_DIR of the base model")
    parser.add_argument("--data", required=True, help="canonical target data set")
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--folds", type=int, default=5, help="outer folds (>= 2)")
    parser.add_argument("--baseline", action="store_true", help="also train scratch on all labels")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def train_all(args) -> dict:
    """{(fraction, mode): [MODEL_DIR per fold]}, trained through tl.cli.main."""
    import tl.cli

    runs = {(args.fraction, "transfer"): ["transfer", "--base", args.base], (args.fraction, "scratch"): ["train"]}
    if args.baseline:
        runs[(1.0, "scratch")] = ["train"]
    found = {}
    for (fraction, mode), command in runs.items():
        for fold in range(args.folds):
            out = os.path.join(args.out, f"{mode}-f{fraction:g}-k{fold}")
            if not os.path.exists(os.path.join(out, "model.json")):
                sets = [item for setting in (*args.set, f"data.folds={args.folds}", f"data.fold={fold}")
                        for item in ("--set", setting)]
                if tl.cli.main([*command, "--data", args.data, "--fraction", str(fraction), "--out", out,
                                "--quiet", *sets]) != 0:
                    raise TLError(f"{mode} at fraction {fraction:g}, fold {fold} failed (see above)")
            found.setdefault((fraction, mode), []).append(out)
    return found


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if args.folds < 2:
            raise TLError(f"--folds must be >= 2, got {args.folds}")
        from tl import stats
        from tl.data import read_dataset
        from tl.evaluation import model_dir_table

        models = train_all(args)
        dataset = read_dataset(args.data)
        points = {key: [[model_dir_table(path, dataset) for path in paths]] for key, paths in models.items()}
        baseline = (1.0, "scratch") if args.baseline else None
        estimates, facts = stats.point_estimates(points, baseline)
    except TLError as error:
        print(f"check_defaults: error: {error}", file=sys.stderr)
        return 2
    rows = []
    for (fraction, mode), point in sorted(estimates.items()):
        low, high = point["ci95"]
        difference = point.get("difference")
        extra = "" if not difference or (fraction, mode) == baseline else \
            f"; minus scratch@1: {difference['macro_f1']:.3f} [{difference['ci95'][0]:.3f}, {difference['ci95'][1]:.3f}]"
        print(f"{mode} f={fraction:g}: test macro-F1 {point['macro_f1']:.3f} [{low:.3f}, {high:.3f}]{extra}")
        rows.append({"fraction": fraction, "mode": mode, "macro_f1": point["macro_f1"], "ci95": point["ci95"],
                     "difference": difference})
    with open(os.path.join(args.out, "check.json"), "w") as stream:
        json.dump({"args": vars(args), "points": rows, "bootstrap": facts}, stream, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
