"""Settings: dotted overrides, unknown keys, type casts; the band table and taxonomy as single sources."""

from __future__ import annotations

import pytest

from tl.config import Config
from tl.errors import TLError
from tl.surveys import BANDS, SURVEYS, get_band, survey_bands
from tl.taxonomy import CLASSES, RAW_LABEL_MAPS, canonical_label


def test_override_round_trips_through_flat():
    config = Config().override({"train.lr": "3e-4", "transfer.freeze_depth": 2.0})
    assert config.train.lr == 3e-4 and config.transfer.freeze_depth == 2
    assert Config.from_flat(config.flat()) == config
    assert Config().train.lr == 1e-3  # the default object is untouched (frozen dataclasses)


def test_unknown_key_and_bad_values_raise():
    with pytest.raises(TLError, match="unknown setting 'train.learning_rate'"):
        Config().override({"train.learning_rate": 1e-3})
    with pytest.raises(TLError, match="'train.epochs': 2.5 is not an integer"):
        Config().override({"train.epochs": 2.5})
    with pytest.raises(TLError, match="cannot use 'fast' as float"):
        Config().override({"train.lr": "fast"})


def test_band_table_is_ordered_by_wavelength_within_each_survey():
    assert SURVEYS == ("ztf", "lsst", "des", "ps1", "sdss")
    for survey in SURVEYS:
        wavelengths = [band.wavelength_nm for band in survey_bands(survey)]
        assert wavelengths == sorted(wavelengths)
    assert len({band.name for band in BANDS}) == len(BANDS)
    with pytest.raises(TLError, match="add a row to BANDS in tl/surveys.py"):
        get_band("ztf_z")


def test_every_raw_label_maps_into_the_taxonomy():
    for source, mapping in RAW_LABEL_MAPS.items():
        assert set(mapping.values()) <= set(CLASSES), source
    assert canonical_label("bts", "SN Ia-91T") == "SN Ia"
    assert canonical_label("bts", "SN Ic-BL") == "SN Ibc"
    assert canonical_label("bts", "SLSN-II") == "SLSN"
    assert canonical_label("bts", "nova") is None
    assert [canonical_label("plasticc", code) for code in ("90", "42", "62", "95", "15", "64", "88")] == [
        "SN Ia", "SN II", "SN Ibc", "SLSN", "TDE", "KN", "AGN"]
