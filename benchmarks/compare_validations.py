"""Two simulator versions' validations side by side: the sim-vs-real AUC per class, with seeds as replicates.

    python benchmarks/compare_validations.py --dir benchmarks/results/simulator/v5 --before v4 --after v5
                                             [--before-dir DIR] [--configs train val ...] [--out comparison.md]

Reads validation_<before>_<config>.json and validation_<after>_<config>.json (benchmarks/validate_simulator.py
with --seeds K) from --dir (the before version's from --before-dir where given), and writes a Markdown table:
per config and class, each version's mean AUC over its seeds [min, max], the count of quantities with
KS > max(0.1, null95) at the first seed, and the difference of the means with Welch's 95% t interval over the seeds (simulation noise only: the real
sample is the same for both).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate_simulator as validation  # noqa: E402

CONFIGS = ("train", "val", "cadence_train", "cadence_val", "train60", "val60", "cadence_train60", "cadence_val60")


def welch_difference(after: list[float], before: list[float]) -> tuple[float, float, float]:
    """mean(after) - mean(before) and its Welch 95% t interval (scipy's unequal-variance t test)."""
    result = stats.ttest_ind(after, before, equal_var=False)
    low, high = result.confidence_interval(0.95)
    return float(np.mean(after) - np.mean(before)), float(low), float(high)


def flagged(quantities: dict) -> int:
    """Quantities whose KS exceeds both 0.1 and its sampling noise (null95)."""
    return sum(validation.ks_excess(q) > 0 for q in quantities.values())


def rows(before: dict, after: dict, config: str) -> list[str]:
    """One Markdown row per class present in both validations."""
    lines = []
    for label, seeds_after in after["auc_by_seed"].items():
        seeds_before = before["auc_by_seed"].get(label)
        if seeds_before is None:
            continue
        difference, low, high = welch_difference(seeds_after, seeds_before)
        cells = [f"{np.mean(s):.3f} [{min(s):.3f}, {max(s):.3f}] ({flagged(v['classes'][label]['quantities'])})"
                 for s, v in ((seeds_before, before), (seeds_after, after))]
        lines.append(f"| {config} | {label} | {cells[0]} | {cells[1]} | {difference:+.3f} [{low:+.3f}, {high:+.3f}] |")
    return lines


def comparison(directory: str, before: str, after: str, configs=CONFIGS, before_directory: str | None = None) -> str:
    header = (f"| validation | class | {before} AUC mean [min, max] (flagged KS) | {after} AUC mean [min, max] "
              f"(flagged KS) | {after} - {before} [95% Welch t] |")
    lines = [header, "|---|---|---|---|---|"]
    for config in configs:
        loaded = []
        for version, folder in ((before, before_directory or directory), (after, directory)):
            with open(os.path.join(folder, f"validation_{version}_{config}.json")) as stream:
                loaded.append(json.load(stream))
        lines += rows(loaded[0], loaded[1], config)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder holding both versions' validation_<tag>.json")
    parser.add_argument("--before", required=True)
    parser.add_argument("--before-dir", default=None, help="the before version's folder, if not --dir")
    parser.add_argument("--after", required=True)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--out", default=None, help="write the table here too (default: print only)")
    args = parser.parse_args(argv)
    table = comparison(args.dir, args.before, args.after, args.configs, args.before_dir)
    print(table)
    if args.out:
        with open(args.out, "w") as stream:
            stream.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
