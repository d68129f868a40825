"""Storage faults: a full or unwritable disk under the sweep's output, its Tune storage or its
SQLite store, told apart from other errors so the sweep ends with one line saying what to do.

The error arrives wrapped: an OSError inside MLflow's MlflowException inside SQLAlchemy's
OperationalError, or a trial's OSError inside Tune's TuneError. `storage_fault` walks the chain
(`__cause__`, `__context__`) and reads the messages SQLite uses, which carry no errno.
"""

from __future__ import annotations

import errno
import json
import os

from tl.errors import TLError

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry later" (--resume).
EXIT_STORAGE = 75

STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
}
SQLITE_MESSAGES = {
    "database or disk is full": "no space left on the device",
    "attempt to write a readonly database": "read-only file system",
    "readonly database": "read-only file system",
    "disk i/o error": "disk I/O error",
}
TEXT_MESSAGES = {  # an OSError re-raised by Ray or Tune as text only
    "No space left on device": "no space left on the device",
    "Read-only file system": "read-only file system",
    "Disk quota exceeded": "disk quota exceeded",
}


class StorageFault(TLError):
    """The sweep stopped because its storage could not be written; --resume continues it."""


def storage_fault(error: BaseException) -> str | None:
    """What went wrong with the storage if `error` (or an error it wraps) was a storage fault,
    else None: 'no space left on the device', 'read-only file system', ..."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        reason = _reason(error)
        if reason:
            return reason
        error = error.__cause__ or error.__context__
    return None


def _reason(error: BaseException) -> str | None:
    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
        return STORAGE_ERRNOS[error.errno]
    text = str(error)
    lowered = text.lower()
    for message, reason in SQLITE_MESSAGES.items():
        if message in lowered:
            return reason
    for message, reason in TEXT_MESSAGES.items():
        if message in text:
            return reason
    return None


def _filesystem(path: str):
    """(pyarrow filesystem, base path) of a local path or a URI."""
    import pyarrow.fs as pafs

    return pafs.FileSystem.from_uri(path) if "://" in path else (pafs.LocalFileSystem(), os.path.abspath(path))


def write_probe(path: str) -> None:
    """Write and delete a 2-byte file under `path` (local or URI); raises what the filesystem raised."""
    fs, base = _filesystem(path)
    fs.create_dir(base, recursive=True)
    probe = f"{base}/.tl-write-probe"
    with fs.open_output_stream(probe) as stream:
        stream.write(b"ok")
    fs.delete_file(probe)


def probe_fault(path: str) -> str | None:
    """The storage fault a probe write under `path` meets now, or None (writable, or another error)."""
    try:
        write_probe(path)
    except Exception as error:
        return storage_fault(error)
    return None


def tune_state_intact(storage: str, name: str) -> bool:
    """Whether the Tune experiment `storage`/`name` can be restored as it was saved: every JSON
    state file is a whole JSON document or a whole pickle. Tune writes these in place, so
    a full disk leaves them truncated, and Tune then restores a part of the study without a word."""
    import pyarrow.fs as pafs

    fs, base = _filesystem(f"{storage.rstrip('/')}/{name}")
    for info in fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        if info.type != pafs.FileType.File or not info.base_name.endswith((".json", ".pkl")):
            continue
        with fs.open_input_stream(info.path) as stream:
            if not _complete(stream.read()):
                return False
    return True


def _complete(content: bytes) -> bool:
    """A whole pickle (protocol >= 2: PROTO first, STOP last) or a whole JSON document. Tune names
    some pickles .json (search_gen_state, basic-variant-state)."""
    if content.startswith(b"\x80"):
        return content.endswith(b".")
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def fault_message(reason: str, places: list[str]) -> str:
    """The one line a sweep stopped by a storage fault prints."""
    return (f"storage: {reason} under {' or '.join(dict.fromkeys(places))}; the sweep stopped there. "
            "Free space (or make it writable), then rerun the same command with --resume")
