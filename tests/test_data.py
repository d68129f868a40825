"""The canonical data-set contract: round trip, schema errors, splits, nested fractions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from tl.data import assign_splits, content_hash, read_dataset, subsample_train, write_dataset
from tl.errors import TLError
from toy import make_toy_dataset


def test_round_trip_preserves_every_value(tmp_path):
    dataset = make_toy_dataset(n_per_class=10)
    write_dataset(dataset, tmp_path / "toy", name="toy")
    back = read_dataset(str(tmp_path / "toy"))
    pd.testing.assert_frame_equal(back.objects, dataset.objects.astype(back.objects.dtypes.to_dict()))
    assert np.array_equal(back.observations["flux"].to_numpy(), dataset.observations["flux"].to_numpy())
    assert back.observations["detected"].dtype == bool
    assert back.meta["n_objects"] == 30
    assert back.meta["class_counts"] == {"SN Ia": 10, "SN II": 10, "SLSN": 10}


def test_reads_a_file_uri_and_a_directory_of_shards(tmp_path):
    dataset = make_toy_dataset(n_per_class=5)
    write_dataset(dataset, tmp_path / "toy")
    shards = tmp_path / "toy" / "observations.parquet"
    whole = pd.read_parquet(shards)
    shards.unlink()
    shards.mkdir()
    half = len(whole) // 2
    whole.iloc[:half].to_parquet(shards / "part-0.parquet")
    whole.iloc[half:].to_parquet(shards / "part-1.parquet")
    back = read_dataset(f"file://{tmp_path / 'toy'}")
    assert len(back.observations) == len(whole)


@pytest.mark.parametrize("column", ["flux_err", "band", "object_id"])
def test_missing_observation_column_is_named(tmp_path, column):
    dataset = make_toy_dataset(n_per_class=3)
    dataset.observations = dataset.observations.drop(columns=[column])
    with pytest.raises(TLError, match=f"observations.parquet: missing column '{column}'"):
        write_dataset(dataset, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left behind


def test_bad_values_name_column_and_row(tmp_path):
    dataset = make_toy_dataset(n_per_class=3)
    dataset.observations.loc[4, "flux_err"] = 0.0
    with pytest.raises(TLError, match=r"'flux_err' row 4: must be > 0"):
        write_dataset(dataset, tmp_path / "bad")
    dataset = make_toy_dataset(n_per_class=3)
    dataset.observations["flux"] = dataset.observations["flux"].astype(object)
    dataset.observations.loc[7, "flux"] = "bright"
    with pytest.raises(TLError, match=r"'flux' row 7: not a number"):
        write_dataset(dataset, tmp_path / "bad")
    dataset = make_toy_dataset(n_per_class=3)
    dataset.observations.loc[2, "band"] = "ztf_x"
    with pytest.raises(TLError, match=r"'band' row 2: 'ztf_x'"):
        write_dataset(dataset, tmp_path / "bad")


def test_corrupt_parquet_and_missing_files_are_named(tmp_path):
    write_dataset(make_toy_dataset(n_per_class=3), tmp_path / "toy")
    (tmp_path / "toy" / "objects.parquet").write_bytes(b"not parquet")
    with pytest.raises(TLError, match=r"objects.parquet: unreadable Parquet"):
        read_dataset(str(tmp_path / "toy"))
    with pytest.raises(TLError, match="not a data set directory"):
        read_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "toy" / "dataset.json").unlink()
    write_dataset(make_toy_dataset(n_per_class=3), tmp_path / "other")
    (tmp_path / "other" / "dataset.json").unlink()
    with pytest.raises(TLError, match="missing dataset.json"):
        read_dataset(str(tmp_path / "other"))


def test_splits_are_stratified_reproducible_and_order_independent():
    objects = make_toy_dataset(n_per_class=40).objects
    first = assign_splits(objects, seed=3)
    shuffled = objects.sample(frac=1.0, random_state=1)
    again = assign_splits(shuffled, seed=3).loc[objects.index]
    assert first.equals(again)
    counts = pd.crosstab(objects["label"], first)
    assert (counts["test"] == 6).all() and (counts["val"] == 6).all() and (counts["train"] == 28).all()
    assert not first.equals(assign_splits(objects, seed=4))


def test_tiny_classes_still_reach_train():
    objects = pd.DataFrame({"object_id": ["a", "b", "c", "d", "e", "f"],
                            "label": ["TDE", "KN", "KN", "AGN", "AGN", "AGN"]})
    split = assign_splits(objects, seed=0)
    by_label = {label: sorted(split[objects["label"] == label]) for label in ("TDE", "KN", "AGN")}
    assert by_label == {"TDE": ["train"], "KN": ["test", "train"], "AGN": ["test", "train", "val"]}


def test_fraction_subsets_are_nested_stratified_and_deterministic():
    objects = make_toy_dataset(n_per_class=60).objects
    n_train = objects[objects["split"] == "train"]["label"].value_counts()
    previous = set()
    for fraction in (0.05, 0.1, 0.25, 0.5, 1.0):
        subset = subsample_train(objects, fraction, seed=7)
        train = subset[subset["split"] == "train"]
        for label, count in train["label"].value_counts().items():
            assert count == max(1, math.ceil(fraction * n_train[label]))
        ids = set(train["object_id"])
        assert previous <= ids
        previous = ids
        assert (subset["split"] != "train").sum() == (objects["split"] != "train").sum()
        assert subset.equals(subsample_train(objects, fraction, seed=7))
    assert set(subsample_train(objects, 0.1, seed=8)["object_id"]) != set(
        subsample_train(objects, 0.1, seed=7)["object_id"])


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, float("nan")])
def test_fraction_outside_unit_interval_is_refused(fraction):
    with pytest.raises(TLError, match="--fraction must be in"):
        subsample_train(make_toy_dataset(n_per_class=3).objects, fraction, seed=0)


def test_content_hash_changes_with_content(tmp_path):
    dataset = make_toy_dataset(n_per_class=4)
    write_dataset(dataset, tmp_path / "a")
    write_dataset(dataset, tmp_path / "b")
    assert content_hash(str(tmp_path / "a")) == content_hash(str(tmp_path / "b"))
    dataset.observations.loc[0, "flux"] += 1.0
    write_dataset(dataset, tmp_path / "b")
    assert content_hash(str(tmp_path / "a")) != content_hash(str(tmp_path / "b"))


def test_write_refuses_to_replace_a_foreign_directory(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    with pytest.raises(TLError, match="not a tl data set"):
        write_dataset(make_toy_dataset(n_per_class=3), tmp_path / "precious")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "x"


def fold_objects(n_per_class=(40, 17, 7, 3)):
    import pandas as pd

    rows = [{"object_id": f"{label}-{i}", "label": label} for label, n in zip("ABCD", n_per_class) for i in range(n)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)  # order must not matter


def test_outer_folds_test_every_object_exactly_once_and_are_stratified():
    from tl.data import assign_folds, fold_split

    objects = fold_objects()
    k = 5
    tested = []
    for fold in range(k):
        split = fold_split(objects, k, fold)
        tested += list(objects.loc[split == "test", "object_id"])
    assert sorted(tested) == sorted(objects["object_id"])  # every object in exactly one test fold
    folds = assign_folds(objects, k)
    sizes = folds.value_counts()
    assert sizes.max() - sizes.min() <= 1
    for label, group in objects.groupby("label"):
        per_fold = folds[group.index].value_counts().reindex(range(k), fill_value=0)
        assert per_fold.max() - per_fold.min() <= 1, label  # each class spread as evenly as it can be
    reordered = objects.sample(frac=1.0, random_state=7)
    assert (assign_folds(reordered, k).loc[objects.index] == folds).all()  # depends on ids, not order


def test_a_folds_val_and_train_never_hold_its_test_objects_and_fractions_nest_within_it():
    from tl.data import fold_split, subsample_train

    objects = fold_objects()
    for fold in range(5):
        split = fold_split(objects, 5, fold)
        assert set(split) == {"train", "val", "test"}
        for label, group in objects.groupby("label"):  # each class with >= 2 outside the fold has val objects
            outside = split[group.index] != "test"
            if outside.sum() >= 2:
                assert (split[group.index] == "val").sum() >= 1, (fold, label)
        with_split = objects.assign(split=split.to_numpy())
        kept = (subsample_train(with_split, f, seed=1) for f in (0.1, 0.5))
        small, large = (set(part.loc[part["split"] == "train", "object_id"]) for part in kept)
        test_ids = set(objects.loc[split == "test", "object_id"])
        assert small <= large and not large & test_ids
        assert (split == "val").sum() == pytest.approx(0.15 * len(objects), abs=len(set(objects["label"])))


def test_fold_settings_are_checked():
    from tl.config import Config

    with pytest.raises(TLError, match="data.folds"):
        Config().override({"data.folds": 1})
    with pytest.raises(TLError, match="data.fold"):
        Config().override({"data.folds": 5, "data.fold": 5})
    assert Config().override({"data.folds": 5, "data.fold": 4}).data.fold == 4


def test_a_run_on_a_fold_uses_that_folds_split():
    from tl.config import Config
    from tl.data import fold_split
    from tl.experiment import prepare_data
    from toy import make_toy_dataset

    dataset = make_toy_dataset(10)
    settings = {"data.folds": 3, "data.fold": 2, "data.max_length": 30}
    encoded = prepare_data(Config().override(settings), dataset)
    expected = dataset.objects.loc[fold_split(dataset.objects, 3, 2) == "test", "object_id"]
    assert sorted(encoded.test.object_ids) == sorted(expected)
