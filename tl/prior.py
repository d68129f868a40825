"""The target's class prior at decision time: logit adjustment and the head bias initialisation.

A model trained with inverse-frequency class weights (or transferred from a balanced simulated
base) decides as if every class were equally common. On a target where 74% of the objects are
SN Ia it then over-calls the rare classes. Logit adjustment moves the decisions towards the
target's train prior pi (the class frequencies of the subsampled train split):

    adjusted_c = logits_c + tau * log(pi_c)        probabilities = softmax(adjusted)

tau = 0 leaves the model as it is; tau = 1 is Bayes' rule for a model whose outputs carry a
uniform prior; tau < 0 moves towards balanced decisions (Menon et al. 2021's logit adjustment,
for a model trained without class weights). tau is `train.logit_adjustment`, or chosen on the val
split after training (`train.tune_logit_adjustment`, `choose_tau`): never on test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import f1_score

TAU_GRID = tuple(np.round(np.arange(-1.0, 2.0001, 0.25), 2).tolist())  # -1, -0.75, ..., 2


def log_prior(counts) -> tuple[float, ...]:
    """log(n_c / N) of per-class train counts (every count > 0: a train class has an object)."""
    counts = np.asarray(counts, dtype=np.float64)
    return tuple(np.log(counts / counts.sum()).tolist())


@dataclass(frozen=True)
class PriorCorrection:
    """Decision-time logit adjustment by a class prior; saved in model.json as to_dict()."""

    log_prior: tuple[float, ...]  # log train frequency per class, in the model's output order
    tau: float = 0.0
    chosen_on: str = "setting"  # "setting" (train.logit_adjustment) or "val" (choose_tau)
    val_macro_f1_by_tau: dict = field(default_factory=dict)  # from choose_tau: {tau: val macro-F1}

    def apply(self, logits):
        """logits (N, C) + tau * log_prior (a tensor or an array; unchanged when tau is 0)."""
        if self.tau == 0:
            return logits
        if isinstance(logits, torch.Tensor):
            shift = torch.tensor(self.log_prior, dtype=logits.dtype, device=logits.device)
        else:
            shift = np.asarray(self.log_prior, dtype=np.float64)
        return logits + self.tau * shift

    def to_dict(self) -> dict:
        return {"log_prior": list(self.log_prior), "tau": self.tau, "chosen_on": self.chosen_on,
                "val_macro_f1_by_tau": {str(k): v for k, v in self.val_macro_f1_by_tau.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> "PriorCorrection":
        return cls(log_prior=tuple(float(v) for v in values["log_prior"]), tau=float(values["tau"]),
                   chosen_on=str(values.get("chosen_on", "setting")),
                   val_macro_f1_by_tau={float(k): float(v) for k, v in values.get("val_macro_f1_by_tau", {}).items()})


def choose_tau(val_logits: np.ndarray, val_labels: np.ndarray, prior: tuple[float, ...],
               grid=TAU_GRID) -> PriorCorrection:
    """The tau of `grid` whose adjusted val decisions score the highest macro-F1 (ties: the tau
    closest to 0, the smaller intervention). val_logits (N, C), val_labels (N,) class indices."""
    val_logits, val_labels = np.asarray(val_logits, dtype=np.float64), np.asarray(val_labels)
    scores = {}
    for tau in grid:
        predicted = PriorCorrection(prior, float(tau)).apply(val_logits).argmax(axis=1)
        scores[float(tau)] = float(f1_score(val_labels, predicted, average="macro", zero_division=0))
    best = max(sorted(scores, key=lambda t: (abs(t), t)), key=lambda t: scores[t])  # max keeps the first
    return PriorCorrection(prior, best, chosen_on="val", val_macro_f1_by_tau=scores)


def init_head_bias(head: torch.nn.Linear, prior: tuple[float, ...]) -> None:
    """Set the head's bias to log(prior): before training, the model predicts the train prior."""
    with torch.no_grad():
        head.bias.copy_(torch.tensor(prior, dtype=head.bias.dtype))
