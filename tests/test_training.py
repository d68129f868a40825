"""The training loop: class weights, loss normalisation, overfitting, determinism, exact resume."""

import numpy as np
import pytest
import torch

from tl.config import Config
from tl.errors import TLError
from tl.experiment import prepare
from tl.training import class_weights, fit, weighted_loss
from toy import make_toy_dataset

TINY = {"model.gru_hidden": 8, "model.metadata_hidden": 4, "model.dense_hidden": 8, "model.dense_second": 8,
        "train.batch_size": 16, "train.patience": 100}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(**overrides) -> Config:
    return Config().override({**TINY, **overrides})


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_class_weights_match_the_formula():
    counts = [100, 10, 1]
    for power in (0.0, 0.5, 1.0, 2.0):
        raw = np.array([100.0 ** -power, 10.0 ** -power, 1.0])
        np.testing.assert_allclose(class_weights(counts, power).numpy(), raw / raw.mean(), rtol=1e-6)
    weights = class_weights(counts, 1.0)
    assert weights[2] / weights[0] == pytest.approx(100.0)  # inverse frequency
    with pytest.raises(TLError, match="at least one"):
        class_weights([3, 0], 1.0)


def test_loss_of_a_batch_is_the_mean_of_its_halves_losses():
    # DDP averages per-rank gradients: two ranks with batch b must equal one process with batch 2b.
    generator = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(8, 3, generator=generator), torch.tensor([0, 1, 2, 0, 0, 1, 2, 2])
    weights = torch.tensor([0.5, 1.0, 2.0])
    whole = weighted_loss(logits, labels, weights)
    halves = (weighted_loss(logits[:4], labels[:4], weights) + weighted_loss(logits[4:], labels[4:], weights)) / 2
    torch.testing.assert_close(whole, halves)
    by_hand = -sum(weights[y] * torch.log_softmax(logits[i], 0)[y] for i, y in enumerate(labels)) / 8
    torch.testing.assert_close(whole, by_hand)


def test_a_tiny_data_set_is_overfitted():
    config = _config(**{"train.epochs": 30, "train.lr": 0.02, "model.dropout": 0.0, "train.weight_decay": 0.0,
                        "model.gru_hidden": 16, "model.dense_hidden": 16, "model.dense_second": 16,
                        "data.max_length": 20})
    result = fit(prepare(config, make_toy_dataset(6, seed=2)))
    losses = [row["train_loss"] for row in result.history]
    assert len(losses) == 30
    assert losses[-1] < 0.05 * losses[0] and losses[-1] < 0.05


def test_fit_is_deterministic_and_reports_each_epoch():
    dataset = make_toy_dataset(6)
    seen = []
    first = fit(prepare(_config(**{"train.epochs": 3}), dataset), report=lambda m, s: seen.append(m))
    second = fit(prepare(_config(**{"train.epochs": 3}), dataset))
    assert _states_equal(first.model.state_dict(), second.model.state_dict())
    assert [m["epoch"] for m in seen] == [1.0, 2.0, 3.0]
    assert set(seen[0]) == {"epoch", "train_loss", "val_loss", "val_macro_f1", "val_balanced_accuracy",
                           "val_macro_f1_common", "lr"}
    assert seen == first.history


def test_resume_state_continues_to_the_same_final_weights():
    dataset = make_toy_dataset(6)
    config = _config(**{"train.epochs": 4})
    uninterrupted = fit(prepare(config, dataset))
    states = {}
    fit(prepare(_config(**{"train.epochs": 2}), dataset),
        report=lambda m, get_state: states.setdefault(int(m["epoch"]), get_state()))
    # round trip through torch.save as a checkpoint would
    saved = torch.load(_save(states[2]), weights_only=True)  # tensors, numbers, lists, dicts only
    resumed = fit(prepare(config, dataset), resume_state=saved)
    assert [h["epoch"] for h in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    assert resumed.best_epoch == uninterrupted.best_epoch
    assert _states_equal(resumed.model.state_dict(), uninterrupted.model.state_dict())


def _save(state):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_early_stopping_restores_the_best_weights():
    dataset = make_toy_dataset(6)
    config = _config(**{"train.epochs": 8, "train.patience": 2, "train.early_stopping_metric": "val_loss",
                        "train.lr": 0.05})
    best = {}

    def report(metrics, get_state):
        best[int(metrics["epoch"])] = get_state()["model"]

    result = fit(prepare(config, dataset), report=report)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) <= result.best_epoch + 2  # stopped after `patience` epochs without improvement
    assert _states_equal(result.model.state_dict(), best[result.best_epoch])
    prepared = prepare(config, dataset)
    batches = -(-len(prepared.train.labels) // config.train.batch_size)  # ceil: the loader keeps the last batch
    assert result.best_step == result.best_epoch * batches


def test_left_out_objects_are_counted():
    dataset = make_toy_dataset(6)
    objects = dataset.objects
    train_id = objects[objects["split"] == "train"]["object_id"].iloc[0]
    val_row = objects.index[objects["split"] == "val"][0]
    objects.loc[val_row, "label"] = "TDE"  # a class the train split lacks
    dataset.observations = dataset.observations[dataset.observations["object_id"] != train_id]
    prepared = prepare(_config(), dataset)
    assert prepared.dropped == {"train: no observations": 1, "val: class not in the train split": 1}
    assert len(prepared.train) == (objects["split"] == "train").sum() - 1
    assert len(prepared.val) == (objects["split"] == "val").sum() - 1
