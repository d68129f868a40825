"""Fault injection for the tests only: `$TL_FAULT=<point>:<key>` SIGKILLs the sweep driver there.

Points: `after-study:<study key>` (its trials done, before its importances and champion),
`after-register:<study key>` (champion registered, before the state says the study is done),
`report:` (report written and logged, before the sweep run is closed). Unset, nothing happens.
"""

from __future__ import annotations

import os
import signal

FAULT = "TL_FAULT"


def fault_point(point: str, key: str = "") -> None:
    """SIGKILL this process when $TL_FAULT names this point and key (a test's worst moment)."""
    if os.environ.get(FAULT) == f"{point}:{key}":
        os.kill(os.getpid(), signal.SIGKILL)
