"""The classifier: packing is exact, blocks are named in order, freezing selects exactly them."""

import pytest
import torch

from tl.config import ModelConfig
from tl.errors import TLError
from tl.model import TransientClassifier, block_names, max_freeze_depth
from tl.transfer import freeze

SMALL = ModelConfig(gru_hidden=7, gru_layers=3, metadata_hidden=4, dense_hidden=6, dense_second=5, dropout=0.3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    sequences = [torch.randn(n, 5, generator=generator) for n in lengths]
    metadata = torch.randn(len(lengths), 5, generator=generator)
    return sequences, metadata


def test_packed_padded_batch_equals_per_sample_runs():
    torch.manual_seed(0)
    model = TransientClassifier(4, SMALL).eval()
    lengths = [3, 9, 1, 6]
    sequences, metadata = _batch(lengths)
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=123.0)
    batch = model(padded, torch.tensor(lengths), metadata)
    for i, sequence in enumerate(sequences):
        alone = model(sequence[None], torch.tensor([lengths[i]]), metadata[i:i + 1])
        torch.testing.assert_close(batch[i], alone[0], rtol=1e-5, atol=1e-6)


def test_block_names_and_depth():
    assert block_names(SMALL) == ("gru_1", "gru_2", "gru_3", "metadata", "dense_1", "dense_2", "head")
    assert max_freeze_depth(SMALL) == 6
    assert block_names(ModelConfig())[:2] == ("gru_1", "gru_2") and max_freeze_depth(ModelConfig()) == 5


@pytest.mark.parametrize("depth", range(0, 7))
def test_freeze_depth_leaves_exactly_the_later_blocks_trainable(depth):
    model = TransientClassifier(3, SMALL)
    frozen = freeze(model, depth)
    prefixes = {"gru_1": "grus.0.", "gru_2": "grus.1.", "gru_3": "grus.2.", "metadata": "metadata.",
                "dense_1": "dense_1.", "dense_2": "dense_2.", "head": "head."}
    frozen_prefixes = tuple(prefixes[name] for name in block_names(SMALL)[:depth])
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == (not name.startswith(frozen_prefixes)), name
    n_frozen = sum(1 for _, p in model.named_parameters() if not p.requires_grad)
    assert len(frozen) == n_frozen


def test_freeze_depth_out_of_range_is_an_error():
    with pytest.raises(TLError, match="between 0 and 6"):
        freeze(TransientClassifier(3, SMALL), 7)


def test_every_parameter_belongs_to_one_block():
    model = TransientClassifier(3, SMALL)
    in_blocks = [id(p) for name in model.blocks for p in model.block(name).parameters()]
    assert sorted(in_blocks) == sorted(id(p) for p in model.parameters())
