"""A single-tensor wrapper around the classifier: the form MLflow's pytorch flavor logs and serves.

Input row (float32): metadata (5), light-curve length (1), then the standardised sequence padded
to max_length observations of 5 features, flattened. Output: class probabilities (softmax), of
the logits adjusted by the model's prior correction when one is given (tl.prior).
"""

from __future__ import annotations

import torch
from torch import nn

from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES
from tl.prior import PriorCorrection


class PackedInputClassifier(nn.Module):
    def __init__(self, classifier: nn.Module, max_length: int, correction: PriorCorrection | None = None):
        super().__init__()
        self.classifier = classifier
        self.max_length = max_length
        shift = None
        if correction is not None and correction.tau != 0:
            shift = correction.tau * torch.tensor(correction.log_prior, dtype=torch.float32)
        self.register_buffer("logit_shift", shift)  # (n_classes,) tau * log prior, or None

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        """packed (B, 6 + max_length * 5) -> probabilities (B, n_classes)."""
        n_meta, n_seq = len(METADATA_FEATURES), len(SEQUENCE_FEATURES)
        metadata = packed[:, :n_meta]
        lengths = packed[:, n_meta].round().long().clamp(min=1)
        sequences = packed[:, n_meta + 1:].reshape(len(packed), self.max_length, n_seq)
        sequences = sequences[:, :int(lengths.max())]  # (B, T, 5), T the longest light curve
        logits = self.classifier(sequences, lengths, metadata)
        if self.logit_shift is not None:
            logits = logits + self.logit_shift
        return torch.softmax(logits, dim=1)


def packed_width(max_length: int) -> int:
    """Columns of a packed input row: metadata (5), length (1), sequence (max_length x 5)."""
    return len(METADATA_FEATURES) + 1 + max_length * len(SEQUENCE_FEATURES)


def pack_inputs(dataset, max_length: int):
    """An EncodedDataset as one float32 array (N, packed_width): the logged model's input."""
    import numpy as np

    n_meta, n_seq = len(METADATA_FEATURES), len(SEQUENCE_FEATURES)
    rows = np.zeros((len(dataset), packed_width(max_length)), dtype=np.float32)
    for i in range(len(dataset)):
        sequence, metadata, _ = dataset[i]
        rows[i, :n_meta] = metadata.numpy()
        rows[i, n_meta] = len(sequence)
        rows[i, n_meta + 1:n_meta + 1 + len(sequence) * n_seq] = sequence.numpy().reshape(-1)
    return rows
