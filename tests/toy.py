"""A tiny synthetic canonical data set for unit tests that must not depend on the simulator.

Each class has its own rise/decline time scale and colour, so a classifier can learn it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tl.data import Dataset, assign_splits
from tl.surveys import survey_bands

TOY_SHAPES = {  # class: (rise days, decline days, g-minus-r flux ratio)
    "SN Ia": (15.0, 30.0, 1.3),
    "SN II": (8.0, 90.0, 0.8),
    "SLSN": (40.0, 120.0, 1.6),
}


def make_toy_dataset(n_per_class: int = 30, seed: int = 0, survey: str = "ztf",
                     classes=tuple(TOY_SHAPES)) -> Dataset:
    rng = np.random.default_rng(seed)
    bands = survey_bands(survey)[:2]
    objects, observations = [], []
    for label in classes:
        rise, decline, colour = TOY_SHAPES[label]
        for k in range(n_per_class):
            object_id = f"{label.replace(' ', '')}-{k:04d}"
            redshift = float(rng.uniform(0.02, 0.1))
            objects.append((object_id, label, label, redshift, float(rng.uniform(0, 0.1)), survey))
            times = np.sort(rng.uniform(-30, 120, size=rng.integers(12, 40)))
            for t in times:
                band = bands[int(rng.integers(len(bands)))]
                shape = np.exp(-t / decline) if t > 0 else np.exp(-((t / rise) ** 2))
                amplitude = 500.0 * (colour if band is bands[0] else 1.0)
                err = 20.0
                flux = amplitude * shape + rng.normal(0, err)
                observations.append((object_id, 59000.0 + t, band.name, flux, err, flux / err > 5))
    objects = pd.DataFrame(objects, columns=["object_id", "label", "raw_label", "redshift", "mwebv", "survey"])
    objects["split"] = assign_splits(objects, seed=seed)
    observations = pd.DataFrame(observations, columns=["object_id", "mjd", "band", "flux", "flux_err", "detected"])
    return Dataset(objects, observations, {"name": "toy", "survey": survey, "source": "toy"})
