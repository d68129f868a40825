"""Outputs that appear whole or not at all: a failed write never leaves a partial file or directory.

Commands check their output paths before any work (tl/paths.py); the errors raised here are the
last line of defence (a path that changed meanwhile), still one line and no partial output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager

from tl.errors import TLError


@contextmanager
def staged_directory(path: str, marker: str, kind: str):
    """Yield a staging directory beside `path`; when the block succeeds it replaces `path` whole.

    An existing `path` is replaced only if it holds `marker` (it is a `kind` we wrote) or is empty.
    """
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".tl-partial-", dir=parent)
    except OSError as error:
        raise TLError(f"{path}: cannot write here ({error.strerror or error})") from None
    try:
        yield staging
        if os.path.exists(path):
            if not os.path.exists(os.path.join(path, marker)) and os.listdir(path):
                raise TLError(f"{path}: exists and is not a {kind}; refusing to replace it")
            shutil.rmtree(path)
        os.rename(staging, path)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)


def write_file(path: str, write, mode: str) -> None:
    """Call write(handle) on a hidden sibling of `path`, then move it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    partial = os.path.join(directory, f".{os.path.basename(path)}.partial")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(partial, mode) as handle:
            write(handle)
        os.replace(partial, path)
    except OSError as error:
        raise TLError(f"{path}: cannot write here ({error.strerror or error})") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
