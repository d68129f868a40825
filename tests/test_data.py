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
