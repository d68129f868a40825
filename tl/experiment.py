"""Prepare one training run (scratch or transfer): data, encoding, model, class weights.

    prepared = prepare(config, "data/bts", base_model_dir="models/sims")   # transfer
    result = tl.training.fit(prepared)

The same Prepared serves a plain process (`tl train`), a Ray Train worker, and tests.
`zero_shot_predictions` scores the base model on the target with no training at all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from tl.config import Config
from tl.data import Dataset, read_dataset, splits_for, subsample_train
from tl.encoding import EncodedDataset, Normalizer, check_bands, encode, encode_raw, fit_normalizer, from_raw
from tl.errors import TLError
from tl.evaluation import evaluate, predict_logits, prediction_table
from tl.model import TransientClassifier
from tl.modeldir import load_model_dir
from tl.prior import PriorCorrection, choose_tau, init_head_bias, log_prior
from tl.taxonomy import ordered_classes
from tl.training import class_weights
from tl.transfer import apply_strategy, load_pretrained, trained_blocks, transfer_config, zero_shot_model


@dataclass
class Prepared:
    """Everything one training run needs, however it is parallelised."""

    config: Config
    mode: str  # "scratch" or "transfer"
    classes: list[str]  # target classes in taxonomy order (the model's output order)
    model: torch.nn.Module  # built; for transfer: base weights loaded, head mapped, frozen
    train: EncodedDataset  # already subsampled to data.target_fraction
    val: EncodedDataset
    test: EncodedDataset
    class_weights: torch.Tensor  # (n_classes,) from the train counts and train.class_weight_power
    normalizer: Normalizer  # train-split statistics (transfer: the base model's), saved with the model
    log_prior: tuple[float, ...] = ()  # log class frequencies of the (subsampled) train split (tl.prior)
    pretrained_blocks: tuple[str, ...] = ()  # blocks loaded from the base (get lr * pretrained_lr_scale)
    frozen_parameters: list[str] = field(default_factory=list)
    base_classes: list[str] = field(default_factory=list)
    trained_bands: list[str] = field(default_factory=list)  # bands present in the train split
    dropped: dict[str, int] = field(default_factory=dict)  # "split: reason" -> objects left out

    def trained_blocks(self, epoch: int) -> tuple[str, ...]:
        """The blocks the optimiser holds at `epoch` (transfer.strategy head_then_all: the head first)."""
        if self.mode == "scratch":
            return self.model.blocks
        return trained_blocks(self.model.blocks, self.config.transfer, epoch)


@dataclass
class PreparedData:
    """The encoded splits of one run: what trials with the same data settings share (a sweep's
    single-worker trials cache it per process, tl.sweep.worker)."""

    classes: list[str]
    train: EncodedDataset
    val: EncodedDataset
    test: EncodedDataset
    normalizer: Normalizer
    trained_bands: list[str]
    base: "object | None"  # the base LoadedModel (tl.modeldir), None from scratch


def prepare_data(config: Config, data: "str | Dataset", base_model_dir: str | None = None) -> PreparedData:
    """Subsample the train split (data.target_fraction, data.seed) and encode every split; with
    data.folds, the splits are those of outer fold data.fold (tl.data.splits_for).

    Depends on config.data only (and on the base model's normaliser for transfer: with
    data.refit_metadata_normalizer, its sequence statistics and the target train split's metadata
    statistics)."""
    dataset = read_dataset(data) if isinstance(data, str) else data
    where = data if isinstance(data, str) else dataset.meta.get("name", "data set")
    dataset = splits_for(dataset, config.data.folds, config.data.fold)
    objects = subsample_train(dataset.objects, config.data.target_fraction, config.data.seed)
    observations = dataset.observations[dataset.observations["object_id"].isin(objects["object_id"])]
    dataset = Dataset(objects, observations.reset_index(drop=True), dataset.meta)
    train_split = dataset.split("train")
    if len(train_split.objects) == 0:
        raise TLError(f"{where}: the train split is empty")
    raw_train = encode_raw(train_split, config.data.max_length)
    classes = ordered_classes(raw_train.labels)  # of the objects that could be encoded
    base = None
    if base_model_dir is None:
        normalizer = fit_normalizer(raw_train)
    else:
        base = load_model_dir(base_model_dir)
        check_bands(dataset, base.band_table, where)
        normalizer = base.normalizer
        if config.data.refit_metadata_normalizer:
            target = fit_normalizer(raw_train)
            normalizer = dataclasses.replace(normalizer, metadata_mean=target.metadata_mean,
                                             metadata_std=target.metadata_std)
    return PreparedData(
        classes=classes, train=from_raw(raw_train, classes, normalizer),
        val=_encode_split(dataset, "val", classes, normalizer, config),
        test=_encode_split(dataset, "test", classes, normalizer, config),
        normalizer=normalizer, trained_bands=sorted(set(train_split.observations["band"])), base=base)


def prepare(config: Config, data: "str | Dataset", base_model_dir: str | None = None,
            prepared_data: PreparedData | None = None) -> Prepared:
    """Build a Prepared run: scratch when `base_model_dir` is None, else transfer from that MODEL_DIR.

    The train split is subsampled with tl.data.subsample_train(objects, data.target_fraction,
    data.seed), so scratch and transfer runs at the same fraction see the same nested subset.
    Classes are those of the (subsampled) train split; val/test objects of other classes are
    left out and counted in `dropped`. torch is seeded with train.seed before the model is built.
    A scratch run ignores the transfer.* settings. With train.init_bias_to_prior the head's bias
    starts at the log train prior (transfer: after the head is mapped). `prepared_data`, when given,
    must come from prepare_data with the same config.data, data and base model (used as is).
    """
    encoded = prepared_data or prepare_data(config, data, base_model_dir)
    base = encoded.base
    if base is not None:
        config = transfer_config(config, base.config)
    torch.manual_seed(config.train.seed)
    model = TransientClassifier(len(encoded.classes), config.model)
    prepared = Prepared(
        config=config, mode="scratch" if base is None else "transfer", classes=list(encoded.classes),
        model=model, train=encoded.train, val=encoded.val, test=encoded.test,
        class_weights=torch.empty(0), normalizer=encoded.normalizer,
        trained_bands=list(encoded.trained_bands),
    )
    if base is not None:
        _apply_transfer(prepared, base)
    counts = torch.bincount(prepared.train.labels, minlength=len(prepared.classes)).tolist()
    prepared.class_weights = class_weights(counts, config.train.class_weight_power)  # checks every count > 0
    prepared.log_prior = log_prior(counts)
    if config.train.init_bias_to_prior:
        init_head_bias(prepared.model.head, prepared.log_prior)
    for split in ("train", "val", "test"):
        for reason, n in getattr(prepared, split).dropped.items():
            prepared.dropped[f"{split}: {reason}"] = n
    return prepared


def _encode_split(dataset: Dataset, split: str, classes: list[str], normalizer: Normalizer,
                  config: Config) -> EncodedDataset:
    """Encode one evaluation split, leaving out (and counting) objects of classes not in `classes`."""
    part = dataset.split(split)
    known = part.objects["label"].isin(classes)
    n_unknown = int((~known).sum())
    if n_unknown:
        objects = part.objects[known].reset_index(drop=True)
        part = Dataset(objects, part.observations[part.observations["object_id"].isin(objects["object_id"])],
                       part.meta)
    encoded = encode(part, classes, normalizer, config.data.max_length)
    if n_unknown:
        encoded.dropped["class not in the train split"] = n_unknown
    return encoded


def _apply_transfer(prepared: Prepared, base) -> None:
    """Load the base weights into prepared.model, map the head by class name, freeze blocks."""
    load_pretrained(prepared.model, base.model.state_dict(), base.classes, prepared.classes,
                    where=f"{base.path}/weights.pt")
    prepared.frozen_parameters = apply_strategy(prepared.model, prepared.config.transfer)
    prepared.pretrained_blocks = tuple(name for name in prepared.model.blocks if name != "head")
    prepared.base_classes = list(base.classes)


def zero_shot_predictions(base_model_dir: str, data: "str | Dataset", split: str = "test",
                          config: Config | None = None) -> tuple[dict, "pandas.DataFrame"]:  # noqa: F821
    """The zero-shot point: the base model on the target `split`, head mapped onto the target
    classes by name (tl.transfer.zero_shot_model), no training.

    The objects, classes and encoding are those of a transfer run with `config` (default: Config()
    with the base's data.max_length): the target train split's classes, val/test objects of other
    classes left out. A target class the base lacks is never predicted, so its objects count as
    errors. Decisions use train.logit_adjustment, or with train.tune_logit_adjustment the tau
    chosen on the val split, by the (subsampled) target train prior. Returns (tl.evaluation.evaluate
    of that split with "prior_correction" added, tl.evaluation.prediction_table of that split).
    """
    if split not in ("val", "test"):
        raise TLError(f"zero-shot split must be val or test, got {split!r}")
    if config is None:
        base_config = load_model_dir(base_model_dir).config
        config = Config().override({"data.max_length": base_config.data.max_length})
    encoded = prepare_data(config, data, base_model_dir)
    model = zero_shot_model(encoded.base, encoded.classes)
    prior = log_prior(torch.bincount(encoded.train.labels, minlength=len(encoded.classes)).tolist())
    correction = PriorCorrection(prior, config.train.logit_adjustment)
    if config.train.tune_logit_adjustment:
        correction = choose_tau(predict_logits(model, encoded.val), encoded.val.labels.numpy(), prior)
    dataset = getattr(encoded, split)
    evaluation = evaluate(model, dataset, encoded.classes, correction=correction)
    evaluation["prior_correction"] = correction.to_dict()
    return evaluation, prediction_table(model, {split: dataset}, encoded.classes, correction)
