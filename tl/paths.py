"""Output paths checked before any work, so a command that cannot write its result fails at once.

    check_output(args.out, "--out", directory=True, inputs={"--data": args.data},
                 marker="model.json", kind="tl MODEL_DIR")

An output must be writable where it is (not a file where a directory is needed or the reverse,
not under a file, its nearest existing parent writable), must not replace a directory that is
not ours (`marker` absent and not empty), and must neither be, contain, nor lie inside an input:
`tl transfer --base M --out M` would otherwise replace the model it reads. tl/atomic.py still
checks again when it moves the finished output into place.
"""

from __future__ import annotations

import os

from tl.errors import TLError


def check_output(path: str, flag: str, *, directory: bool, inputs: dict[str, str | None] | None = None,
                 marker: str | None = None, kind: str = "") -> None:
    """Raise TLError (naming `flag` and the path) unless `path` can be written as planned.

    `directory`: the output is a directory (else a file). `inputs`: {flag: path} the command
    reads. `marker`: a file an existing output directory of this kind holds (it may be replaced).
    """
    if "://" not in path:  # remote outputs (s3://, gs://) are checked by the filesystem when written
        _check_writable(path, flag, directory, marker, kind)
    for input_flag, input_path in (inputs or {}).items():
        if input_path is not None:
            _check_apart(path, flag, input_path, input_flag)


def _check_writable(path: str, flag: str, directory: bool, marker: str | None, kind: str) -> None:
    target = os.path.abspath(path)
    if os.path.isdir(target):
        if not directory:
            raise TLError(f"{flag} {path}: is a directory; a file name is needed")
        if marker and os.listdir(target) and not os.path.exists(os.path.join(target, marker)):
            raise TLError(f"{flag} {path}: exists and is not a {kind}; refusing to replace it")
    elif os.path.lexists(target):
        if directory:
            raise TLError(f"{flag} {path}: is a file; a directory is needed")
        if not os.path.isfile(target):
            raise TLError(f"{flag} {path}: exists and is not a regular file")
    parent = os.path.dirname(target)
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise TLError(f"{flag} {path}: lies under {parent}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise TLError(f"{flag} {path}: cannot be created, {parent} is not writable")


def _check_apart(path: str, flag: str, input_path: str, input_flag: str) -> None:
    """Raise TLError if output `path` is, contains, or lies inside `input_path`."""
    if ("://" in path) != ("://" in input_path):
        return  # one local, one remote: they cannot overlap
    if "://" in path:
        out, source, separator = path.rstrip("/"), input_path.rstrip("/"), "/"
    else:
        out, source, separator = os.path.realpath(path), os.path.realpath(input_path), os.sep
    if out == source:
        relation = "is"
    elif source.startswith(out.rstrip(separator) + separator):
        relation = "contains"
    elif out.startswith(source.rstrip(separator) + separator):
        relation = "lies inside"
    else:
        return
    raise TLError(f"{flag} {path}: {relation} the input {input_flag} {input_path}; choose another output")
