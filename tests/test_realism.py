"""tl.realism (`tl simulate --match-real`): the keep rule recovers a known density ratio, and a matched
simulation keeps its quotas, counts every object it does not write, and is reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import tl.cli
from tl.data import read_dataset, write_dataset
from tl.lc_summaries import QUANTITIES
from tl.realism import REASON_REJECTED, Match, fit_class, simulate_matched
from tl.simulate import simulate


def gaussian_table(n: int, shift: float, rng: np.random.Generator, label: str = "SN Ia") -> pd.DataFrame:
    """Summaries rows with every quantity ~ N(0, 1), but peak_mag ~ N(shift, 1)."""
    table = pd.DataFrame(rng.normal(size=(n, len(QUANTITIES))), columns=list(QUANTITIES))
    table["peak_mag"] += shift
    return table.assign(**{"class": label})


def test_the_keep_rule_moves_a_shifted_simulation_onto_the_real_distribution():
    # real / simulated density ratio = exp(0.5 x - 0.125) in peak_mag x, 1 in every other quantity
    rng = np.random.default_rng(0)
    match = fit_class("SN Ia", gaussian_table(6000, 0.0, rng), gaussian_table(1500, 0.5, rng), seed=0)
    fresh = gaussian_table(40000, 0.0, rng)
    probability = match.keep_probability(fresh)
    assert spearmanr(probability, fresh["peak_mag"]).statistic > 0.8  # ranks like the true ratio
    kept = fresh[rng.random(len(fresh)) < probability]
    assert abs(kept["peak_mag"].mean() - 0.5) < 0.1  # the real mean, from the simulated 0
    assert abs(kept["peak_mag"].std() - 1.0) < 0.1
    assert abs(kept["redshift"].mean()) < 0.05  # the quantities that matched stay matched
    assert 0 < match.acceptance < 1 and match.n_real == 1500


def test_a_class_without_a_classifier_is_kept_as_simulated():
    rng = np.random.default_rng(1)
    match = Match("here", {"SN Ia": fit_class("SN Ia", gaussian_table(600, 0.0, rng),
                                               gaussian_table(300, 1.0, rng), seed=0)})
    table = pd.concat([gaussian_table(50, 0.0, rng, "SN II"), gaussian_table(50, 0.0, rng)], ignore_index=True)
    probability = match.keep_probability(table)
    assert (probability[:50] == 1.0).all() and (probability[50:] < 1.0).any()


def test_a_matched_simulation_keeps_its_quotas_counts_its_drops_and_reproduces(tmp_path):
    real = simulate("ztf", 120, 9, bts_like=True, alerts_only=True, class_mix={"SN Ia": 0.5, "SN II": 0.5})
    write_dataset(real, str(tmp_path / "real"), name="real")
    mix = "SN Ia=1,SN II=1,SLSN=1"  # SLSN: no real objects, so kept as simulated
    data = simulate_matched("ztf", 60, 3, str(tmp_path / "real"), class_mix=mix, bts_like=True, alerts_only=True)
    assert data.objects["label"].value_counts().to_dict() == {"SN Ia": 20, "SN II": 20, "SLSN": 20}
    assert data.objects["object_id"].is_unique
    assert set(data.observations["object_id"]) == set(data.objects["object_id"])
    described = data.meta["match_real"]["classes"]
    assert set(described) == {"SN Ia", "SN II", "SLSN"} and described["SLSN"] == {"realised_acceptance": 1.0}
    for label in ("SN Ia", "SN II"):  # examined = kept + rejected
        rejected = data.meta["dropped"][f"{REASON_REJECTED} ({label})"]
        assert described[label]["realised_acceptance"] == 20 / (20 + rejected)
        assert described[label]["n_real"] == (real.objects.query("split == 'train'")["label"] == label).sum()
    assert f"{REASON_REJECTED} (SLSN)" not in data.meta["dropped"]
    # the command line writes the same data set
    argv = ["simulate", "--survey", "ztf", "--n", "60", "--seed", "3", "--bts-like", "--alerts-only", "--class-mix",
            mix, "--match-real", str(tmp_path / "real"), "--out", str(tmp_path / "out"), "--quiet"]
    assert tl.cli.main(argv) == 0
    written = read_dataset(str(tmp_path / "out"))
    pd.testing.assert_frame_equal(written.objects, data.objects, check_dtype=False)
    pd.testing.assert_frame_equal(written.observations, data.observations, check_dtype=False)
    assert written.meta["dropped"] == data.meta["dropped"]


def test_half_split_cuts_each_class_of_train_in_two_and_keeps_val_and_test(tmp_path):
    from scripts import load_script

    half_split = load_script("benchmarks/half_split.py")
    data = simulate("ztf", 90, 2, bts_like=True, alerts_only=True, class_mix={"SN Ia": 2 / 3, "SN II": 1 / 3})
    write_dataset(data, str(tmp_path / "all"), name="all")
    assert half_split.main([str(tmp_path / "all"), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    a, b = read_dataset(str(tmp_path / "a")), read_dataset(str(tmp_path / "b"))
    train = data.objects[data.objects["split"] == "train"]
    train_a, train_b = (set(d.objects.query("split == 'train'")["object_id"]) for d in (a, b))
    assert not train_a & train_b and train_a | train_b == set(train["object_id"])
    for label, group in train.groupby("label"):
        in_a = group["object_id"].isin(train_a).sum()
        assert in_a == len(group) // 2  # the first half; B has the rest
    for d in (a, b):
        assert set(d.objects.query("split != 'train'")["object_id"]) == set(data.objects.query("split != 'train'")["object_id"])
        assert set(d.observations["object_id"]) == set(d.objects["object_id"])
    assert half_split.main([str(tmp_path / "all"), str(tmp_path / "av"), str(tmp_path / "bv"), "--add-val"]) == 0
    bv = read_dataset(str(tmp_path / "bv"))
    val = set(data.objects.query("split == 'val'")["object_id"])
    assert set(bv.objects.query("split == 'train'")["object_id"]) == train_b | val and "val" not in set(bv.objects["split"])
