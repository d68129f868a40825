"""`tl train`, `tl transfer`, `tl evaluate`, `tl predict` (DESIGN.md section 4).

Imported to build the parser: torch and the training code are imported inside the run functions.
Every run function checks its settings and output paths before any work (tl/config.py,
tl/paths.py), and an empty result (nothing to score or predict) is an error, not a success.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tl.atomic import write_file
from tl.errors import TLError
from tl.paths import check_output

NAMED_OPTIONS = {"data.target_fraction": "--fraction", "train.epochs": "--epochs", "train.lr": "--lr",
                 "train.seed": "--seed", "transfer.freeze_depth": "--freeze-depth"}


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="maximum epochs (train.epochs)")
    parser.add_argument("--lr", type=float, help="learning rate (train.lr)")
    parser.add_argument("--seed", type=int, help="training seed (train.seed; the subset seed is data.seed)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any setting by dotted name, e.g. --set train.batch_size=32 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")
    _add_threads_option(parser)


def _add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: small GRUs train fastest on one, "
                             "and several runs can share a machine)")


def _check_threads(args) -> None:
    if args.threads < 1:
        raise TLError(f"--threads must be >= 1, got {args.threads}")


def _set_threads(args) -> None:
    import torch

    torch.set_num_threads(args.threads)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="canonical data set directory")
    parser.add_argument("--out", required=True, help="MODEL_DIR to write")
    parser.add_argument("--fraction", type=float, help="fraction of the train split (data.target_fraction)")
    _add_training_options(parser)


def add_transfer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="MODEL_DIR of the pre-trained base model")
    parser.add_argument("--data", required=True, help="canonical target data set directory")
    parser.add_argument("--fraction", type=float, required=True, help="fraction of the target train split")
    parser.add_argument("--freeze-depth", type=int,
                        help="use strategy depth with this many blocks frozen, input to output: "
                             "gru_1..gru_L, metadata, dense_1, dense_2, head (0 fine-tunes everything, at "
                             "most all but the head). Default: the transfer recipe (tl/recipes.py: "
                             "strategy gru, the pre-trained GRU at 0.06 x the learning rate)")
    parser.add_argument("--out", required=True, help="MODEL_DIR to write")
    _add_training_options(parser)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MODEL_DIR")
    parser.add_argument("--data", required=True, help="canonical data set directory")
    parser.add_argument("--split", default="test", choices=("test", "val", "train", "all"))
    parser.add_argument("--days", type=float, help="use only the first N days after first detection")
    parser.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    parser.add_argument("--plot", metavar="DIR", help="write confusion_matrix.png and reliability.png here")
    parser.add_argument("--bins", type=int, default=15, help="equal-width bins of the calibration error (15)")
    _add_threads_option(parser)


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MODEL_DIR to add calibration.json to")
    parser.add_argument("--data", required=True, help="canonical data set directory (its val split is used)")
    parser.add_argument("--split", default="val", choices=("val", "train", "test", "all"),
                        help="split to fit the temperature on (val; fitting on test biases its scores)")
    parser.add_argument("--bins", type=int, default=15, help="equal-width bins of the calibration error (15)")
    _add_threads_option(parser)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    from tl.predict import RAW_FORMATS

    parser.add_argument("--model", required=True,
                        help="MODEL_DIR, models:/<name>@<alias> (e.g. @champion), models:/<name>/<version> "
                             "or runs:/<run_id>/<path>")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for models:/ and runs:/ (default: "
                                               "MLFLOW_TRACKING_URI)")
    parser.add_argument("--data", help="canonical data set directory")
    parser.add_argument("--format", choices=RAW_FORMATS, help="raw files to read on the fly (with --src); "
                                                             "objects without a known label are kept")
    parser.add_argument("--src", help="raw file or folder of --format")
    parser.add_argument("--out", required=True, help="file to write: .parquet or .csv")
    parser.add_argument("--split", default="all", choices=("test", "val", "train", "all"))
    parser.add_argument("--days", type=float, help="use only the first N days after first detection")
    _add_threads_option(parser)


def _config(args, mode: str, **extra):
    """The Config from the mode's recipe (tl/recipes.py), --set and the named options (named options
    win over --set, --set over the recipe); a bad value raises naming its option (`--lr: must be > 0,
    got -1.0`) or its setting (`setting 'train.lr': ...`)."""
    from tl.config import Config, SettingError
    from tl.recipes import recipe

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise TLError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value.strip()
    named = {"data.target_fraction": args.fraction, "train.epochs": args.epochs, "train.lr": args.lr,
             "train.seed": args.seed, **extra}
    named = {k: v for k, v in named.items() if v is not None}
    defaults = recipe(mode)
    if "transfer.freeze_depth" in named and "transfer.strategy" not in overrides:
        defaults["transfer.strategy"] = "depth"  # --freeze-depth asks for the depth strategy
    try:
        return Config().override({**defaults, **overrides, **named})
    except SettingError as error:
        if error.key in named:
            raise TLError(f"{NAMED_OPTIONS[error.key]}: {error.problem}") from None
        raise


def _print_dropped(dropped: dict) -> None:
    for reason, n in dropped.items():
        print(f"left out {n} objects ({reason})")


def run_train(args) -> int:
    return _train(args, _config(args, "scratch"), base=None)


def run_transfer(args) -> int:
    return _train(args, _config(args, "transfer", **{"transfer.freeze_depth": args.freeze_depth}), base=args.base)


def _train(args, config, base: str | None) -> int:
    _check_threads(args)
    check_output(args.out, "--out", directory=True, inputs={"--data": args.data, "--base": base},
                 marker="model.json", kind="tl MODEL_DIR")
    from tl.evaluation import evaluate, format_summary
    from tl.experiment import prepare
    from tl.modeldir import save_model_dir
    from tl.training import fit

    _set_threads(args)
    start = time.time()
    prepared = prepare(config, args.data, base_model_dir=base)
    _print_dropped(prepared.dropped)
    print(f"{prepared.mode}: {len(prepared.train)} train / {len(prepared.val)} val / {len(prepared.test)} "
          f"test objects, classes {', '.join(prepared.classes)}")
    progress = sys.stderr.isatty() and not args.quiet

    def report(metrics, get_state):
        if not progress and not args.quiet:
            print(" ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)

    result = fit(prepared, report=report, progress=progress)
    metrics = {split: evaluate(result.model, getattr(prepared, split), prepared.classes,
                               correction=result.prior_correction)
               for split in ("val", "test")}
    metrics["training"] = result.summary()
    data = args.data if "://" in args.data else os.path.abspath(args.data)
    info = {"data": data, "base_model": os.path.abspath(base) if base else None,
            "best_epoch": result.best_epoch, "dropped": prepared.dropped,
            "train_seconds": round(time.time() - start, 1)}
    calibration = _fit_calibration(result, prepared.val)
    save_model_dir(args.out, prepared, result.model, history=result.history, metrics=metrics, info=info,
                   prior_correction=result.prior_correction, calibration=calibration)
    budget = "" if result.converged else f" (the last of its {result.epoch_budget}: not converged)"
    tau = result.prior_correction.tau
    print(f"best epoch {result.best_epoch}{budget}; logit adjustment tau {tau:g}; test split:")
    print(format_summary(metrics["test"]))
    if calibration is not None:
        print(_calibration_line(calibration))
    print(f"wrote {args.out} in {time.time() - start:.1f} s")
    return 0


def _fit_calibration(result, val):
    """The softmax temperature fitted on the val split (tl.calibration), or None with fewer than
    MIN_OBJECTS labelled val objects (then T = 1; `tl calibrate` can still fit one)."""
    from tl.calibration import MIN_OBJECTS, calibrate
    from tl.evaluation import adjusted_logits

    n_labelled = int((val.labels >= 0).sum())
    if n_labelled < MIN_OBJECTS:
        print(f"no temperature fitted: {n_labelled} labelled val objects (< {MIN_OBJECTS}); T = 1")
        return None
    logits = adjusted_logits(result.model, val, correction=result.prior_correction)
    return calibrate(logits, val.labels.numpy(), "val")


def _check_inputs(args, outputs: dict, inputs: dict | None = None) -> None:
    """evaluate/predict/calibrate: the options and the output paths, before anything is loaded."""
    _check_threads(args)
    if getattr(args, "days", None) is not None and not args.days >= 0:
        raise TLError(f"--days must be >= 0, got {args.days!r}")
    if getattr(args, "bins", 1) < 1:
        raise TLError(f"--bins must be >= 1, got {args.bins}")
    inputs = inputs or {"--model": args.model, "--data": args.data}
    for flag, (out, directory) in outputs.items():
        if out is not None:
            check_output(out, flag, directory=directory, inputs=inputs)


def _load_encoded(args, model_dir: str | None = None, dataset=None, where: str | None = None):
    """(loaded model, encoded data set) for evaluate/predict/calibrate: `dataset` (default: read
    --data), the --split of it, truncated to --days."""
    from tl.data import read_dataset, splits_for
    from tl.encoding import check_bands, encode, truncate_days
    from tl.modeldir import load_model_dir

    _set_threads(args)
    loaded = load_model_dir(model_dir or args.model)
    where = where or args.data
    dataset = read_dataset(args.data) if dataset is None else dataset
    check_bands(dataset, loaded.band_table, where)
    unseen = sorted(set(dataset.observations["band"]) - set(loaded.trained_bands))
    if loaded.trained_bands and unseen:
        print(f"note: bands {', '.join(unseen)} were not in the model's training data "
              "(read through their wavelength)")
    # A model trained on outer fold k (data.folds > 0) is scored on that fold's split.
    dataset = splits_for(dataset, loaded.config.data.folds, loaded.config.data.fold).split(args.split)
    if getattr(args, "days", None) is not None:
        dataset = truncate_days(dataset, args.days)
    encoded = encode(dataset, loaded.classes, loaded.normalizer, loaded.config.data.max_length)
    _print_dropped(encoded.dropped)
    return loaded, encoded


def run_evaluate(args) -> int:
    from tl.calibration import expected_calibration_error
    from tl.evaluation import adjusted_logits, compute_metrics, format_summary, json_safe

    _check_inputs(args, {"--json": (args.json, False), "--plot": (args.plot, True)})
    loaded, encoded = _load_encoded(args)
    if not (encoded.labels >= 0).any():
        raise TLError(f"--data {args.data} --split {args.split}: no object to score ({_why_empty(encoded)})")
    logits = adjusted_logits(loaded.model, encoded, correction=loaded.prior_correction)
    labels = encoded.labels.numpy()
    known = labels >= 0
    proba = _softmax(logits[known], loaded.temperature)
    metrics = compute_metrics(labels[known], proba, loaded.classes)
    metrics.update(n_unknown_class=int((~known).sum()), split=args.split, days=args.days, dropped=encoded.dropped,
                   temperature=loaded.temperature, ece_bins=args.bins,
                   ece_uncalibrated=expected_calibration_error(_softmax(logits[known]), labels[known], args.bins),
                   ece=expected_calibration_error(proba, labels[known], args.bins))
    if metrics["n_unknown_class"]:
        print(f"left out {metrics['n_unknown_class']} objects (class not among the model's classes)")
    print(format_summary(metrics))
    source = "calibration.json" if loaded.calibration is not None else "none fitted: T = 1"
    print(f"expected calibration error ({args.bins} bins): {metrics['ece_uncalibrated']:.4f} before, "
          f"{metrics['ece']:.4f} after temperature scaling (T = {loaded.temperature:.3f}, {source})")
    if args.json:
        write_file(args.json, lambda f: f.write(json.dumps(json_safe(metrics), indent=2)), "w")
        print(f"wrote {args.json}")
    if args.plot:
        from tl.plots import write_evaluation_plots

        for path in write_evaluation_plots(args.plot, metrics, proba, labels[known], args.bins):
            print(f"wrote {path}")
    return 0


def _softmax(logits, temperature: float = 1.0):
    from tl.calibration import softmax

    return softmax(logits, temperature)


def run_calibrate(args) -> int:
    from tl.calibration import calibrate, save_calibration
    from tl.evaluation import adjusted_logits

    args.days = None
    _check_inputs(args, {})
    check_output(args.model, "--model", directory=True, inputs={"--data": args.data}, marker="model.json",
                 kind="tl MODEL_DIR")
    loaded, encoded = _load_encoded(args)
    if not (encoded.labels >= 0).any():
        raise TLError(f"--data {args.data} --split {args.split}: no object to fit on ({_why_empty(encoded)})")
    logits = adjusted_logits(loaded.model, encoded, correction=loaded.prior_correction)
    calibration = calibrate(logits, encoded.labels.numpy(), args.split, args.bins)
    save_calibration(args.model, calibration)
    print(_calibration_line(calibration, args.bins))
    print(f"wrote {args.model}/calibration.json")
    return 0


def _calibration_line(calibration, bins: int = 15) -> str:
    c = calibration
    return (f"temperature {c.temperature:.3f} fitted on {c.fitted_on}: NLL {c.nll_before:.4f} -> {c.nll_after:.4f}, "
            f"ECE ({bins} bins) {c.ece_before:.4f} -> {c.ece_after:.4f}")


def _check_predict_source(args) -> None:
    if (args.data is None) == (args.format is None):
        raise TLError("give either --data DIR or --format FORMAT --src PATH")
    if args.format is not None and args.src is None:
        raise TLError(f"--format {args.format}: --src PATH is needed")
    if args.src is not None and args.format is None:
        raise TLError("--src: --format FORMAT is needed")
    from tl.predict import check_model_reference, is_model_uri

    if args.tracking_uri is not None and not is_model_uri(args.model):
        raise TLError(f"--tracking-uri: only with a models:/ or runs:/ --model, got {args.model}")
    check_model_reference(args.model, args.tracking_uri)


def run_predict(args) -> int:
    import tempfile

    from tl.predict import read_raw, resolve_model

    from tl.predict import check_out_suffix

    _check_predict_source(args)
    _check_inputs(args, {"--out": (args.out, False)}, {"--model": args.model, "--data": args.data, "--src": args.src})
    check_out_suffix(args.out)
    with tempfile.TemporaryDirectory(prefix="tl-predict-") as scratch:
        model_dir = resolve_model(args.model, scratch, args.tracking_uri)
        if args.format is not None:
            raw = read_raw(args.format, args.src)
            _print_dropped(raw.dropped)
            loaded, encoded = _load_encoded(args, model_dir, raw.dataset, where=args.src)
            dropped = {**raw.dropped, **encoded.dropped}
        else:
            loaded, encoded = _load_encoded(args, model_dir)
            dropped = encoded.dropped
        where = f"--src {args.src}" if args.format else f"--data {args.data} --split {args.split}"
        if len(encoded) == 0:
            raise TLError(f"{where}: no object to predict ({_why_empty(encoded)})")
        table = _prediction_frame(loaded, encoded)
    from tl.predict import write_table

    write_table(table, args.out)
    left_out = sum(dropped.values())
    print(f"wrote {len(table)} predictions to {args.out} (T = {loaded.temperature:.3f}; "
          f"{left_out} objects could not be used{', see above' if left_out else ''})")
    return 0


def _prediction_frame(loaded, encoded):
    """object_id, one probability column per model class (rows sum to 1), predicted_class, n_observations."""
    import pandas as pd

    from tl.evaluation import predict_proba

    proba = predict_proba(loaded.model, encoded, correction=loaded.prior_correction,
                          temperature=loaded.temperature)
    table = pd.DataFrame(proba, columns=loaded.classes)
    table.insert(0, "object_id", encoded.object_ids)
    table["predicted_class"] = [loaded.classes[i] for i in proba.argmax(axis=1)]
    table["n_observations"] = [len(s) for s in encoded.sequences]
    return table


def _why_empty(encoded) -> str:
    unknown = int((encoded.labels < 0).sum())
    reasons = [f"{unknown} of a class the model lacks"] if unknown else []
    reasons += [f"{n} left out: {reason}" for reason, n in encoded.dropped.items()]
    return "; ".join(reasons) or "the split has no objects"
