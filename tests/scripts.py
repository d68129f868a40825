"""The repository's scripts (sweeps/, benchmarks/), which are not a package, imported as modules."""

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(path: str):
    """The script at `path` under the repository root, e.g. "sweeps/check_defaults.py"."""
    full = REPO / path
    spec = importlib.util.spec_from_file_location(full.stem, full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
