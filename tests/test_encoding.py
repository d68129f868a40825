"""Encoding: compared with a direct per-object computation of the documented rules."""

import numpy as np
import pandas as pd
import pytest
import torch

from tl.data import Dataset
from tl.encoding import (Normalizer, check_bands, collate, encode, encode_raw, fit_normalizer,
                         standardise, truncate_days)
from tl.errors import TLError
from tl.surveys import BAND_BY_NAME
from toy import make_toy_dataset


def _tiny() -> Dataset:
    objects = pd.DataFrame({
        "object_id": ["a", "b", "c"], "label": ["SN Ia", "SN II", "SN Ia"], "raw_label": ["x"] * 3,
        "redshift": [0.05, np.nan, 0.1], "mwebv": [0.01, 0.02, np.nan], "survey": ["ztf"] * 3,
        "split": ["train"] * 3})
    rows = [  # object, mjd, band, flux, flux_err, detected (deliberately out of time order)
        ("a", 10.0, "ztf_g", 5.0, 1.0, False), ("a", 12.0, "ztf_r", 50.0, 2.0, True),
        ("a", 11.0, "ztf_g", 3.0, 1.0, False), ("a", 15.0, "ztf_g", -80.0, 4.0, True),
        ("a", 20.0, "ztf_r", 20.0, 2.0, True),
        ("b", 1.0, "ztf_i", 2.0, 1.0, False), ("b", 3.0, "ztf_i", 4.0, 1.0, False),
    ]
    observations = pd.DataFrame(rows, columns=["object_id", "mjd", "band", "flux", "flux_err", "detected"])
    return Dataset(objects, observations, {})


def test_encode_raw_follows_the_documented_rules():
    raw = encode_raw(_tiny(), max_length=2)
    assert raw.object_ids == ["a", "b"] and raw.dropped_no_observations == 1  # c has no observations
    # a: first detection at mjd 12; keep mjd 12 and 15 (max_length 2); peak |flux| = 80
    expected_a = np.array([[0.0, 50 / 80, 2 / 80, (633.9 - 600) / 200, 1.0],
                           [3.0, -80 / 80, 4 / 80, (472.3 - 600) / 200, 1.0]])
    np.testing.assert_allclose(raw.sequences[0], expected_a)
    # b: never detected, so it starts at its first observation
    np.testing.assert_allclose(raw.sequences[1][:, 0], [0.0, 2.0])
    np.testing.assert_allclose(raw.metadata[0], [np.log10(80), 0.05, 0.0, 0.01, 0.0])
    np.testing.assert_allclose(raw.metadata[1], [np.log10(4), np.nan, 1.0, 0.02, 0.0])


def test_truncate_days_matches_a_per_object_loop():
    dataset = make_toy_dataset(5, seed=3)
    cut = truncate_days(dataset, 10.0)
    expected = []
    for object_id, group in dataset.observations.groupby("object_id"):
        detected = group[group["detected"]]
        start = detected["mjd"].min() if len(detected) else group["mjd"].min()
        expected.append(group[group["mjd"] <= start + 10.0])
    expected = pd.concat(expected)
    key = ["object_id", "mjd", "band"]
    pd.testing.assert_frame_equal(cut.observations.sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True))
    with pytest.raises(TLError, match="--days"):
        truncate_days(dataset, -1)


def test_standardised_train_features_have_zero_mean_unit_std():
    raw = encode_raw(make_toy_dataset(10), max_length=50)
    normalizer = fit_normalizer(raw)
    sequences, metadata = standardise(raw, normalizer)
    rows = np.concatenate(sequences)
    np.testing.assert_allclose(rows[:, :3].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(rows[:, :3].std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(metadata[:, [0, 1, 3]].mean(axis=0), 0, atol=1e-5)
    assert Normalizer.from_dict(normalizer.to_dict()) == normalizer


def test_missing_metadata_is_zero_filled_and_flagged():
    raw = encode_raw(_tiny(), max_length=10)
    _, metadata = standardise(raw, fit_normalizer(raw))
    assert metadata[1, 1] == 0.0 and metadata[1, 2] == 1.0  # b: redshift missing
    assert np.isfinite(metadata).all()


def test_encode_labels_and_collate_padding():
    dataset = make_toy_dataset(4)
    raw = encode_raw(dataset, 200)
    encoded = encode(dataset, ["SN II", "SLSN"], fit_normalizer(raw), 200)
    expected = [{"SN II": 0, "SLSN": 1}.get(label, -1) for label in dataset.objects["label"]]
    assert encoded.labels.tolist() == expected
    padded, lengths, metadata, labels = collate([encoded[i] for i in range(3)])
    assert lengths.tolist() == [len(encoded.sequences[i]) for i in range(3)]
    assert padded.shape == (3, int(lengths.max()), 5)
    for i in range(3):
        assert torch.equal(padded[i, :lengths[i]], encoded.sequences[i])
        assert (padded[i, lengths[i]:] == 0).all()


def test_check_bands_names_the_unknown_band():
    table = [{"name": "ztf_g"}, {"name": "ztf_r"}]
    check_bands(make_toy_dataset(2), table, "toy")  # toy uses ztf_g and ztf_r
    with pytest.raises(TLError, match="band 'lsst_g'"):
        check_bands(make_toy_dataset(2, survey="lsst"), table, "toy")
    assert set(BAND_BY_NAME) >= {"ztf_g", "lsst_g"}
