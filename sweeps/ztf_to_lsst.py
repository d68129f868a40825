"""Sweep: transfer a classifier trained on simulated ZTF light curves to simulated LSST ones.

    python sweeps/ztf_to_lsst.py --smoke-test                      # minutes on a laptop
    python sweeps/ztf_to_lsst.py --address auto --storage s3://bucket/sweeps \
        --tracking-uri http://mlflow-host:5000 --workers-per-trial 4 --gpus-per-worker 1

Default data: the built-in simulator (source: ZTF g/r/i; target: LSST ugrizy). The real
alternative target is PLAsTiCC (LSST simulations): `tl ingest plasticc --src ... --out data/plasticc`
then `--target-data data/plasticc`. Runs unchanged under `ray submit cluster.yaml sweeps/ztf_to_lsst.py`.
"""

import sys

from tl.sweep import cli as sweep_cli
from tl.sweep.spec import Simulation

NAME = "ztf_to_lsst"  # the MLflow experiment
SOURCE = Simulation(survey="ztf", n=6000, seed=1)
TARGET = Simulation(survey="lsst", n=6000, seed=2)


def main(argv=None) -> int:
    return sweep_cli.main(sys.argv[1:] if argv is None else argv, NAME, __doc__.splitlines()[0], SOURCE, TARGET)


if __name__ == "__main__":
    sys.exit(main())
