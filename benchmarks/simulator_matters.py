"""Does the simulator matter? Zero-shot and small-fraction transfer on real BTS from bases trained
on two simulator versions (issue 13, item 3).

    python benchmarks/simulator_matters.py --base v1=DIR1 --base v1=DIR2 --base v2=DIR3 --base v2=DIR4 \
        --data /work/runs/bts --fraction 0.05 --out /tmp/matters [--folds 5] [--set model.gru_hidden=32 ...]

Each `--base LABEL=MODEL_DIR` is one replicate of LABEL; the i-th base of every label is replicate i,
fine-tuned with data.seed = train.seed = i, so replicate i of each simulator sees the same labelled
subset. On the data set's own split (`tl ingest bts`; the simulator v2 was tuned on `train` only):

  zero-shot  the base as it is (head mapped by class name) on the `val` split
  transfer   `tl transfer` with its defaults (tl/recipes.py) on `fraction` of `train`, early
             stopping and prior correction on `val`, scored on `test`; with `--folds K`, on each of
             K outer folds of the data set (tl.data.splits_for, as the sweeps' protocol v2), the
             folds' test objects pooled: every object is tested once

Estimates are means over replicates; intervals are tl.stats paired bootstraps over the objects, and
every label's difference is taken from the first label draw by draw. Writes matters.json,
matters.md and matters.png (both points per label, in flag order, with their intervals) to --out
(the transfer MODEL_DIRs too). Labels may be simulator versions or base sizes (`--base n2000=DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tl.errors import TLError

METRICS = ("macro_f1", "balanced_accuracy")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--base", action="append", required=True, metavar="LABEL=MODEL_DIR",
                        help="a base model of simulator LABEL (repeat: one per replicate)")
    parser.add_argument("--data", required=True, help="canonical target data set with its own split")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--folds", type=int, default=0,
                        help="K >= 2: transfer on each of K outer folds, test objects pooled (0: the data's split)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="to tl transfer")
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def bases_by_label(items: list[str]) -> dict[str, list[str]]:
    """{label: [MODEL_DIR per replicate]} in flag order; every label needs the same number."""
    found: dict[str, list[str]] = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise TLError(f"--base {item!r}: expected LABEL=MODEL_DIR")
        if not os.path.exists(os.path.join(path, "model.json")):
            raise TLError(f"--base {item!r}: {path} is not a MODEL_DIR (no model.json)")
        found.setdefault(label, []).append(path)
    if len(found) < 2 or len({len(paths) for paths in found.values()}) != 1:
        raise TLError("--base: give at least two labels, each with the same number of replicates")
    return found


def zero_shot_table(base: str, dataset):
    """The zero-shot PredictionTable of `base` on the val split (tl.experiment.zero_shot_predictions,
    with its default settings: the base's data.max_length)."""
    from tl.experiment import zero_shot_predictions
    from tl.stats import PredictionTable

    _, frame = zero_shot_predictions(base, dataset, split="val")
    return PredictionTable.from_frame(frame.fillna(""), "val")


def transfer_tables(label: str, base: str, replicate: int, args, dataset) -> list:
    """The test PredictionTable of `base` fine-tuned with the `tl transfer` defaults (replicate
    seeds), one per outer fold with --folds (else one, on the data set's own split)."""
    folds = range(args.folds) if args.folds else [None]
    return [transfer_table(label, base, replicate, args, dataset, fold) for fold in folds]


def transfer_table(label: str, base: str, replicate: int, args, dataset, fold: int | None = None):
    """Fine-tune `base` with the `tl transfer` defaults (replicate seeds; outer `fold` of
    args.folds if given) and score it on its test split."""
    import tl.cli
    from tl.evaluation import model_dir_table

    name = f"transfer-{label}-r{replicate}" + ("" if fold is None else f"-k{fold}")
    out = os.path.join(args.out, name)
    if not os.path.exists(os.path.join(out, "model.json")):
        settings = [*args.set, f"data.seed={replicate}", f"train.seed={replicate}"]
        if fold is not None:
            settings += [f"data.folds={args.folds}", f"data.fold={fold}"]
        sets = [item for setting in settings for item in ("--set", setting)]
        if tl.cli.main(["transfer", "--base", base, "--data", args.data, "--fraction", str(args.fraction),
                        "--out", out, "--quiet", *sets]) != 0:
            raise TLError(f"transfer of {base} failed (see above)")
    return model_dir_table(out, dataset)


def compare(tables: dict[str, list], reference: str) -> dict:
    """Paired-bootstrap intervals of macro-F1 and balanced accuracy per label (replicate means)
    and of each label minus `reference`, the replicates' own macro-F1, the macro-F1 over classes
    with >= 10 objects; tables[label][replicate] is a list of PredictionTables (outer folds, pooled)."""
    import numpy as np

    from tl import stats

    aligned = stats.align(tables)
    found: dict = {label: {} for label in tables}
    for metric in METRICS:
        intervals, differences = stats.paired_bootstrap(aligned.y_true, aligned.y_pred, len(aligned.classes),
                                                        baseline=reference, metric=metric)
        for label, interval in intervals.items():
            found[label][metric] = {"estimate": interval.estimate, "ci95": interval.as_list(),
                                    "difference": {"estimate": differences[label].estimate,
                                                   "ci95": differences[label].as_list()}}
    for label in tables:
        found[label]["replicates_macro_f1"] = [
            stats.metrics(aligned.y_true, pred, prob, aligned.classes)["macro_f1"]
            for pred, prob in zip(aligned.y_pred[label], aligned.proba[label])]
        found[label]["macro_f1_supported"] = stats.seed_mean_metrics(aligned, label)["macro_f1_supported"]
    support = np.bincount(aligned.y_true, minlength=len(aligned.classes))
    return {"points": found, "n_objects": len(aligned.object_ids),
            "support": {name: int(count) for name, count in zip(aligned.classes, support)}}


def markdown(result: dict, reference: str) -> str:
    others = [label for label in result["labels"] if label != reference]
    lines = ["| point | metric | " + " | ".join(result["labels"]) + " | " +
             " | ".join(f"{label} - {reference}" for label in others) + " |",
             "|---|---|" + "---|" * (len(result["labels"]) + len(others))]
    for kind in ("zero_shot_val", "transfer_test"):
        points = result[kind]["points"]
        for metric in METRICS:
            cells = [interval_text(points[label][metric]) for label in result["labels"]]
            cells += [interval_text(points[label][metric]["difference"], sign=True) for label in others]
            lines.append(f"| {kind} | {metric} | " + " | ".join(cells) + " |")
        cells = [", ".join(f"{value:.3f}" for value in points[label]["replicates_macro_f1"])
                 for label in result["labels"]]
        lines.append(f"| {kind} | macro_f1 per replicate | " + " | ".join(cells) + " |" + " |" * len(others))
        cells = [f"{points[label]['macro_f1_supported']:.3f}" for label in result["labels"]]
        lines.append(f"| {kind} | macro_f1, classes >= 10 objects | " + " | ".join(cells) + " |" + " |" * len(others))
    for kind in ("zero_shot_val", "transfer_test"):
        support = ", ".join(f"{name} {count}" for name, count in result[kind]["support"].items())
        pooled = f", the test objects of {result['folds']} outer folds pooled" if kind == "transfer_test" and \
            result.get("folds") else ""
        lines.append(f"\n{kind}: {result[kind]['n_objects']} objects ({support}){pooled}")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str) -> None:
    """Zero-shot (val) and transfer (test) macro-F1 per label, replicate means with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["labels"]
    figure, axis = plt.subplots(figsize=(6, 4))
    for kind, name in (("zero_shot_val", "zero-shot (val)"), ("transfer_test", f"transfer {result['args']['fraction']:g} (test)")):
        points = [result[kind]["points"][label]["macro_f1"] for label in labels]
        values = [p["estimate"] for p in points]
        errors = [[v - p["ci95"][0] for v, p in zip(values, points)], [p["ci95"][1] - v for v, p in zip(values, points)]]
        axis.errorbar(range(len(labels)), values, yerr=errors, marker="o", capsize=3, label=name)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_ylabel(f"macro-F1 (mean of {result['replicates']} replicates, 95% interval)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def interval_text(value: dict, sign: bool = False) -> str:
    form = "{:+.3f}" if sign else "{:.3f}"
    low, high = value["ci95"]
    return f"{form.format(value['estimate'])} [{form.format(low)}, {form.format(high)}]"


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        from tl.data import read_dataset

        if args.folds == 1 or args.folds < 0:
            raise TLError(f"--folds must be 0 (the data set's split) or >= 2, got {args.folds}")
        bases = bases_by_label(args.base)
        dataset = read_dataset(args.data)
        os.makedirs(args.out, exist_ok=True)
        zero_shot = {label: [[zero_shot_table(base, dataset)] for base in paths] for label, paths in bases.items()}
        transfer = {label: [transfer_tables(label, base, i + 1, args, dataset) for i, base in enumerate(paths)]
                    for label, paths in bases.items()}
    except TLError as error:
        print(f"simulator_matters: error: {error}", file=sys.stderr)
        return 2
    reference = next(iter(bases))
    result = {"args": vars(args), "labels": list(bases), "replicates": len(bases[reference]), "folds": args.folds,
              "zero_shot_val": compare(zero_shot, reference), "transfer_test": compare(transfer, reference)}
    with open(os.path.join(args.out, "matters.json"), "w") as stream:
        json.dump(result, stream, indent=2, default=str)
    text = markdown(result, reference)
    with open(os.path.join(args.out, "matters.md"), "w") as stream:
        stream.write(text)
    plot(result, os.path.join(args.out, "matters.png"))
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
