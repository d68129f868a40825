"""benchmarks/tune_simulator.py: a trial's values land in the models, the survey and a new sub-type's
share, today's values round-trip, everything is restored; and a short study runs (no Ray)."""

from __future__ import annotations

import copy

import optuna
import pytest

from scripts import load_script
from tl import lightcurve_models as lc
from tl.data import Dataset, write_dataset
from tl.simulate import model_quotas, simulate
from tl.surveys import SURVEY_MODELS

tune = load_script("benchmarks/tune_simulator.py")


def saved_tables():
    return copy.deepcopy((lc.MODELS, lc.SUBTYPE_SHARES, lc.CANONICAL_CLASS, SURVEY_MODELS))


@pytest.mark.parametrize("name", sorted(name for name, space in tune.SPACES.items() if not space.base))
def test_todays_values_round_trip_to_todays_models(name):
    space = tune.SPACES[name]
    before = saved_tables()
    with tune.patched(optuna.trial.FixedTrial(tune.current_values(space)), space):
        assert saved_tables() == before  # every searched field is within its bounds today
    assert saved_tables() == before


def test_a_trials_values_land_in_the_models_the_survey_and_the_new_subtypes_share():
    space = tune.Space("SN II", {"SN II": {"rise_days": ((4.0, 14.0), (0.3, 0.9))},
                                 "SN IIP": {"cools_from_first_light": (False, True), "cooling_days": (5.0, 40.0)}},
                       base="SN II", share=(0.1, 0.8),
                       survey={"depth": {"ztf_r": (20.1, 21.1)}, "grid_jitter": (0.0, 0.5)})
    values = {"SN II.rise_days[0]": 7.0, "SN II.rise_days[1]": 0.5, "SN IIP.cools_from_first_light": True,
              "SN IIP.cooling_days": 12.0, "SN IIP.share": 0.4, "ztf.depth[ztf_r]": 20.3, "ztf.grid_jitter": 0.1}
    before = saved_tables()
    with tune.patched(optuna.trial.FixedTrial(values), space):
        assert lc.MODELS["SN II"].rise_days == (7.0, 0.5)
        iip = lc.MODELS["SN IIP"]
        assert iip.cools_from_first_light and iip.cooling_days == 12.0
        assert iip.rise_days == (7.0, 0.5)  # a copy of its base, as patched in this trial, but its own fields
        assert lc.CANONICAL_CLASS["SN IIP"] == "SN II"
        quotas = {model: count for _, model, count in model_quotas({"SN II": 1000})}
        assert quotas["SN IIP"] == 400 and sum(quotas.values()) == 1000
        assert quotas["SN IIn"] == round(1000 * 39 / 280)  # the BTS sub-types keep their shares
        ztf = SURVEY_MODELS["ztf"]
        assert ztf.depth == {**before[3]["ztf"].depth, "ztf_r": 20.3} and ztf.grid_jitter == 0.1
    assert saved_tables() == before


def test_a_study_of_the_simulator_against_itself_scores_near_one_half(tmp_path, capsys):
    # "real" = the simulator's own SN II (another seed): nothing to tell apart, so every trial's AUC
    # is near 0.5 (200 against 300 objects: 5-fold AUC within ~0.1); the tables are restored after
    own = simulate("ztf", 300, seed=99, bts_like=True, alerts_only=True, class_mix={"SN II": 1.0})
    write_dataset(Dataset(own.objects.assign(split="train"), own.observations), str(tmp_path / "bts"))
    before = saved_tables()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert tune.main(["--space", "SN II", "--trials", "2", "--n", "200", "--seeds", "0",
                      "--bts", str(tmp_path / "bts"), "--storage", storage, "--study", "own"]) == 0
    assert saved_tables() == before
    trials = optuna.load_study(study_name="own", storage=storage).trials
    assert trials[0].params == tune.current_values(tune.SPACES["SN II"])  # trial 0: today's model
    assert trials[0].value == pytest.approx(0.5, abs=0.1)
    assert "best AUC" in capsys.readouterr().out


def test_the_ks_penalty_adds_each_quantitys_excess_over_its_noise_by_hand(tmp_path):
    # the penalised score minus the plain one is W x sum(max(0, KS - max(0.1, null95))), with the KS
    # recomputed here by scipy on the same simulation (the simulator is deterministic by seed)
    from scipy.stats import ks_2samp

    validation = tune.validation
    own = simulate("ztf", 200, seed=99, bts_like=True, alerts_only=True, class_mix={"SN Ia": 1.0})
    real = validation.summaries(own.objects, own.observations)
    plain = tune.score("SN Ia", real, [0], 150)
    penalised = tune.score("SN Ia", real, [0], 150, ks_penalty=2.0)
    data = simulate("ztf", 150, 0, bts_like=True, alerts_only=True, class_mix={"SN Ia": 1.0})
    simulated = validation.summaries(data.objects, data.observations)
    excess = 0.0
    for quantity in validation.QUANTITIES:
        a, b = simulated[quantity].dropna(), real[quantity].dropna()
        if len(a) >= 5 and len(b) >= 5:
            excess += max(0.0, ks_2samp(a, b).statistic - max(0.1, validation.ks_null95(len(a), len(b))))
    assert penalised - plain == pytest.approx(2.0 * excess, abs=1e-9)
    with pytest.raises(SystemExit) as error:
        tune.main(["--space", "SN Ia", "--ks-penalty", "-1", "--trials", "1", "--n", "50",
                   "--bts", str(tmp_path / "absent"), "--storage", f"sqlite:///{tmp_path / 's.db'}"])
    assert error.value.code == 2


def test_a_space_scoring_several_classes_averages_their_scores(tmp_path):
    # the "ZTF" space's trial 0 (today's survey) scores the mean of score() over its three classes,
    # each recomputed here on its own; the simulator against itself, so each is near 0.5
    validation = tune.validation
    space = tune.SPACES["ZTF"]
    own = simulate("ztf", 450, seed=99, bts_like=True, alerts_only=True,
                   class_mix={label: 1 / 3 for label in space.classes})
    write_dataset(Dataset(own.objects.assign(split="train"), own.observations), str(tmp_path / "bts"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    assert tune.main(["--space", "ZTF", "--trials", "1", "--n", "150", "--seeds", "0",
                      "--bts", str(tmp_path / "bts"), "--storage", storage, "--study", "ztf"]) == 0
    (trial,) = optuna.load_study(study_name="ztf", storage=storage).trials
    real = validation.real_summaries(str(tmp_path / "bts"), "train")
    each = [tune.score(label, real, [0], 150) for label in ("SN Ia", "SN II", "SN Ibc")]
    assert trial.value == pytest.approx(sum(each) / 3, abs=1e-12)
    assert all(abs(auc - 0.5) < 0.15 for auc in each)
