"""A tmpfs mounted for one test (root ignores permission bits, so a full or read-only storage is a
mount; needs root, as on the CI machine: the test is skipped where mount fails)."""

import contextlib
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, options: str):
    """Mount a tmpfs with `options` (e.g. "size=64m", "ro,size=1m") at `mount`, unmount after."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
