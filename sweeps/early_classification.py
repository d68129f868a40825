"""Early classification: macro-F1 of a sweep's selected models against days since first detection.

    python sweeps/early_classification.py --tracking-uri sqlite:///sweeps_out/sims_to_bts/mlflow.db \
        --experiment sims_to_bts --fraction 0.05 --data data/bts --out results/sims_to_bts/early_f0.05

Protocol v2, as `tl report`: for each mode (transfer, scratch) the selected model of every study at
the fraction (one per seed and outer fold, the best on validation) is evaluated on its own test
split, light curves cut to their first N days after first detection (RAPID's use case: brokers
classify rising transients). A seed's folds are pooled; the point is the mean over seeds, with a
95% paired bootstrap interval over the test objects and the interval of transfer - scratch.
On full light curves ("full") the points are those of `tl report`'s summary.json.
"""

import argparse
import os
import sys
import tempfile

MODES = ("transfer", "scratch")
N_BOOT = 2000


def curves(client, rows: list[dict], dataset, days: list, fraction: float, scratch: str) -> list[dict]:
    """One row per (mode, days): macro_f1, ci95, n_objects, and transfer's difference from scratch."""
    from tl.stats import point_estimates
    from tl.sweep.selected import download, fold_points

    model_dirs = download(client, rows, scratch)
    found = []
    for day in days:
        points = {(fraction, mode): seeds for mode, seeds in fold_points(rows, model_dirs, dataset, day).items()}
        estimates, facts = point_estimates(points, (fraction, "scratch"), n_boot=N_BOOT, seed=0)
        for mode in MODES:
            if (fraction, mode) not in estimates:
                continue
            point = estimates[(fraction, mode)]
            difference = point["difference"] if mode == "transfer" else None
            found.append({"mode": mode, "days": day, "macro_f1": point["macro_f1"], "ci95": point["ci95"],
                          "minus_scratch": difference, "n_objects": facts["n_objects"],
                          "n_models": sum(len(folds) for folds in points[(fraction, mode)])})
    return found


def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    days = sorted({r["days"] for r in rows if r["days"] is not None})
    ticks = days + [max(days) * 1.6]
    for mode in MODES:
        points = [next((r for r in rows if r["mode"] == mode and r["days"] == d), None) for d in [*days, None]]
        if None in points:
            continue
        values = [p["macro_f1"] for p in points]
        errors = [[v - p["ci95"][0] for v, p in zip(values, points)], [p["ci95"][1] - v for v, p in zip(values, points)]]
        axis.errorbar(ticks, values, yerr=errors, marker="o", capsize=3, label=mode)
    axis.set_xscale("log")
    axis.set_xticks(ticks, [f"{d:g}" for d in days] + ["full"])
    axis.minorticks_off()
    axis.set_xlabel("days since first detection")
    axis.set_ylabel("test macro-F1 (95% bootstrap interval)")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    import json

    from mlflow.tracking import MlflowClient

    from tl.data import read_dataset
    from tl.errors import TLError
    from tl.sweep.selected import selected_at

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--sweep-run-id", help="default: the experiment's newest sweep run")
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--data", required=True, help="the target data set (each model's own test split is used)")
    parser.add_argument("--days", default="3,5,10,20,40")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    days = [float(d) for d in args.days.split(",")] + [None]
    client = MlflowClient(args.tracking_uri)
    try:
        rows = selected_at(client, args.experiment, args.fraction, args.sweep_run_id)
        dataset = read_dataset(args.data)
        with tempfile.TemporaryDirectory() as scratch:
            found = curves(client, rows, dataset, days, args.fraction, scratch)
    except TLError as error:
        print(f"early_classification: error: {error}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "early_classification.json"), "w") as handle:
        json.dump({"fraction": args.fraction, "n_boot": N_BOOT, "rows": found}, handle, indent=2)
    plot(found, os.path.join(args.out, "early_classification.png"),
         f"{args.experiment}: selected models at fraction {args.fraction:g}")
    for row in found:
        low, high = row["ci95"]
        extra = "" if not row["minus_scratch"] else \
            " transfer-scratch {:+.3f} [{:+.3f}, {:+.3f}]".format(row["minus_scratch"]["macro_f1"],
                                                                 *row["minus_scratch"]["ci95"])
        print(f"{row['mode']:9s} days={row['days']!s:5s} macro-F1={row['macro_f1']:.3f} [{low:.3f}, {high:.3f}] "
              f"n={row['n_objects']}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
