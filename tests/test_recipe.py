"""The transfer recipe (issue 12): prior correction, head bias at the prior, freezing strategies,
the metadata normaliser refit, the zero-shot point, the step budget; each against a second
computation, and the defaults against today's behaviour."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

import tl.cli
import tl.training
from tl.config import Config
from tl.data import Dataset, subsample_train, write_dataset
from tl.encoding import encode, encode_raw, fit_normalizer
from tl.errors import TLError
from tl.evaluation import compute_metrics, evaluate, predict_logits, predict_proba
from tl.experiment import prepare, prepare_data, zero_shot_predictions
from tl.modeldir import load_model_dir, save_model_dir
from tl.prior import TAU_GRID, PriorCorrection, choose_tau, log_prior
from tl.training import FitResult, epoch_budget, fit, make_loader
from toy import make_toy_dataset

TINY = {"model.gru_hidden": 8, "model.metadata_hidden": 4, "model.dense_hidden": 8, "model.dense_second": 8,
        "train.batch_size": 16, "train.epochs": 2, "train.patience": 100}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(**overrides) -> Config:
    return Config().override({**TINY, **overrides})


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _imbalanced(seed: int = 0) -> Dataset:
    """SN Ia and SN II with 5 of the SN II train objects removed (an unequal train prior)."""
    dataset = make_toy_dataset(12, seed=seed, classes=("SN Ia", "SN II"))
    objects = dataset.objects
    removed = objects[(objects["label"] == "SN II") & (objects["split"] == "train")]["object_id"].iloc[:5]
    objects = objects[~objects["object_id"].isin(removed)].reset_index(drop=True)
    observations = dataset.observations[dataset.observations["object_id"].isin(objects["object_id"])]
    return Dataset(objects, observations.reset_index(drop=True), dataset.meta)


def _train_counts(dataset: Dataset, classes) -> list[int]:
    train = dataset.objects[dataset.objects["split"] == "train"]
    return [int((train["label"] == name).sum()) for name in classes]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny base model trained on SN Ia and SN II."""
    prepared = prepare(_config(), make_toy_dataset(6, classes=("SN Ia", "SN II")))
    result = fit(prepared)
    path = tmp_path_factory.mktemp("models") / "base"
    save_model_dir(str(path), prepared, result.model, history=result.history)
    return str(path)


def _target():
    return make_toy_dataset(6, seed=5, classes=("SN II", "SLSN"))  # SN II shared, SLSN new


# ---------------------------------------------------------------- prior correction

def test_logit_adjustment_matches_hand_computation():
    assert log_prior([6, 3, 1]) == pytest.approx((math.log(0.6), math.log(0.3), math.log(0.1)))
    correction = PriorCorrection(log_prior([8, 1, 1]), tau=1.0)
    logits = np.array([[0.0, 0.2, 0.0]])  # a balanced-prior model leaning to class 1
    adjusted = correction.apply(logits)
    np.testing.assert_allclose(adjusted, [[math.log(0.8), 0.2 + math.log(0.1), math.log(0.1)]])
    assert logits.argmax() == 1 and adjusted.argmax() == 0  # the target prior wins the decision
    half = PriorCorrection(log_prior([8, 1, 1]), tau=0.5).apply(torch.tensor(logits))
    torch.testing.assert_close(half, torch.tensor([[0.5 * math.log(0.8), 0.2 + 0.5 * math.log(0.1),
                                                    0.5 * math.log(0.1)]], dtype=torch.float64))
    assert PriorCorrection((0.0, -1.0, -2.0), tau=0.0).apply(logits) is logits
    again = PriorCorrection.from_dict(json.loads(json.dumps(correction.to_dict())))
    assert again == correction


def test_predict_proba_is_the_softmax_of_the_adjusted_logits(base_dir):
    loaded = load_model_dir(base_dir)
    prepared = prepare(loaded.config, make_toy_dataset(6, classes=("SN Ia", "SN II")))
    correction = PriorCorrection((math.log(0.9), math.log(0.1)), tau=1.5)
    logits = predict_logits(loaded.model, prepared.test)
    shifted = logits + 1.5 * np.array([math.log(0.9), math.log(0.1)])
    by_hand = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    proba = predict_proba(loaded.model, prepared.test, correction=correction)
    np.testing.assert_allclose(proba, by_hand, rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    metrics = evaluate(loaded.model, prepared.test, loaded.classes, correction=correction)
    expected = compute_metrics(prepared.test.labels.numpy(), by_hand, loaded.classes)
    assert metrics["macro_f1"] == expected["macro_f1"] and metrics["confusion"] == expected["confusion"]


def test_tau_is_chosen_by_hand_computed_val_macro_f1():
    # Two classes, prior (0.75, 0.25): the adjustment lowers class 1's margin m by tau * log(3).
    prior = log_prior([3, 1])
    logits = np.array([[0.0, 0.5], [0.0, 1.5], [0.0, 2.0]])  # margins of class 1
    labels = np.array([0, 0, 1])
    chosen = choose_tau(logits, labels, prior)
    # object k is called class 1 while its margin > tau * log(3); by hand, per range of tau:
    #   all called 1                      macro-F1 (0 + 1/2) / 2
    #   the first called 0                (2/3 + 2/3) / 2 (one class-0 object still called 1)
    #   the first two called 0: perfect   1
    #   all called 0                      (4/5 + 0) / 2
    edges = [m / math.log(3) for m in (0.5, 1.5, 2.0)]
    for tau, score in chosen.val_macro_f1_by_tau.items():
        expected = [0.25, 2 / 3, 1.0, 0.4][sum(tau > edge for edge in edges)]
        assert score == pytest.approx(expected), tau
    assert chosen.tau == 1.5 and chosen.chosen_on == "val"  # of the perfect 1.5 and 1.75, the closer to 0
    tie = choose_tau(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 0]), log_prior([1, 1]))
    assert tie.tau == 0.0  # a uniform prior: every tau decides alike, the tie goes to 0
    assert set(chosen.val_macro_f1_by_tau) == set(TAU_GRID) and 0.0 in TAU_GRID


class _Untouchable:
    """Stands in for the test split: any use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was used ({name})")

    def __len__(self):
        raise AssertionError("the test split was used (len)")


def test_tau_is_chosen_on_val_and_never_looks_at_test(monkeypatch):
    prepared = prepare(_config(**{"train.tune_logit_adjustment": True}), _imbalanced())
    prepared.test = _Untouchable()
    seen = []

    def spy(model, dataset, *args, **kwargs):
        seen.append(dataset)
        return predict_logits(model, dataset, *args, **kwargs)

    monkeypatch.setattr(tl.training, "predict_logits", spy)
    result = fit(prepared)
    assert seen == [prepared.val]
    expected = choose_tau(predict_logits(result.model, prepared.val), prepared.val.labels.numpy(),
                          log_prior(_train_counts(_imbalanced(), prepared.classes)))
    assert result.prior_correction == expected


def test_the_correction_is_saved_and_applied_by_evaluate_and_predict(tmp_path, capsys):
    write_dataset(_imbalanced(), str(tmp_path / "data"), name="imbalanced")
    tiny = [f"--set={k}={v}" for k, v in TINY.items()] + ["--set=train.logit_adjustment=1.5", "--quiet"]
    model = tmp_path / "model"
    assert tl.cli.main(["train", "--data", str(tmp_path / "data"), "--out", str(model), *tiny]) == 0
    loaded = load_model_dir(str(model))
    prior = log_prior(_train_counts(_imbalanced(), loaded.classes))
    assert loaded.prior_correction == PriorCorrection(prior, 1.5)
    saved = json.loads((model / "metrics.json").read_text())
    assert saved["training"]["logit_adjustment"] == 1.5 and saved["training"]["epoch_budget"] == 2
    assert tl.cli.main(["evaluate", "--model", str(model), "--data", str(tmp_path / "data"),
                        "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["confusion"] == saved["test"]["confusion"]
    assert tl.cli.main(["predict", "--model", str(model), "--data", str(tmp_path / "data"), "--split", "test",
                        "--out", str(tmp_path / "p.parquet")]) == 0
    import pandas as pd

    table = pd.read_parquet(tmp_path / "p.parquet")
    encoded = encode(_imbalanced().split("test"), loaded.classes, loaded.normalizer, loaded.config.data.max_length)
    shifted = predict_logits(loaded.model, encoded) + 1.5 * np.array(prior)
    np.testing.assert_allclose(table[loaded.classes].to_numpy(),
                               np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True), rtol=1e-12)


def test_the_packed_model_for_mlflow_applies_the_correction(base_dir):
    from tl.packed import PackedInputClassifier, pack_inputs

    loaded = load_model_dir(base_dir)
    prepared = prepare(loaded.config, make_toy_dataset(6, classes=("SN Ia", "SN II")))
    correction = PriorCorrection((math.log(0.9), math.log(0.1)), tau=1.0)
    packed = PackedInputClassifier(loaded.model, loaded.config.data.max_length, correction).eval()
    with torch.no_grad():
        proba = packed(torch.from_numpy(pack_inputs(prepared.test, loaded.config.data.max_length))).double()
    np.testing.assert_allclose(proba.numpy(), predict_proba(loaded.model, prepared.test, correction=correction),
                               atol=1e-6)


def test_a_tuned_tau_must_be_passed_to_save_model_dir(tmp_path):
    prepared = prepare(_config(**{"train.tune_logit_adjustment": True, "train.epochs": 1}), _imbalanced())
    with pytest.raises(TLError, match="pass the FitResult's prior_correction"):
        save_model_dir(str(tmp_path / "m"), prepared)


# ---------------------------------------------------------------- head bias at the prior

def test_head_bias_starts_at_the_log_train_prior(base_dir):
    dataset = _imbalanced()
    prepared = prepare(_config(**{"train.init_bias_to_prior": True}), dataset)
    counts = _train_counts(dataset, prepared.classes)
    assert counts[0] != counts[1]
    expected = [math.log(n / sum(counts)) for n in counts]
    np.testing.assert_allclose(prepared.model.head.bias.detach().numpy(), expected, rtol=1e-6)
    plain = prepare(_config(), dataset)
    assert torch.equal(plain.model.head.weight, prepared.model.head.weight)  # only the bias changes

    target = _target()
    transferred = prepare(_config(**{"train.init_bias_to_prior": True}), target, base_model_dir=base_dir)
    counts = _train_counts(target, transferred.classes)
    np.testing.assert_allclose(transferred.model.head.bias.detach().numpy(),
                               [math.log(n / sum(counts)) for n in counts], rtol=1e-6)
    base = load_model_dir(base_dir)
    assert torch.equal(transferred.model.head.weight[0], base.model.head.weight[1])  # SN II row still mapped


# ---------------------------------------------------------------- freezing strategies

def _trainable_blocks(model) -> set[str]:
    return {name for name in model.blocks if all(p.requires_grad for p in model.block(name).parameters())}


def test_gru_strategy_trains_the_grus_and_the_head_only(base_dir):
    prepared = prepare(_config(**{"transfer.strategy": "gru", "train.epochs": 1}), _target(),
                       base_model_dir=base_dir)
    assert _trainable_blocks(prepared.model) == {"gru_1", "gru_2", "head"}
    before = {k: v.clone() for k, v in prepared.model.state_dict().items()}
    fit(prepared)
    for name, _ in prepared.model.named_parameters():
        block = name.split(".")[0] if not name.startswith("grus.") else f"gru_{int(name.split('.')[1]) + 1}"
        changed = not torch.equal(before[name], prepared.model.state_dict()[name])
        assert changed == (block in {"gru_1", "gru_2", "head"}), name


def test_depth_strategy_is_todays_freezing_and_refuses_a_depth_with_another_strategy(base_dir):
    prepared = prepare(_config(**{"transfer.freeze_depth": 3}), _target(), base_model_dir=base_dir)
    assert _trainable_blocks(prepared.model) == {"dense_1", "dense_2", "head"}
    with pytest.raises(TLError, match="freeze_depth applies to transfer.strategy=depth only"):
        prepare(_config(**{"transfer.freeze_depth": 1, "transfer.strategy": "gru"}), _target(),
                base_model_dir=base_dir)


HEAD_THEN_ALL = {"transfer.strategy": "head_then_all", "transfer.head_epochs": 2,
                 "transfer.pretrained_lr_scale": 0.1, "train.epochs": 4}


def test_head_then_all_trains_the_head_first_then_everything(base_dir):
    prepared = prepare(_config(**HEAD_THEN_ALL), _target(), base_model_dir=base_dir)
    assert _trainable_blocks(prepared.model) == set(prepared.model.blocks)  # see tl.transfer.trained_blocks
    start = {k: v.clone() for k, v in prepared.model.state_dict().items()}
    states = {}
    fit(prepared, report=lambda m, get_state: states.setdefault(int(m["epoch"]), get_state()))
    body = [k for k in start if not k.startswith("head.")]
    for epoch in (1, 2):
        assert all(torch.equal(states[epoch]["model"][k], start[k]) for k in body), epoch
        assert not torch.equal(states[epoch]["model"]["head.weight"], start["head.weight"])
        groups = states[epoch]["optimizer"]["param_groups"]
        assert [len(g["params"]) for g in groups] == [2]  # head weight and bias
    for k in body:
        assert not torch.equal(states[3]["model"][k], states[2]["model"][k]), k
    groups = states[3]["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-4])  # head, pre-trained blocks * 0.1
    assert sum(len(g["params"]) for g in groups) == len(list(prepared.model.parameters()))


@pytest.mark.parametrize("stop", [1, 2, 3])  # inside phase 1, at the switch, inside phase 2
def test_head_then_all_resumes_exactly(base_dir, stop):
    uninterrupted = fit(prepare(_config(**HEAD_THEN_ALL), _target(), base_model_dir=base_dir))
    states = {}
    fit(prepare(_config(**{**HEAD_THEN_ALL, "train.epochs": stop}), _target(), base_model_dir=base_dir),
        report=lambda m, get_state: states.setdefault(int(m["epoch"]), get_state()))
    import io

    buffer = io.BytesIO()
    torch.save(states[stop], buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = fit(prepare(_config(**HEAD_THEN_ALL), _target(), base_model_dir=base_dir), resume_state=saved)
    assert [h["epoch"] for h in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    assert resumed.history == uninterrupted.history
    assert _states_equal(resumed.model.state_dict(), uninterrupted.model.state_dict())


def test_scratch_ignores_the_strategy():
    prepared = prepare(_config(**HEAD_THEN_ALL), _imbalanced())
    assert prepared.trained_blocks(1) == prepared.model.blocks


# ---------------------------------------------------------------- metadata normaliser refit

def test_refit_changes_only_the_metadata_statistics(base_dir, tmp_path):
    base = load_model_dir(base_dir)
    target = make_toy_dataset(6, seed=5, classes=("SN II", "SLSN"))
    target.observations["flux"] *= 30.0  # a brighter survey: log peak flux off the base's scale
    config = _config(**{"data.refit_metadata_normalizer": True, "data.target_fraction": 0.5})
    refit = prepare_data(config, target, base_dir)
    kept = subsample_train(target.objects, 0.5, 0)
    train = Dataset(kept, target.observations[target.observations["object_id"].isin(kept["object_id"])],
                    target.meta).split("train")
    own = fit_normalizer(encode_raw(train, config.data.max_length))
    assert refit.normalizer.sequence_mean == base.normalizer.sequence_mean
    assert refit.normalizer.sequence_std == base.normalizer.sequence_std
    assert refit.normalizer.metadata_mean == own.metadata_mean != base.normalizer.metadata_mean
    assert refit.normalizer.metadata_std == own.metadata_std
    plain = prepare_data(_config(**{"data.target_fraction": 0.5}), target, base_dir)
    assert plain.normalizer == base.normalizer
    assert all(torch.equal(a, b) for a, b in zip(plain.val.sequences, refit.val.sequences))
    assert not torch.equal(plain.val.metadata, refit.val.metadata)
    prepared = prepare(config, target, base_model_dir=base_dir)
    save_model_dir(str(tmp_path / "m"), prepared)
    assert load_model_dir(str(tmp_path / "m")).normalizer == refit.normalizer


# ---------------------------------------------------------------- zero-shot

def test_zero_shot_equals_evaluating_the_base_model_directly(base_dir, tmp_path):
    target = make_toy_dataset(6, seed=9, classes=("SN Ia", "SN II"))  # the base's classes
    evaluation, table = zero_shot_predictions(base_dir, target)
    base = load_model_dir(base_dir)
    encoded = encode(target.split("test"), base.classes, base.normalizer, base.config.data.max_length)
    direct = evaluate(base.model, encoded, base.classes)
    for key in ("macro_f1", "balanced_accuracy", "roc_auc_macro", "n_objects", "confusion", "per_class"):
        assert evaluation[key] == direct[key], key
    np.testing.assert_array_equal(table[[f"p_{c}" for c in base.classes]].to_numpy(),
                                  predict_proba(base.model, encoded))
    assert list(table["object_id"]) == encoded.object_ids and set(table["split"]) == {"test"}
    write_dataset(target, str(tmp_path / "target"), name="target")
    assert tl.cli.main(["evaluate", "--model", base_dir, "--data", str(tmp_path / "target"),
                        "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["macro_f1"] == evaluation["macro_f1"]


def test_zero_shot_on_a_target_with_a_new_class(base_dir, tmp_path, capsys):
    target = make_toy_dataset(6, seed=7)  # SN Ia, SN II (the base's) and SLSN (new)
    evaluation, table = zero_shot_predictions(base_dir, target)
    classes = evaluation["classes"]
    assert set(classes) == {"SN Ia", "SN II", "SLSN"}
    base = load_model_dir(base_dir)
    test = target.split("test")
    encoded = encode(test, base.classes, base.normalizer, base.config.data.max_length)
    logits = predict_logits(base.model, encoded)
    base_proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba = np.zeros((len(encoded), 3))
    for column, name in enumerate(base.classes):
        proba[:, classes.index(name)] = base_proba[:, column]  # SLSN: probability 0
    labels = [classes.index(label) for label in test.objects.set_index("object_id").loc[encoded.object_ids, "label"]]
    expected = compute_metrics(np.array(labels), proba, classes)
    assert evaluation["confusion"] == expected["confusion"]
    assert evaluation["macro_f1"] == pytest.approx(expected["macro_f1"])
    assert evaluation["roc_auc_macro"] == pytest.approx(expected["roc_auc_macro"])
    np.testing.assert_allclose(table[[f"p_{c}" for c in classes]].to_numpy(), proba, rtol=1e-12, atol=1e-15)
    # tl evaluate of the base on this target scores the shared classes and counts SLSN as unknown
    write_dataset(target, str(tmp_path / "target"), name="target")
    assert tl.cli.main(["evaluate", "--model", base_dir, "--data", str(tmp_path / "target"),
                        "--json", str(tmp_path / "m.json")]) == 0
    shared = json.loads((tmp_path / "m.json").read_text())
    assert shared["n_unknown_class"] == sum(label == classes.index("SLSN") for label in labels) > 0


# ---------------------------------------------------------------- step budget, convergence, stopping

def test_max_steps_sets_the_epoch_budget():
    prepared = prepare(_config(**{"train.max_steps": 7, "train.batch_size": 4}), _imbalanced())
    batches = math.ceil(len(prepared.train) / 4)
    assert batches > 1
    states = {}
    result = fit(prepared, report=lambda m, get_state: states.setdefault(int(m["epoch"]), get_state()))
    assert result.epoch_budget == math.ceil(7 / batches) == len(result.history)
    steps = states[len(result.history)]["optimizer"]["state"][0]["step"]
    assert int(steps) == len(result.history) * batches >= 7
    assert epoch_budget(Config().train, 3) == 50  # max_steps 0: train.epochs
    assert epoch_budget(_config(**{"train.max_steps": 10**7}).train, 1) == tl.training.MAX_EPOCHS
    assert not FitResult(model=None, best_epoch=4, epoch_budget=4).converged
    assert FitResult(model=None, best_epoch=3, epoch_budget=4).converged
    assert result.summary()["converged"] == (result.best_epoch < result.epoch_budget)


def test_val_macro_f1_common_scores_only_classes_with_enough_val_objects(monkeypatch):
    dataset = make_toy_dataset(12, seed=3)
    objects = dataset.objects
    dropped = objects[(objects["label"] == "SN II") & (objects["split"] == "val")]["object_id"].iloc[0]
    dataset.objects = objects[objects["object_id"] != dropped].reset_index(drop=True)
    prepared = prepare(_config(), dataset)
    labels = prepared.val.labels.numpy()
    counts = np.bincount(labels)
    threshold = int(counts.max())  # only the largest val classes count, SN II not
    assert counts[prepared.classes.index("SN II")] < threshold
    monkeypatch.setattr(tl.training, "COMMON_CLASS_MIN_OBJECTS", threshold)
    metrics = tl.training.validate(prepared.model, prepared.val, prepared.class_weights, 256)
    predicted = predict_logits(prepared.model, prepared.val).argmax(axis=1)
    common = np.flatnonzero(counts >= threshold)
    assert metrics["val_macro_f1_common"] == pytest.approx(
        f1_score(labels, predicted, labels=common, average="macro", zero_division=0))
    assert metrics["val_macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro", zero_division=0))


# ---------------------------------------------------------------- defaults keep today's results

def test_new_options_at_neutral_values_reproduce_the_default_run(base_dir):
    """Every new setting at its default gives today's run; the new code paths at values that should
    change nothing (a step budget of exactly train.epochs, tau tuned after training, strategy depth
    named explicitly) give bit-identical weights and history."""
    target = _target()
    default = fit(prepare(_config(**{"train.epochs": 3}), target, base_model_dir=base_dir))
    batches = len(make_loader(prepare(_config(), target, base_model_dir=base_dir).train, 16, True, 0))
    neutral = fit(prepare(_config(**{"train.epochs": 50, "train.max_steps": 3 * batches, "transfer.strategy": "depth",
                                     "train.tune_logit_adjustment": True, "train.logit_adjustment": 0.0}),
                          target, base_model_dir=base_dir))
    assert neutral.epoch_budget == default.epoch_budget == 3
    assert neutral.history == default.history
    assert _states_equal(neutral.model.state_dict(), default.model.state_dict())
    assert default.prior_correction.tau == 0.0 and neutral.prior_correction.chosen_on == "val"
