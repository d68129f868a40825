"""Early classification: macro-F1 of a sweep's champion models against days since first detection.

    python sweeps/early_classification.py --tracking-uri sqlite:///sweeps_out/sims_to_bts/mlflow.db \
        --experiment sims_to_bts --fraction 0.1 --data data/bts --out results/sims_to_bts

For each mode (transfer, scratch) the registered champion `<experiment>-<mode>-<fraction>@champion`
is fetched from MLflow and evaluated with `tl evaluate --days N` on the test split, light curves cut
to their first N days after first detection (RAPID's use case: brokers classify rising transients).
"""

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile

MODES = ("transfer", "scratch")


def champion_model_dir(tracking_uri: str, experiment: str, mode: str, fraction: float, into: str) -> str:
    """Download the MODEL_DIR of the champion of (mode, fraction) into `into`."""
    from mlflow.tracking import MlflowClient

    from tl.sweep.results import CHAMPION
    from tl.sweep.study import registered_name

    client = MlflowClient(tracking_uri)
    version = client.get_model_version_by_alias(registered_name(experiment, mode, fraction), CHAMPION)
    return client.download_artifacts(version.run_id, "model_dir", into)


def evaluate(model_dir: str, data: str, days: float | None, scratch: str) -> dict:
    from tl.cli import main as tl_main

    out = os.path.join(scratch, f"metrics-{days}.json")
    argv = ["evaluate", "--model", model_dir, "--data", data, "--json", out]
    if days is not None:
        argv += ["--days", str(days)]
    with contextlib.redirect_stdout(io.StringIO()):  # keep tl evaluate's per-call summary quiet
        status = tl_main(argv)
    if status != 0:
        raise SystemExit(f"tl evaluate failed for {model_dir} at {days} days")
    with open(out) as handle:
        return json.load(handle)


def plot(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    days = sorted({r["days"] for r in rows if r["days"] is not None})
    ticks = days + [max(days) * 1.6]
    for mode in MODES:
        values = [next(r["macro_f1"] for r in rows if r["mode"] == mode and r["days"] == d) for d in days]
        values.append(next(r["macro_f1"] for r in rows if r["mode"] == mode and r["days"] is None))
        axis.plot(ticks, values, marker="o", label=mode)
    axis.set_xticks(ticks, [f"{d:g}" for d in days] + ["full"])
    axis.set_xlabel("days since first detection")
    axis.set_ylabel("test macro-F1")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--fraction", type=float, required=True)
    parser.add_argument("--data", required=True, help="the target data set (its test split is used)")
    parser.add_argument("--days", default="5,10,20,40")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    days = [float(d) for d in args.days.split(",")] + [None]
    os.makedirs(args.out, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for mode in MODES:
            model_dir = champion_model_dir(args.tracking_uri, args.experiment, mode, args.fraction,
                                           os.path.join(scratch, mode))
            for day in days:
                metrics = evaluate(model_dir, args.data, day, scratch)
                rows.append({"mode": mode, "days": day, "macro_f1": metrics["macro_f1"],
                             "n_objects": metrics["n_objects"]})
    with open(os.path.join(args.out, "early_classification.json"), "w") as handle:
        json.dump({"fraction": args.fraction, "rows": rows}, handle, indent=2)
    plot(rows, os.path.join(args.out, "early_classification.png"),
         f"{args.experiment}: champions at fraction {args.fraction:g}")
    for row in rows:
        print(f"{row['mode']:9s} days={row['days']!s:5s} macro-F1={row['macro_f1']:.3f} n={row['n_objects']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
