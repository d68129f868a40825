"""A MODEL_DIR: everything `tl evaluate` / `tl predict` need, and nothing else is needed.

    MODEL_DIR/
      weights.pt     the model's state_dict (torch.save)
      model.json     format version, mode, classes, the full config (Config.flat()), the band table,
                     the bands seen in training, normalisation statistics, block names, lineage info,
                     the prior correction the model decides with (tl.prior; absent in older ones)
      history.json   one metrics dict per training epoch
      metrics.json   evaluation metrics (e.g. {"val": {...}, "test": {...}})
      calibration.json  the softmax temperature fitted on validation (tl.calibration; optional:
                     absent means T = 1; `tl calibrate` adds it to an existing MODEL_DIR)

A MODEL_DIR is written all at once: it appears complete or not at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from tl import __version__
from tl.atomic import staged_directory
from tl.config import Config
from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES, Normalizer
from tl.errors import TLError
from tl.prior import PriorCorrection
from tl.surveys import band_table

FORMAT = "tl-model"
FORMAT_VERSION = 1
FILES = ("weights.pt", "model.json", "history.json", "metrics.json")
CALIBRATION_FILE = "calibration.json"  # tl.calibration.FILE (optional)


@dataclass
class LoadedModel:
    model: "torch.nn.Module"  # noqa: F821  (eval mode)
    config: Config
    classes: list[str]
    normalizer: Normalizer
    band_table: list[dict]
    trained_bands: list[str] = field(default_factory=list)
    mode: str = "scratch"
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    path: str = ""
    prior_correction: PriorCorrection | None = None  # pass to tl.evaluation.evaluate / predict_proba
    calibration: "Calibration | None" = None  # noqa: F821  (tl.calibration; None: T = 1)

    @property
    def temperature(self) -> float:
        return self.calibration.temperature if self.calibration is not None else 1.0


def save_model_dir(path: str, prepared, model=None, *, history=(), metrics=None, info=None,
                   prior_correction: PriorCorrection | None = None, calibration=None) -> None:
    """Write a self-contained MODEL_DIR at `path` from a Prepared run (and its trained `model`,
    default prepared.model); replaces an existing MODEL_DIR only once the new one is complete.

    `info` (JSON-able dict) is stored in model.json, e.g. {"data": ..., "base_model": ...}.
    `prior_correction` is fit's (FitResult.prior_correction); without it, train.logit_adjustment
    by the train prior, and a tau chosen on validation (train.tune_logit_adjustment) is an error.
    `calibration` (tl.calibration.Calibration), if given, is written as calibration.json.
    """
    import torch

    from tl.evaluation import json_safe

    if prior_correction is None:
        if prepared.config.train.tune_logit_adjustment:
            raise TLError("save_model_dir: train.tune_logit_adjustment is on, pass the FitResult's "
                          "prior_correction (tau chosen on the val split)")
        prior_correction = PriorCorrection(tuple(prepared.log_prior), prepared.config.train.logit_adjustment)
    model = model if model is not None else prepared.model
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    description = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tl_version": __version__,
        "mode": prepared.mode, "classes": list(prepared.classes), "config": prepared.config.flat(),
        "band_table": band_table(), "trained_bands": list(prepared.trained_bands),
        "normalizer": prepared.normalizer.to_dict(), "blocks": list(module.blocks),
        "sequence_features": list(SEQUENCE_FEATURES), "metadata_features": list(METADATA_FEATURES),
        "prior_correction": prior_correction.to_dict(), "info": dict(info or {}),
    }
    with staged_directory(path, "model.json", "tl MODEL_DIR") as staging:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, os.path.join(staging, "weights.pt"))
        for name, content in (("model.json", description), ("history.json", list(history)),
                              ("metrics.json", metrics or {})):
            with open(os.path.join(staging, name), "w") as handle:
                json.dump(json_safe(content), handle, indent=2)
        if calibration is not None:
            with open(os.path.join(staging, CALIBRATION_FILE), "w") as handle:
                json.dump(json_safe(calibration.to_dict()), handle, indent=2)


def load_model_dir(path: str) -> LoadedModel:
    """Read a MODEL_DIR; a missing or corrupt one raises TLError naming the file at fault."""
    import torch

    from tl.calibration import load_calibration
    from tl.model import TransientClassifier

    if not os.path.isdir(path):
        raise TLError(f"{path}: no such MODEL_DIR")
    description = _read_json(path, "model.json")
    if description.get("format") != FORMAT:
        raise TLError(f"{path}/model.json: not a tl model description (no \"format\": \"{FORMAT}\")")
    try:
        config = Config.from_flat(description["config"])
        classes = list(description["classes"])
        normalizer = Normalizer.from_dict(description["normalizer"])
        bands = list(description["band_table"])
        correction = description.get("prior_correction")
        correction = PriorCorrection.from_dict(correction) if correction is not None else None
        if correction is not None and len(correction.log_prior) != len(classes):
            raise ValueError("'prior_correction' (one log prior per class)")
    except TLError as error:
        raise TLError(f"{path}/model.json: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise TLError(f"{path}/model.json: missing or malformed entry {error}") from None
    weights_path = os.path.join(path, "weights.pt")
    if not os.path.exists(weights_path):
        raise TLError(f"{weights_path}: missing")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise TLError(f"{weights_path}: unreadable ({str(error).splitlines()[0][:200]})") from None
    model = TransientClassifier(len(classes), config.model)
    check_state_dict(model.state_dict(), state, weights_path)
    model.load_state_dict(state)
    model.eval()
    return LoadedModel(
        model=model, config=config, classes=classes, normalizer=normalizer, band_table=bands,
        trained_bands=list(description.get("trained_bands", [])), mode=description.get("mode", ""),
        history=_read_json(path, "history.json", default=[]),
        metrics=_read_json(path, "metrics.json", default={}), info=description.get("info", {}),
        path=os.path.abspath(path), prior_correction=correction, calibration=load_calibration(path))


def _read_json(path: str, name: str, default=None):
    file_path = os.path.join(path, name)
    if not os.path.exists(file_path):
        if default is not None:
            return default
        raise TLError(f"{file_path}: missing (not a complete MODEL_DIR)")
    try:
        with open(file_path) as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TLError(f"{file_path}: not valid JSON ({error})") from None


def check_state_dict(expected: dict, loaded: dict, where: str, skip: tuple[str, ...] = ()) -> None:
    """Raise TLError unless `loaded` has exactly the keys and shapes of `expected` (keys starting
    with a prefix in `skip` are left out of the check)."""
    def kept(keys):
        return {k for k in keys if not k.startswith(skip)} if skip else set(keys)

    if not isinstance(loaded, dict):
        raise TLError(f"{where}: not a state dict")
    missing, unexpected = kept(expected) - kept(loaded), kept(loaded) - kept(expected)
    if missing or unexpected:
        raise TLError(f"{where}: parameter names differ from the model's (missing {sorted(missing)[:3]}, "
                      f"unexpected {sorted(unexpected)[:3]})")
    for key in sorted(kept(expected)):
        if tuple(expected[key].shape) != tuple(loaded[key].shape):
            raise TLError(f"{where}: parameter {key!r} has shape {tuple(loaded[key].shape)}, "
                          f"the model expects {tuple(expected[key].shape)}")
