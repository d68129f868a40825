"""The classifier: a multi-layer GRU over the light curve and a dense metadata branch, concatenated
into a dense head (Muthukrishna, Gupta et al. 2025; ORACLE/RAPID lineage). nn.Module only.

Blocks, in input-to-output order (freeze depth k freezes the first k of them):

    gru_1 ... gru_L   one single-layer GRU per layer over the packed sequence
    metadata          Linear(5, metadata_hidden) + ReLU over the metadata vector
    dense_1, dense_2  Linear + ReLU + dropout over [last GRU state, metadata features]
    head              Linear(dense_second, n_classes): the class logits

The largest freeze depth is "everything but the head" (len(blocks) - 1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from tl.config import ModelConfig
from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES


def block_names(config: ModelConfig) -> tuple[str, ...]:
    """Names of the model's blocks in input-to-output order."""
    return tuple(f"gru_{i + 1}" for i in range(config.gru_layers)) + ("metadata", "dense_1", "dense_2", "head")


def max_freeze_depth(config: ModelConfig) -> int:
    """The largest freeze depth: every block but the head."""
    return len(block_names(config)) - 1


class TransientClassifier(nn.Module):
    def __init__(self, n_classes: int, config: ModelConfig):
        super().__init__()
        self.config = config
        width = len(SEQUENCE_FEATURES)
        self.grus = nn.ModuleList()
        for _ in range(config.gru_layers):
            self.grus.append(nn.GRU(width, config.gru_hidden, batch_first=True))
            width = config.gru_hidden
        self.metadata = nn.Sequential(nn.Linear(len(METADATA_FEATURES), config.metadata_hidden), nn.ReLU())
        self.dense_1 = nn.Sequential(
            nn.Linear(config.gru_hidden + config.metadata_hidden, config.dense_hidden), nn.ReLU(),
            nn.Dropout(config.dropout))
        self.dense_2 = nn.Sequential(
            nn.Linear(config.dense_hidden, config.dense_second), nn.ReLU(), nn.Dropout(config.dropout))
        self.head = nn.Linear(config.dense_second, n_classes)
        self.dropout = nn.Dropout(config.dropout)

    @property
    def blocks(self) -> tuple[str, ...]:
        return block_names(self.config)

    def block(self, name: str) -> nn.Module:
        """The module of block `name`."""
        if name.startswith("gru_"):
            return self.grus[int(name[4:]) - 1]
        return getattr(self, name)

    def forward(self, sequences: torch.Tensor, lengths: torch.Tensor, metadata: torch.Tensor) -> torch.Tensor:
        """sequences (B, T, 5) zero-padded, lengths (B,), metadata (B, 5) -> logits (B, n_classes)."""
        packed = pack_padded_sequence(sequences, lengths.cpu(), batch_first=True, enforce_sorted=False)
        for i, gru in enumerate(self.grus):
            if i > 0:  # dropout between GRU layers, on the packed data only
                packed = PackedSequence(self.dropout(packed.data), packed.batch_sizes,
                                        packed.sorted_indices, packed.unsorted_indices)
            packed, last = gru(packed)  # last: (1, B, H), back in input order
        features = torch.cat([self.dropout(last[0]), self.metadata(metadata)], dim=1)
        return self.head(self.dense_2(self.dense_1(features)))
