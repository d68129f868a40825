"""Bad input to every `tl` command (but `tl report`) is refused before any work: exit status 2, one
line on stderr naming the flag, file, row or column, no traceback, and nothing written or changed.
Also the range rules of every setting (tl/config.py) and the output-path checks (tl/paths.py)."""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tl.cli
from tl.config import MAX_SEED, RULES, Config, SettingError, TrainConfig
from tl.data import write_dataset
from tl.errors import TLError
from tl.paths import check_output
from toy import make_toy_dataset

REPO = Path(__file__).resolve().parents[1]

TINY = ["--set", "model.gru_hidden=8", "--set", "model.metadata_hidden=4", "--set", "model.dense_hidden=8",
        "--set", "model.dense_second=8", "--set", "train.batch_size=16", "--epochs", "1", "--quiet"]


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _corrupt(dataset_dir, table: str, column: str, row: int, value) -> None:
    frame = pd.read_parquet(dataset_dir / table)
    frame.loc[row, column] = value
    frame.to_parquet(dataset_dir / table, index=False)


def _plasticc(folder, corrupt: bool = False):
    folder.mkdir()
    (folder / "plasticc_train_metadata.csv").write_text(
        "object_id,hostgal_specz,hostgal_photoz,mwebv,true_target\n713,0.0,1.6,0.007,88\n")
    rng = np.random.default_rng(0)
    rows = "".join(f"713,{59750 + 0.37 * i:.3f},{i % 6},{rng.normal(0, 50):.3f},{rng.uniform(1, 5):.3f},0\n"
                   for i in range(400))
    packed = gzip.compress(("object_id,mjd,passband,flux,flux_err,detected_bool\n" + rows).encode(), mtime=0)
    if corrupt:  # a damaged deflate stream (zlib.error), not just a bad header
        packed = packed[:100] + b"\xff" * 64 + packed[164:]
    (folder / "plasticc_train_lightcurves.csv.gz").write_bytes(packed)
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Inputs shared by the cases (never written by them): data sets, one tiny model, a file."""
    root = tmp_path_factory.mktemp("bad_input")
    write_dataset(make_toy_dataset(6, classes=("SN Ia", "SN II")), str(root / "data"), name="base")
    write_dataset(make_toy_dataset(4, seed=1, classes=("SLSN",)), str(root / "slsn"), name="slsn")
    write_dataset(make_toy_dataset(1, classes=("SN Ia", "SN II")), str(root / "single"), name="single")  # no test split
    for name, table, column, row, value in (
            ("inf_redshift", "objects.parquet", "redshift", 3, np.inf),
            ("inf_mwebv", "objects.parquet", "mwebv", 2, -np.inf),
            ("nan_flux", "observations.parquet", "flux", 5, np.nan),
            ("zero_error", "observations.parquet", "flux_err", 7, 0.0)):
        write_dataset(make_toy_dataset(6, classes=("SN Ia", "SN II")), str(root / name), name=name)
        _corrupt(root / name, table, column, row, value)
    _plasticc(root / "plasticc")
    _plasticc(root / "plasticc_corrupt", corrupt=True)
    (root / "afile").write_text("not a directory\n")
    torch.set_num_threads(1)
    assert tl.cli.main(["train", "--data", str(root / "data"), "--out", str(root / "model"), *TINY]) == 0
    return root


def _snapshot(root) -> dict:
    """Every path under `root` with its size and modification time."""
    found = {}
    for directory, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(directory, name)
            stat = os.stat(path)
            found[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return found


def _exit_status(argv) -> int:
    try:
        return tl.cli.main(argv)
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


W, T = "{w}", "{t}"  # the shared workspace; this case's own (empty) temporary directory
TRAIN = ["train", "--data", f"{W}/data", "--out", f"{T}/out"]
TRANSFER = ["transfer", "--base", f"{W}/model", "--data", f"{W}/data", "--fraction", "1", "--freeze-depth", "0",
            "--out", f"{T}/out"]
EVALUATE = ["evaluate", "--model", f"{W}/model", "--data", f"{W}/data"]
PREDICT = ["predict", "--model", f"{W}/model", "--data", f"{W}/data"]
SIMULATE = ["simulate", "--survey", "ztf", "--n", "5"]
INGEST = ["ingest", "plasticc", "--src", f"{W}/plasticc"]

CASES = [  # (argv, texts the one line must contain)
    # settings, range-checked once in tl/config.py; a named option is named as given
    (TRAIN + ["--epochs", "0"], ["--epochs: must be >= 1, got 0"]),
    (TRAIN + ["--lr", "-1"], ["--lr: must be > 0, got -1.0"]),
    (TRAIN + ["--lr", "nan"], ["--lr: must be a finite number, got nan"]),
    (TRAIN + ["--seed", "-1"], ["--seed: must be in [0, 4294967295], got -1"]),
    (TRAIN + ["--fraction", "0"], ["--fraction: must be in (0, 1], got 0.0"]),
    (TRAIN + ["--set", "train.batch_size=0"], ["setting 'train.batch_size': must be >= 1, got 0"]),
    (TRAIN + ["--set", "model.dropout=2"], ["setting 'model.dropout': must be in [0, 1), got 2.0"]),
    (TRAIN + ["--set", "model.gru_layers=0"], ["setting 'model.gru_layers': must be >= 1, got 0"]),
    (TRAIN + ["--set", "train.weight_decay=-inf"], ["'train.weight_decay': must be a finite number"]),
    (TRAIN + ["--set", "train.early_stopping_metric=val_accuracy"], ["'train.early_stopping_metric': must be one of"]),
    (TRAIN + ["--set", "train.nope=1"], ["unknown setting 'train.nope'"]),
    (TRAIN + ["--set", "train.lr"], ["--set 'train.lr': expected KEY=VALUE"]),
    (TRAIN + ["--threads", "0"], ["--threads must be >= 1"]),
    (TRAIN + ["--fract", "0.5"], ["unrecognized arguments: --fract"]),  # no abbreviations
    (TRANSFER[:-2] + ["--out", f"{W}/model"], ["--out", "is the input --base"]),
    (TRANSFER + ["--freeze-depth", "-1"], ["--freeze-depth: must be >= 0, got -1"]),
    (TRANSFER + ["--set", "transfer.pretrained_lr_scale=0"], ["'transfer.pretrained_lr_scale': must be > 0"]),
    (TRANSFER[:-6] + ["--fraction", "1.5", "--freeze-depth", "0", "--out", f"{T}/out"], ["--fraction: must be in (0, 1]"]),
    # output paths, checked before any work
    (TRAIN[:-1] + [f"{W}/afile/model"], ["--out", "lies under", "afile, which is a file"]),
    (TRAIN[:-1] + [f"{W}/afile"], ["--out", "afile: is a file; a directory is needed"]),
    (TRAIN[:-1] + [f"{W}/data/model"], ["--out", "lies inside the input --data"]),
    (TRAIN[:-1] + [f"{W}/slsn"], ["slsn: exists and is not a tl MODEL_DIR"]),
    (EVALUATE + ["--json", T], ["--json", "is a directory; a file name is needed"]),
    (EVALUATE + ["--json", f"{W}/afile/metrics.json"], ["--json", "lies under", "afile, which is a file"]),
    (EVALUATE + ["--json", f"{W}/model/metrics.json"], ["--json", "lies inside the input --model"]),
    (PREDICT + ["--out", f"{W}/afile/p.parquet"], ["--out", "lies under", "afile, which is a file"]),
    (PREDICT + ["--out", T], ["--out", "is a directory; a file name is needed"]),
    (PREDICT + ["--out", f"{W}/data/p.parquet"], ["--out", "lies inside the input --data"]),
    (SIMULATE + ["--out", f"{W}/afile/sim"], ["--out", "lies under", "afile, which is a file"]),
    (SIMULATE + ["--out", f"{W}/model"], ["model: exists and is not a tl data set"]),
    (INGEST + ["--out", f"{W}/plasticc/out"], ["--out", "lies inside the input --src"]),
    (INGEST + ["--out", f"{W}/afile"], ["--out", "afile: is a file; a directory is needed"]),
    # data: every numeric column of the contract, named by file, row and column
    (TRAIN[:2] + [f"{W}/inf_redshift"] + TRAIN[3:], ["inf_redshift/objects.parquet: column 'redshift' row 3: infinite"]),
    (EVALUATE[:4] + [f"{W}/inf_mwebv"], ["inf_mwebv/objects.parquet: column 'mwebv' row 2: infinite"]),
    (PREDICT[:4] + [f"{W}/nan_flux", "--out", f"{T}/p.parquet"],
     ["nan_flux/observations.parquet: column 'flux' row 5: not finite"]),
    (EVALUATE[:4] + [f"{W}/zero_error"], ["zero_error/observations.parquet: column 'flux_err' row 7: must be > 0"]),
    (EVALUATE[:4] + ["nosuch://bucket/data"], ["nosuch://bucket/data: cannot open"]),
    (["ingest", "plasticc", "--src", f"{W}/plasticc_corrupt", "--out", f"{T}/out"],
     ["plasticc_train_lightcurves.csv.gz: unreadable CSV"]),
    (["ingest", "bts", "--src", f"{W}/absent", "--out", f"{T}/out"], ["--src", "absent: no such file or directory"]),
    # other options
    (INGEST + ["--out", f"{T}/out", "--seed", "-1"], ["--seed must be in [0, 4294967295], got -1"]),
    (SIMULATE + ["--out", f"{T}/out", "--seed", "-1"], ["--seed must be in [0, 4294967295], got -1"]),
    (SIMULATE[:4] + ["0", "--out", f"{T}/out"], ["--n must be >= 1, got 0"]),
    (SIMULATE + ["--workers", "0", "--out", f"{T}/out"], ["--workers must be >= 1, got 0"]),
    (SIMULATE + ["--upper-limits", "--out", f"{T}/out"], ["--upper-limits applies to an alert stream: add --alerts-only"]),
    (SIMULATE + ["--cadence-from", f"{W}/absent", "--out", f"{T}/out"], ["--cadence-from", "absent: not a tl data set"]),
    (["simulate", "--survey", "lsst", "--n", "5", "--cadence-from", f"{W}/data", "--out", f"{T}/out"],
     ["--cadence-from", "no detection in the bands lsst_u"]),
    (SIMULATE + ["--match-real", f"{W}/absent", "--out", f"{T}/out"], ["--match-real", "absent: not a tl data set"]),
    (SIMULATE + ["--match-real", f"{W}/data", "--out", f"{T}/out"],
     ["--match-real", "no simulated class has >= 20 train objects with a ZTF g/r detection there"]),
    (["simulate", "--survey", "lsst", "--n", "5", "--match-real", f"{W}/data", "--out", f"{T}/out"],
     ["--match-real compares ZTF g/r light curves: use --survey ztf"]),
    (SIMULATE + ["--vary-depth", "-0.1", "--out", f"{T}/out"], ["--vary-depth must be in [0, 2.0] mag, got -0.1"]),
    (SIMULATE + ["--vary-cadence", "1", "--out", f"{T}/out"], ["--vary-cadence must be in [0, 0.9], got 1.0"]),
    (["simulate", "--survey", "hst", "--n", "5", "--out", f"{T}/out"], ["'hst'"]),
    (EVALUATE + ["--days", "-1"], ["--days must be >= 0, got -1.0"]),
    (EVALUATE + ["--split", "bogus"], ["argument --split: invalid choice: 'bogus'"]),
    # empty results are errors, not a NaN score or a 0-row file
    (EVALUATE[:4] + [f"{W}/slsn", "--json", f"{T}/m.json"], ["--data", "slsn --split test: no object to score",
                                                            "of a class the model lacks"]),
    (PREDICT[:4] + [f"{W}/single", "--split", "test", "--out", f"{T}/p.parquet"],
     ["--data", "single --split test: no object to predict"]),
    # predict's model references, raw inputs and output formats; evaluate --plot/--bins; calibrate
    (PREDICT + ["--out", f"{T}/p.txt"], ["--out", "p.txt: name a .parquet or .csv file"]),
    (PREDICT[:3] + ["--out", f"{T}/p.csv"], ["give either --data DIR or --format FORMAT --src PATH"]),
    (PREDICT + ["--format", "bts", "--src", f"{W}/plasticc", "--out", f"{T}/p.csv"],
     ["give either --data DIR or --format FORMAT --src PATH"]),
    (PREDICT[:3] + ["--format", "plasticc", "--out", f"{T}/p.csv"], ["--format plasticc: --src PATH is needed"]),
    (PREDICT[:3] + ["--format", "plasticc", "--src", f"{W}/absent", "--out", f"{T}/p.csv"],
     ["--src", "absent: no such file or directory"]),
    (PREDICT[:3] + ["--format", "nope", "--src", f"{W}/plasticc", "--out", f"{T}/p.csv"],
     ["argument --format: invalid choice: 'nope'"]),
    (PREDICT[:3] + ["--format", "plasticc", "--src", f"{W}/plasticc", "--out", f"{W}/plasticc/p.csv"],
     ["--out", "lies inside the input --src"]),
    (PREDICT + ["--tracking-uri", "sqlite:///x.db", "--out", f"{T}/p.csv"], ["--tracking-uri: only with a models:/"]),
    (["predict", "--model", "models:/nothing", "--tracking-uri", f"sqlite:///{T}/mlflow.db", "--data", f"{W}/data",
      "--out", f"{T}/p.csv"], ["--model models:/nothing: expected models:/<name>@<alias>"]),
    (["predict", "--model", "models:/m@champion", "--tracking-uri", f"sqlite:///{T}/mlflow.db", "--data",
      f"{W}/data", "--out", f"{T}/p.csv"], ["--tracking-uri", "no such sqlite database"]),
    (EVALUATE + ["--plot", f"{W}/afile"], ["--plot", "afile: is a file; a directory is needed"]),
    (EVALUATE + ["--bins", "0"], ["--bins must be >= 1, got 0"]),
    (["calibrate", "--model", f"{W}/slsn", "--data", f"{W}/data"], ["slsn: exists and is not a tl MODEL_DIR"]),
    (["calibrate", "--model", f"{W}/model", "--data", f"{W}/slsn"], ["--data", "slsn --split val: no object to fit on"]),
]


@pytest.mark.parametrize("argv, expected", CASES, ids=[f"{n:02d}-{c[0][0]}" for n, c in enumerate(CASES)])
def test_bad_input_is_refused_before_any_work(workspace, tmp_path, capsys, argv, expected):
    argv = [arg.replace(W, str(workspace)).replace(T, str(tmp_path)) for arg in argv]
    before = _snapshot(workspace)
    code = _exit_status(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert lines[0].startswith(f"tl {argv[0]}: error: ") or lines[0].startswith("tl: error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert _snapshot(workspace) == before  # no input changed, no partial output beside them
    assert os.listdir(tmp_path) == []  # no output, partial or whole


def test_the_real_entry_point_prints_no_traceback(workspace):
    """`tl transfer --base X --out X` through a fresh interpreter: one line, exit 2, X untouched."""
    model = str(workspace / "model")
    before = _snapshot(workspace)
    done = subprocess.run([sys.executable, "-m", "tl.cli", "transfer", "--base", model, "--data",
                           str(workspace / "data"), "--fraction", "1", "--freeze-depth", "0", "--out", model],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == f"tl transfer: error: --out {model}: is the input --base {model}; choose another output"
    assert _snapshot(workspace) == before


def test_there_are_at_least_25_cases_over_every_command():
    assert len(CASES) >= 25
    assert {argv[0] for argv, _ in CASES} == {"simulate", "ingest", "train", "transfer", "evaluate", "predict",
                                                 "calibrate"}


# ---------------------------------------------------------------- settings (tl/config.py)

INVALID = [  # (key, value, message fragment)
    ("data.target_fraction", 0, "must be in (0, 1], got 0.0"), ("data.target_fraction", 1.01, "(0, 1]"),
    ("data.target_fraction", "nan", "finite"), ("data.seed", -1, "[0, 4294967295]"),
    ("data.seed", MAX_SEED + 1, "[0, 4294967295]"), ("data.max_length", 0, ">= 1"),
    ("model.gru_hidden", 0, ">= 1"), ("model.gru_layers", 0, ">= 1"), ("model.metadata_hidden", -3, ">= 1"),
    ("model.dense_hidden", 0, ">= 1"), ("model.dense_second", 0, ">= 1"),
    ("model.dropout", -0.1, "[0, 1)"), ("model.dropout", 1, "[0, 1)"), ("model.dropout", float("nan"), "finite"),
    ("train.lr", 0, "must be > 0, got 0.0"), ("train.lr", -1, "> 0"), ("train.lr", "inf", "finite"),
    ("train.lr", float("-inf"), "finite"), ("train.weight_decay", -1e-9, ">= 0"),
    ("train.weight_decay", "nan", "finite"), ("train.epochs", 0, ">= 1"), ("train.epochs", "inf", "as int"),
    ("train.epochs", float("nan"), "as int"), ("train.batch_size", 0, ">= 1"),
    ("train.class_weight_power", -0.5, ">= 0"), ("train.class_weight_power", "inf", "finite"),
    ("train.patience", 0, ">= 1"), ("train.early_stopping_metric", "val_accuracy", "val_macro_f1, val_loss"),
    ("train.seed", -1, "[0, 4294967295]"), ("train.seed", MAX_SEED + 1, "[0, 4294967295]"),
    ("transfer.freeze_depth", -1, ">= 0"), ("transfer.pretrained_lr_scale", 0, "> 0"),
    ("transfer.pretrained_lr_scale", "nan", "finite"),
    ("data.refit_metadata_normalizer", "maybe", "cannot use 'maybe' as bool"),
    ("data.folds", -1, "must be >= 0"),
    ("data.fold", -1, "must be >= 0"),
    ("train.max_steps", -1, ">= 0"), ("train.logit_adjustment", 2.5, "[-2, 2]"),
    ("train.logit_adjustment", "nan", "finite"), ("train.tune_logit_adjustment", 0.5, "as bool"),
    ("train.init_bias_to_prior", "2", "as bool"), ("transfer.strategy", "all", "depth, gru, head_then_all"),
    ("transfer.head_epochs", 0, ">= 1"),
]
VALID = [  # boundaries that are allowed
    ("data.target_fraction", 1), ("data.target_fraction", 1e-9), ("data.seed", 0), ("data.seed", MAX_SEED),
    ("data.max_length", 1), ("model.gru_hidden", 1), ("model.gru_layers", 1), ("model.metadata_hidden", 1),
    ("model.dense_hidden", 1), ("model.dense_second", 1), ("model.dropout", 0), ("model.dropout", 0.999),
    ("train.lr", 1e-12), ("train.weight_decay", 0), ("train.epochs", 1), ("train.batch_size", 1),
    ("train.class_weight_power", 0), ("train.patience", 1), ("train.early_stopping_metric", "val_loss"),
    ("train.early_stopping_metric", "val_macro_f1"), ("train.seed", 0), ("train.seed", MAX_SEED),
    ("transfer.freeze_depth", 0), ("transfer.pretrained_lr_scale", 1e-6),
    ("data.refit_metadata_normalizer", True), ("data.folds", 0), ("data.folds", 2), ("data.fold", 0), ("train.max_steps", 0), ("train.logit_adjustment", -2),
    ("train.logit_adjustment", 2), ("train.tune_logit_adjustment", True), ("train.init_bias_to_prior", False),
    ("train.early_stopping_metric", "val_macro_f1_common"), ("transfer.strategy", "head_then_all"),
    ("transfer.head_epochs", 1),
]


@pytest.mark.parametrize("key, value, fragment", INVALID)
def test_each_invalid_setting_raises_naming_it(key, value, fragment):
    with pytest.raises(SettingError) as raised:
        Config().override({key: value})
    assert raised.value.key == key and str(raised.value).startswith(f"setting {key!r}: ")
    assert fragment in str(raised.value), str(raised.value)


@pytest.mark.parametrize("key, value", VALID)
def test_each_boundary_value_is_allowed(key, value):
    assert Config().override({key: value}).flat()[key] == value


def test_every_setting_has_a_rule_and_every_way_of_building_a_config_is_checked():
    assert set(RULES) == set(Config().flat())
    assert {key for key, _, _ in INVALID} == set(RULES)  # each rule is exercised above
    with pytest.raises(SettingError, match="'train.lr'"):
        Config(train=TrainConfig(lr=-1.0))
    with pytest.raises(SettingError, match="'train.batch_size'"):
        Config.from_flat({**Config().flat(), "train.batch_size": 0})  # e.g. a MODEL_DIR's model.json
    assert math.isclose(Config().override({"train.lr": "3e-4"}).train.lr, 3e-4)


# ---------------------------------------------------------------- output paths (tl/paths.py)

def test_an_output_that_contains_an_input_is_refused(tmp_path):
    (tmp_path / "runs" / "data").mkdir(parents=True)
    with pytest.raises(TLError, match=r"--out .*runs: contains the input --data .*runs/data"):
        check_output(str(tmp_path / "runs"), "--out", directory=True, inputs={"--data": str(tmp_path / "runs/data")})
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "runs" / "data")
    with pytest.raises(TLError, match="is the input --data"):  # the same directory under another name
        check_output(str(tmp_path / "runs" / "data"), "--out", directory=True, inputs={"--data": str(link)})


def test_remote_outputs_are_compared_as_uris(tmp_path):
    with pytest.raises(TLError, match="lies inside the input --base s3://bucket/model"):
        check_output("s3://bucket/model/new", "--out", directory=True, inputs={"--base": "s3://bucket/model/"})
    check_output("s3://bucket/other", "--out", directory=True, inputs={"--base": "s3://bucket/model"})
    check_output(str(tmp_path / "new" / "deeper"), "--out", directory=True,
                 inputs={"--data": "s3://bucket/data", "--base": None})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_parent_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(TLError, match="locked is not writable"):
        check_output(str(locked / "a" / "model"), "--out", directory=True)
