"""Sweep: transfer a classifier trained on simulated ZTF light curves to the real ZTF Bright
Transient Survey (BTS).

    tl ingest bts --src ../shared/data/bts --out data/bts          # the real target
    python sweeps/sims_to_bts.py --target-data data/bts
    python sweeps/sims_to_bts.py --smoke-test                      # simulated BTS-like target

Without --target-data the target is a simulated BTS-like ZTF set (peak < 18.5 mag, alert
detections only), so the script runs with no download. Runs unchanged under `ray submit`.
"""

import sys

from tl.sweep import cli as sweep_cli
from tl.sweep.spec import Simulation

NAME = "sims_to_bts"  # the MLflow experiment
SOURCE = Simulation(survey="ztf", n=6000, seed=1, bts_like=True, alerts_only=True)  # as BTS alerts
TARGET = Simulation(survey="ztf", n=3000, seed=3, bts_like=True, alerts_only=True)


def main(argv=None) -> int:
    return sweep_cli.main(sys.argv[1:] if argv is None else argv, NAME, __doc__.splitlines()[0], SOURCE, TARGET)


if __name__ == "__main__":
    sys.exit(main())
