"""Figures of one evaluation: the confusion matrix and a reliability diagram (matplotlib, Agg)."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(confusion, classes: list[str], title: str = ""):
    """sklearn's ConfusionMatrixDisplay of counts (rows true, columns predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.6 + 0.8 * len(classes)))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=classes).plot(
        ax=axes, cmap="Blues", colorbar=False, xticks_rotation=45)
    axes.set_title(title)
    figure.tight_layout()
    return figure


def reliability_figure(proba: np.ndarray, labels: np.ndarray, n_bins: int = 15, title: str = ""):
    """Accuracy against mean confidence per equal-width bin (tl.calibration.reliability_bins), with
    the diagonal of perfect calibration and the share of objects per bin."""
    from tl.calibration import expected_calibration_error, reliability_bins

    plt = _pyplot()
    counts, confidence, accuracy = reliability_bins(proba, labels, n_bins)
    edges = np.linspace(0, 1, n_bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    used = counts > 0
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.bar(centres[used], accuracy[used], width=1 / n_bins, edgecolor="k", alpha=0.7, label="accuracy")
    axes.bar(centres, counts / max(counts.sum(), 1), width=1 / n_bins, color="grey", alpha=0.3,
             label="share of objects")
    axes.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy",
             title=title or f"ECE {expected_calibration_error(proba, labels, n_bins):.3f} ({n_bins} bins)")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def save_figure(figure, path: str) -> str:
    from tl.atomic import write_file

    plt = _pyplot()
    write_file(path, lambda f: figure.savefig(f, format="png", dpi=120), "wb")
    plt.close(figure)
    return path


def write_evaluation_plots(directory: str, metrics: dict, proba: np.ndarray, labels: np.ndarray,
                           n_bins: int = 15) -> list[str]:
    """confusion_matrix.png and reliability.png in `directory` (made if absent); their paths."""
    os.makedirs(directory, exist_ok=True)
    title = f"{metrics.get('split', '')}: macro F1 {metrics['macro_f1']:.3f}"
    return [save_figure(confusion_figure(metrics["confusion"], metrics["classes"], title),
                        os.path.join(directory, "confusion_matrix.png")),
            save_figure(reliability_figure(proba, labels, n_bins), os.path.join(directory, "reliability.png"))]
