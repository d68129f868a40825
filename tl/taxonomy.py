"""The canonical classes and, per source, the map from raw labels to them.

Raw labels with no entry are dropped by the ingesters, counted, and reported, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

CLASSES: tuple[str, ...] = ("SN Ia", "SN II", "SN Ibc", "SLSN", "TDE", "AGN", "KN")

# BTS types (Perley et al. 2020 naming). Novae, LBVs, ILRTs, LRNs and "other" are not in the taxonomy.
_BTS = {
    "SN Ia": "SN Ia", "SN Ia-91T": "SN Ia", "SN Ia-91bg": "SN Ia", "SN Ia-pec": "SN Ia",
    "SN Iax": "SN Ia", "SN Ia-CSM": "SN Ia", "SN Ia-SC": "SN Ia", "SN Ia-03fg": "SN Ia",
    "SN II": "SN II", "SN IIP": "SN II", "SN IIL": "SN II", "SN IIn": "SN II", "SN IIb": "SN II",
    "SN II-pec": "SN II",
    "SN Ib": "SN Ibc", "SN Ic": "SN Ibc", "SN Ib/c": "SN Ibc", "SN Ic-BL": "SN Ibc",
    "SN Ibn": "SN Ibc", "SN Icn": "SN Ibc", "SN Ib-pec": "SN Ibc", "SN Ic-pec": "SN Ibc",
    "SLSN-I": "SLSN", "SLSN-II": "SLSN", "SLSN-R": "SLSN",
    "TDE": "TDE",
    "AGN": "AGN",
}

# PLAsTiCC true_target codes (Kessler et al. 2019). Galactic and rare classes are not mapped.
_PLASTICC = {
    "90": "SN Ia", "67": "SN Ia", "52": "SN Ia",
    "42": "SN II",
    "62": "SN Ibc",
    "95": "SLSN",
    "15": "TDE",
    "64": "KN",
    "88": "AGN",
}

# ALeRCE light-curve classifier labels (Sanchez-Saez et al. 2021).
_ALERCE = {"SNIa": "SN Ia", "SNII": "SN II", "SNIbc": "SN Ibc", "SLSN": "SLSN", "TDE": "TDE",
           "AGN": "AGN"}

# SNANA type codes of the Supernova Photometric Classification Challenge (SNPhotCC; Kessler et al.
# 2010, PASP 122, 1415): SNTYPE 1 Ia; 2 II, 21 IIn, 22 IIP, 23 IIL; 3 Ibc, 32 Ib, 33 Ic. The type
# names of its SIM_COMMENT lines ("SN Type = IIP , MODEL = ...") map alike.
_SNPHOTCC = {
    "1": "SN Ia", "2": "SN II", "21": "SN II", "22": "SN II", "23": "SN II",
    "3": "SN Ibc", "32": "SN Ibc", "33": "SN Ibc",
    "Ia": "SN Ia", "II": "SN II", "IIn": "SN II", "IIP": "SN II", "IIL": "SN II",
    "Ibc": "SN Ibc", "Ib": "SN Ibc", "Ic": "SN Ibc",
}

RAW_LABEL_MAPS: dict[str, dict[str, str]] = {
    "bts": _BTS,
    "ztf-forced": _BTS,  # fpbot headers carry BTS types
    "plasticc": _PLASTICC,
    "alerce": _ALERCE,
    "simulation": {name: name for name in CLASSES},
    "snphotcc": _SNPHOTCC,
}


@dataclass(frozen=True)
class SnanaLabels:
    """Where an SNANA data set keeps each object's type, and how types map to classes.

    `keys` are header keys tried in order: the first with a value that is not an 'unknown'
    sentinel (empty, 0, -9, ...) gives the raw label.
    """
    name: str
    keys: tuple[str, ...]
    raw_labels: dict[str, str]


# Known SNANA label maps (`tl ingest snana --labels NAME`); others come from a YAML file.
# "plasticc": the PLAsTiCC class codes (`true_target` of its CSV release) read as the simulated
# type; `tl export snana` writes these codes (that PLAsTiCC's own SNANA files do is not checked here).
SNANA_LABELS: dict[str, SnanaLabels] = {
    "snphotcc": SnanaLabels("snphotcc", ("SNTYPE", "SIM_COMMENT"), _SNPHOTCC),
    "plasticc": SnanaLabels("plasticc", ("SIM_TYPE_INDEX", "SNTYPE"), _PLASTICC),
}


def canonical_label(source: str, raw_label: str) -> str | None:
    """The canonical class of `raw_label` from `source`, or None when it has no mapping."""
    return RAW_LABEL_MAPS[source].get(str(raw_label).strip())


def class_index(classes: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Index of each class in `classes` (an ordered subset of CLASSES)."""
    return {name: i for i, name in enumerate(classes)}


def ordered_classes(labels) -> list[str]:
    """The canonical classes present in `labels`, in taxonomy order."""
    present = set(labels)
    unknown = present - set(CLASSES)
    if unknown:
        raise ValueError(f"labels not in the taxonomy: {sorted(unknown)}")
    return [name for name in CLASSES if name in present]
