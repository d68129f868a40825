"""The sweep scripts' shared flags (tl.sweep_cli): parsed into a SweepSpec, bad values a one-line
error. No Ray and no simulation (both data sets are given)."""

import pytest

from tl.errors import TLError
from tl.sweep_cli import build_parser, spec_from_args
from tl.sweep_cli import main as sweep_main
from tl.sweep_cli import Simulation

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
])
def test_bad_flags_are_one_line_errors(flags, message):
    with pytest.raises(TLError, match=message.replace("(", r"\(")):
        spec(*flags)


def test_main_prints_the_error_and_exits_2(capsys):
    status = sweep_main([*DATA, "--modes", "both"], "test", "test", SIMULATION, SIMULATION)
    error = capsys.readouterr().err
    assert status == 2 and error.count("\n") == 1 and error.startswith("test: error: --modes 'both'")
