"""The `tl` command. Each subcommand lives in its own module, imported only when it runs.

A module named in COMMANDS provides `add_arguments(parser)` and `run(args) -> int`.
Bad input, whether argparse's or a TLError, is one line on stderr and exit status 2; options must
be spelled out (no abbreviations: `--fraction` is never read as `--fractions`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tl import __version__
from tl.errors import TLError

COMMANDS = {
    "simulate": ("tl.simulate", "simulate a survey's light curves into a canonical data set"),
    "ingest": ("tl.ingest.cli", "convert a raw survey format into a canonical data set"),
    "export": ("tl.snana_export", "write a canonical data set in SNANA text or FITS form"),
    "train": ("tl.commands", "train a classifier from scratch"),
    "transfer": ("tl.commands", "fine-tune a base model on a fraction of a target data set"),
    "evaluate": ("tl.commands", "compute metrics of a model on a data set split"),
    "predict": ("tl.commands", "write per-object class probabilities (Parquet or CSV) from a MODEL_DIR or registry"),
    "calibrate": ("tl.commands", "fit a MODEL_DIR's softmax temperature on a validation split"),
    "report": ("tl.sweep.report", "summarise a sweep's MLflow experiment: figure, tables, summary.json"),
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like TLError's."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported (fast start-up)."""
    parser = Parser(prog="tl", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"tl {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        if only not in (None, name):
            continue
        module = importlib.import_module(module_name)
        adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        adder(sub)
        sub.set_defaults(module=module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only=command).parse_args(argv)
    module = importlib.import_module(args.module)
    runner = getattr(module, f"run_{args.command}", None) or module.run
    try:
        return int(runner(args) or 0)
    except TLError as error:
        print(f"tl {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
