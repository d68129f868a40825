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
                        help="transfer.freeze_depth (strategy depth): number of blocks frozen, input to "
                             "output: gru_1..gru_L, metadata, dense_1, dense_2, head; 0 (the default) "
                             "fine-tunes everything, at most all but the head. Other strategies: "
                             "--set transfer.strategy=gru|head_then_all")
    parser.add_argument("--out", required=True, help="MODEL_DIR to write")
    _add_training_options(parser)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MODEL_DIR")
    parser.add_argument("--data", required=True, help="canonical data set directory")
    parser.add_argument("--split", default="test", choices=("test", "val", "train", "all"))
    parser.add_argument("--days", type=float, help="use only the first N days after first detection")
    parser.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    _add_threads_option(parser)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="MODEL_DIR")
    parser.add_argument("--data", required=True, help="canonical data set directory")
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.add_argument("--split", default="all", choices=("test", "val", "train", "all"))
    parser.add_argument("--days", type=float, help="use only the first N days after first detection")
    _add_threads_option(parser)


def _config(args, **extra):
    """The Config from --set and the named options (named options win); a bad value raises naming
    its option (`--lr: must be > 0, got -1.0`) or its setting (`setting 'train.lr': ...`)."""
    from tl.config import Config, SettingError

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise TLError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value.strip()
    named = {"data.target_fraction": args.fraction, "train.epochs": args.epochs, "train.lr": args.lr,
             "train.seed": args.seed, **extra}
    named = {k: v for k, v in named.items() if v is not None}
    try:
        return Config().override({**overrides, **named})
    except SettingError as error:
        if error.key in named:
            raise TLError(f"{NAMED_OPTIONS[error.key]}: {error.problem}") from None
        raise


def _print_dropped(dropped: dict) -> None:
    for reason, n in dropped.items():
        print(f"left out {n} objects ({reason})")


def run_train(args) -> int:
    return _train(args, _config(args), base=None)


def run_transfer(args) -> int:
    return _train(args, _config(args, **{"transfer.freeze_depth": args.freeze_depth}), base=args.base)


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
    save_model_dir(args.out, prepared, result.model, history=result.history, metrics=metrics, info=info,
                   prior_correction=result.prior_correction)
    budget = "" if result.converged else f" (the last of its {result.epoch_budget}: not converged)"
    tau = result.prior_correction.tau
    print(f"best epoch {result.best_epoch}{budget}; logit adjustment tau {tau:g}; test split:")
    print(format_summary(metrics["test"]))
    print(f"wrote {args.out} in {time.time() - start:.1f} s")
    return 0


def _check_inputs(args, out: str | None, flag: str) -> None:
    """evaluate/predict: the options and the output file (if any), before anything is loaded."""
    _check_threads(args)
    if args.days is not None and not args.days >= 0:
        raise TLError(f"--days must be >= 0, got {args.days!r}")
    if out is not None:
        check_output(out, flag, directory=False, inputs={"--model": args.model, "--data": args.data})


def _load_encoded(args):
    """(loaded model, encoded data set) for evaluate/predict."""
    from tl.data import read_dataset, splits_for
    from tl.encoding import check_bands, encode, truncate_days
    from tl.modeldir import load_model_dir

    _set_threads(args)
    loaded = load_model_dir(args.model)
    dataset = read_dataset(args.data)
    check_bands(dataset, loaded.band_table, args.data)
    unseen = sorted(set(dataset.observations["band"]) - set(loaded.trained_bands))
    if loaded.trained_bands and unseen:
        print(f"note: bands {', '.join(unseen)} were not in the model's training data "
              "(read through their wavelength)")
    # A model trained on outer fold k (data.folds > 0) is scored on that fold's split.
    dataset = splits_for(dataset, loaded.config.data.folds, loaded.config.data.fold).split(args.split)
    if args.days is not None:
        dataset = truncate_days(dataset, args.days)
    encoded = encode(dataset, loaded.classes, loaded.normalizer, loaded.config.data.max_length)
    _print_dropped(encoded.dropped)
    return loaded, encoded


def run_evaluate(args) -> int:
    from tl.evaluation import evaluate, format_summary, json_safe

    _check_inputs(args, args.json, "--json")
    loaded, encoded = _load_encoded(args)
    if not (encoded.labels >= 0).any():
        raise TLError(f"--data {args.data} --split {args.split}: no object to score ({_why_empty(encoded)})")
    metrics = evaluate(loaded.model, encoded, loaded.classes, correction=loaded.prior_correction)
    metrics.update(split=args.split, days=args.days, dropped=encoded.dropped)
    if metrics["n_unknown_class"]:
        print(f"left out {metrics['n_unknown_class']} objects (class not among the model's classes)")
    print(format_summary(metrics))
    if args.json:
        write_file(args.json, lambda f: f.write(json.dumps(json_safe(metrics), indent=2)), "w")
        print(f"wrote {args.json}")
    return 0


def run_predict(args) -> int:
    import pandas as pd

    from tl.evaluation import predict_proba

    _check_inputs(args, args.out, "--out")
    loaded, encoded = _load_encoded(args)
    if len(encoded) == 0:
        raise TLError(f"--data {args.data} --split {args.split}: no object to predict ({_why_empty(encoded)})")
    proba = predict_proba(loaded.model, encoded, correction=loaded.prior_correction)
    table = pd.DataFrame(proba, columns=loaded.classes)
    table.insert(0, "object_id", encoded.object_ids)
    table["predicted_class"] = [loaded.classes[i] for i in proba.argmax(axis=1)]
    write_file(args.out, lambda f: table.to_parquet(f, index=False), "wb")
    print(f"wrote {len(table)} predictions to {args.out}")
    return 0


def _why_empty(encoded) -> str:
    unknown = int((encoded.labels < 0).sum())
    reasons = [f"{unknown} of a class the model lacks"] if unknown else []
    reasons += [f"{n} left out: {reason}" for reason, n in encoded.dropped.items()]
    return "; ".join(reasons) or "the split has no objects"
