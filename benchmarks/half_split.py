"""Two copies of a tl data set whose train splits are complementary halves of its train split.

    python benchmarks/half_split.py DATA_DIR OUT_A OUT_B [--seed 0] [--add-val]

Per class, the train objects are ordered by tl.data's seeded shuffle (object ids sorted, then
permuted by (seed, class)) and cut in two: OUT_A's train split is the first half, OUT_B's the
second; each copy leaves the other half out and keeps val and test as they are. For validating
`tl simulate --match-real OUT_A` against objects it never saw (validate_simulator.py --bts OUT_B).
`--add-val` moves the val objects into each copy's train split (its val split is then empty): a
larger unseen sample to validate against (matched to plain OUT_A, compared with OUT_B --add-val).
"""

from __future__ import annotations

import argparse

import pandas as pd

from tl.data import Dataset, _shuffled_rows, read_dataset, write_dataset


def halves(objects: pd.DataFrame, seed: int) -> tuple[pd.Index, pd.Index]:
    """The index labels of the train objects, split per class into a first and a second half."""
    first, second = [], []
    for label, group in objects[objects["split"] == "train"].groupby("label", sort=True):
        rows = _shuffled_rows(group, seed, str(label), "half")
        first += list(rows[: len(rows) // 2])
        second += list(rows[len(rows) // 2:])
    return pd.Index(first), pd.Index(second)


def without(data: Dataset, left_out: pd.Index, add_val: bool = False) -> Dataset:
    objects = data.objects.drop(index=left_out)
    if add_val:
        objects = objects.assign(split=objects["split"].replace("val", "train"))
    kept = data.observations["object_id"].isin(objects["object_id"])
    return Dataset(objects.reset_index(drop=True), data.observations[kept].reset_index(drop=True), dict(data.meta))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("out_a")
    parser.add_argument("out_b")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--add-val", action="store_true", help="the val objects join each copy's train split")
    args = parser.parse_args(argv)
    data = read_dataset(args.data_dir)
    first, second = halves(data.objects, args.seed)
    for out, left_out, half in ((args.out_a, second, "first"), (args.out_b, first, "second")):
        name = f"{data.meta.get('name', 'data')}-train-{half}-half{'-and-val' if args.add_val else ''}"
        written = write_dataset(without(data, left_out, args.add_val), out, name=name)
        print(f"{out}: train = the {half} half{' and val' if args.add_val else ''} "
              f"({(written.objects['split'] == 'train').sum()} objects), "
              f"{len(left_out)} train objects left out")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
