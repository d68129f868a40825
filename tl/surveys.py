"""The band table: the single source of truth for passbands.

Every band a data set may contain is one row here. The model reads a band through its effective
wavelength, so one network reads ZTF and LSST light curves alike; adding a survey is adding rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from tl.errors import TLError


@dataclass(frozen=True)
class Band:
    name: str
    survey: str
    wavelength_nm: float  # effective (pivot) wavelength of the filter


# ZTF: Bellm et al. 2019 (PASP 131, 018002) filter curves, SVO pivot wavelengths.
# LSST: LSST Science Book / SVO LSST baseline filter effective wavelengths.
BANDS: tuple[Band, ...] = (
    Band("ztf_g", "ztf", 472.3),
    Band("ztf_r", "ztf", 633.9),
    Band("ztf_i", "ztf", 788.6),
    Band("lsst_u", "lsst", 367.1),
    Band("lsst_g", "lsst", 482.7),
    Band("lsst_r", "lsst", 622.3),
    Band("lsst_i", "lsst", 754.6),
    Band("lsst_z", "lsst", 869.1),
    Band("lsst_y", "lsst", 971.2),
)

BAND_BY_NAME: dict[str, Band] = {band.name: band for band in BANDS}
SURVEYS: tuple[str, ...] = tuple(dict.fromkeys(band.survey for band in BANDS))


def get_band(name: str) -> Band:
    """The band called `name`; an unknown band says where to add it."""
    try:
        return BAND_BY_NAME[name]
    except KeyError:
        raise TLError(
            f"unknown band {name!r}: known bands are {', '.join(BAND_BY_NAME)} "
            "(add a row to BANDS in tl/surveys.py)"
        ) from None


def survey_bands(survey: str) -> tuple[Band, ...]:
    """The bands of one survey, in table order."""
    bands = tuple(band for band in BANDS if band.survey == survey)
    if not bands:
        raise TLError(f"unknown survey {survey!r}: known surveys are {', '.join(SURVEYS)}")
    return bands


def band_table() -> list[dict]:
    """The band table as plain records (saved with every model)."""
    return [{"name": b.name, "survey": b.survey, "wavelength_nm": b.wavelength_nm} for b in BANDS]
