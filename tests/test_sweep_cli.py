"""The sweep scripts' shared flags (tl.sweep.cli): parsed into a SweepSpec, bad values a one-line
error. No Ray and no simulation (both data sets are given)."""

import pytest

from tl.errors import TLError
from tl.sweep.cli import build_parser, spec_from_args
from tl.sweep.cli import main as sweep_main
from tl.sweep.spec import Simulation

SIMULATION = Simulation(survey="ztf", n=10, seed=0)
DATA = ["--source-data", "source", "--target-data", "target"]


def spec(*flags):
    args = build_parser("test").parse_args([*DATA, *flags])
    return spec_from_args(args, "test", SIMULATION, SIMULATION)


def test_both_modes_by_default_and_one_on_request():
    assert spec().modes == ("transfer", "scratch")
    assert spec("--modes", "transfer").modes == ("transfer",)
    assert spec("--modes", "scratch, transfer").modes == ("scratch", "transfer")


def test_fractions_and_settings_reach_the_spec(tmp_path):
    made = spec("--fractions", "0.02,1", "--epochs", "7", "--set", "train.patience=3", "--out", str(tmp_path))
    assert made.fractions == (0.02, 1.0) and made.out == str(tmp_path)
    assert made.overrides == {"train.epochs": 7, "train.patience": "3"}


@pytest.mark.parametrize("flags, message", [
    (["--modes", "transfer,finetune"], "--modes 'transfer,finetune'"),
    (["--modes", ""], "--modes ''"),
    (["--fractions", "0.1,half"], "--fractions '0.1,half'"),
    (["--fractions", ""], "--fractions ''"),
    (["--fractions", "0.1,0.1"], "--fractions: 0.1,0.1 repeats"),
    (["--fractions", "0,1"], "--fractions: 0.0 is not in (0, 1]"),
    (["--num-samples", "0"], "--num-samples must be >= 1"),
    (["--num-samples", "-1"], "--num-samples must be >= 1"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--workers-per-trial", "0"], "--workers-per-trial must be >= 1"),
    (["--max-failures", "-1"], "--max-failures must be >= 0"),
    (["--time-budget", "-5"], "--time-budget must be > 0"),
    (["--set", "train.lr"], "--set 'train.lr': give KEY=VALUE"),
    (["--set", "train.no_such=1"], "--set: unknown setting 'train.no_such'"),
    (["--set", "train.early_stopping_metric=no_such_metric"], "--set: setting 'train.early_stopping_metric'"),
    (["--epochs", "0"], "--set: setting 'train.epochs'"),
    (["--folds", "1"], "--folds must be 0 (the target's own split) or >= 2, got 1"),
    (["--executor", "tune", "--workers-per-trial", "2"], "--executor tune runs 1 worker per trial"),
])
def test_bad_flags_are_one_line_errors_before_any_work(flags, message, capsys, tmp_path, monkeypatch):
    """Checked before the data are simulated, MLflow is opened or Ray starts (each would fail here)."""
    import tl.sweep.driver

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the flags were checked")

    for name in ("start_ray", "materialise", "load_datasets"):
        monkeypatch.setattr(tl.sweep.driver, name, no_work)
    monkeypatch.setattr(tl.sweep.driver.tracking, "check_tracking_uri", no_work)
    out = tmp_path / "out"
    status = sweep_main([*DATA, "--out", str(out), *flags], "test", "test", SIMULATION, SIMULATION)
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1, error
    assert error.startswith(f"test: error: {message}"), error
    assert not out.exists()


def test_flags_are_not_abbreviated():
    with pytest.raises(SystemExit):
        build_parser("test").parse_args([*DATA, "--fraction", "0.5"])


def test_main_prints_the_error_and_exits_2(capsys):
    status = sweep_main([*DATA, "--modes", "both"], "test", "test", SIMULATION, SIMULATION)
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and error.startswith("test: error: --modes 'both'")


def test_parsing_simulates_nothing_and_names_the_default_simulations(tmp_path):
    args = build_parser("test").parse_args(["--smoke-test", "--out", str(tmp_path / "out")])
    made = spec_from_args(args, "test", SIMULATION, SIMULATION)
    assert made.source_simulation == Simulation(survey="ztf", n=400, seed=0)  # the smoke size
    assert made.source_data == str(tmp_path / "out" / "data" / "source") and not (tmp_path / "out").exists()


def test_demo_and_smoke_presets_are_named_and_exclusive(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = build_parser("test").parse_args(["--demo"])
    demo = spec_from_args(args, "ztf_to_lsst", SIMULATION, SIMULATION, "a description")
    assert demo.out == str(tmp_path / "sweeps_out" / "ztf_to_lsst-demo") and demo.fractions == (0.05, 1.0)
    assert (demo.source_simulation.n, demo.target_simulation.n, demo.num_samples) == (2000, 1000, 2)
    assert demo.base_overrides == {"train.epochs": 12, "train.patience": 12} and demo.overrides["train.epochs"] == 10
    assert demo.description == "a description" and not demo.verbose
    smoke = spec("--smoke-test", "--verbose")
    assert smoke.fractions == (0.25, 1.0) and smoke.base_overrides == {} and smoke.verbose
    with pytest.raises(SystemExit) as stopped:
        build_parser("test").parse_args(["--demo", "--smoke-test"])
    assert stopped.value.code == 2 and "not allowed with" in capsys.readouterr().err
