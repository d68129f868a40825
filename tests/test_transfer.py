"""Transfer: MODEL_DIR round trip, explicit weight surgery, head mapping by name, freezing."""

import json

import pytest
import torch

from tl.config import Config
from tl.errors import TLError
from tl.experiment import prepare
from tl.model import TransientClassifier, max_freeze_depth
from tl.modeldir import load_model_dir, save_model_dir
from tl.training import fit, make_loader, make_optimizer
from tl.transfer import load_pretrained
from toy import make_toy_dataset

TINY = {"model.gru_hidden": 8, "model.metadata_hidden": 4, "model.dense_hidden": 8, "model.dense_second": 8,
        "train.batch_size": 16, "train.epochs": 2, "train.patience": 100}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny base model trained on SN Ia and SN II."""
    prepared = prepare(Config().override(TINY), make_toy_dataset(6, classes=("SN Ia", "SN II")))
    result = fit(prepared)
    path = tmp_path_factory.mktemp("models") / "base"
    save_model_dir(str(path), prepared, result.model, history=result.history)
    return str(path)


def _target():
    return make_toy_dataset(6, seed=5, classes=("SN II", "SLSN"))  # SN II shared, SLSN new, SN Ia dropped


def _logits(model, dataset):
    sequences, lengths, metadata, _ = next(iter(make_loader(dataset, 1000, shuffle=False, seed=0)))
    with torch.no_grad():
        return model.eval()(sequences, lengths, metadata)


def test_reloading_a_model_dir_reproduces_logits_exactly(base_dir):
    loaded = load_model_dir(base_dir)
    prepared = prepare(loaded.config, make_toy_dataset(6, classes=("SN Ia", "SN II")))
    again = load_model_dir(base_dir)
    assert torch.equal(_logits(loaded.model, prepared.test), _logits(again.model, prepared.test))
    assert loaded.normalizer == prepared.normalizer  # same data and seed: same train statistics
    fresh = TransientClassifier(2, loaded.config.model)
    fresh.load_state_dict(torch.load(f"{base_dir}/weights.pt", weights_only=True))
    assert torch.equal(_logits(fresh, prepared.test), _logits(loaded.model, prepared.test))


def test_head_is_mapped_by_class_name(base_dir):
    base = load_model_dir(base_dir)
    config = Config().override({**TINY, "model.gru_hidden": 32})  # the base architecture wins
    prepared = prepare(config, _target(), base_model_dir=base_dir)
    assert prepared.mode == "transfer" and prepared.classes == ["SN II", "SLSN"]
    assert prepared.config.model.gru_hidden == 8 and prepared.normalizer == base.normalizer
    base_state, state = base.model.state_dict(), prepared.model.state_dict()
    assert torch.equal(state["head.weight"][0], base_state["head.weight"][1])  # SN II row kept
    assert torch.equal(state["head.bias"][0], base_state["head.bias"][1])
    torch.manual_seed(prepared.config.train.seed)
    fresh = TransientClassifier(2, prepared.config.model)
    assert torch.equal(state["head.weight"][1], fresh.head.weight[1])  # SLSN: fresh initialisation
    for key in base_state:
        if not key.startswith("head."):
            assert torch.equal(state[key], base_state[key]), key


@pytest.mark.parametrize("depth", [0, 2, 5])
def test_frozen_blocks_are_bit_identical_after_an_epoch(base_dir, depth):
    config = Config().override({**TINY, "train.epochs": 1, "transfer.freeze_depth": depth})
    prepared = prepare(config, _target(), base_model_dir=base_dir)
    assert depth <= max_freeze_depth(prepared.config.model)
    before = {k: v.clone() for k, v in prepared.model.state_dict().items()}
    frozen_blocks = prepared.model.blocks[:depth]
    expected_frozen = {f"{b}.{n}" for b in frozen_blocks for n, _ in prepared.model.block(b).named_parameters()}
    assert set(prepared.frozen_parameters) == expected_frozen
    trainable = {n for n, p in prepared.model.named_parameters() if p.requires_grad}
    fit(prepared)
    after = prepared.model.state_dict()
    for name, _ in prepared.model.named_parameters():
        changed = not torch.equal(before[name], after[name])
        assert changed == (name in trainable), name
    assert len(trainable) == sum(1 for _ in prepared.model.parameters()) - len(expected_frozen)


def test_pretrained_blocks_get_the_scaled_learning_rate(base_dir):
    config = Config().override({**TINY, "transfer.freeze_depth": 1, "transfer.pretrained_lr_scale": 0.1})
    prepared = prepare(config, _target(), base_model_dir=base_dir)
    groups = make_optimizer(prepared.model, prepared).param_groups
    head = {id(p) for p in prepared.model.head.parameters()}
    assert {id(p) for p in groups[0]["params"]} == head and groups[0]["lr"] == pytest.approx(1e-3)
    rest = {id(p) for p in prepared.model.parameters() if p.requires_grad} - head
    assert {id(p) for p in groups[1]["params"]} == rest and groups[1]["lr"] == pytest.approx(1e-4)


def test_surgery_errors_name_the_problem(base_dir):
    base = load_model_dir(base_dir)
    state = base.model.state_dict()
    model = TransientClassifier(2, base.config.model)
    with pytest.raises(TLError, match="share no class"):
        load_pretrained(model, state, ["SN Ia", "SN II"], ["SLSN", "TDE"])
    wrong = dict(state, **{"metadata.0.weight": torch.zeros(3, 5)})
    with pytest.raises(TLError, match="'metadata.0.weight' has shape"):
        load_pretrained(model, wrong, ["SN Ia", "SN II"], ["SN II", "SLSN"])
    missing = {k: v for k, v in state.items() if k != "dense_1.0.bias"}
    with pytest.raises(TLError, match="missing.*dense_1.0.bias"):
        load_pretrained(model, missing, ["SN Ia", "SN II"], ["SN II", "SLSN"])
    with pytest.raises(TLError, match="share no class"):
        prepare(Config().override(TINY), make_toy_dataset(4, classes=("SLSN",)), base_model_dir=base_dir)


def test_corrupt_model_dir_names_the_file(base_dir, tmp_path):
    import shutil

    with pytest.raises(TLError, match="no such MODEL_DIR"):
        load_model_dir(str(tmp_path / "absent"))
    broken = tmp_path / "broken"
    shutil.copytree(base_dir, broken)
    (broken / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TLError, match="weights.pt: unreadable"):
        load_model_dir(str(broken))
    shutil.copy(f"{base_dir}/weights.pt", broken / "weights.pt")
    description = json.loads((broken / "model.json").read_text())
    description["config"]["model.gru_hidden"] = 9  # weights no longer fit the described model
    (broken / "model.json").write_text(json.dumps(description))
    with pytest.raises(TLError, match=r"weights.pt: parameter '[a-z_.0-9]+' has shape"):
        load_model_dir(str(broken))
    (broken / "model.json").write_text("{")
    with pytest.raises(TLError, match="model.json: not valid JSON"):
        load_model_dir(str(broken))
