"""The canonical classes and, per source, the map from raw labels to them.

Raw labels with no entry are dropped by the ingesters, counted, and reported, never silently.
"""

from __future__ import annotations

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

RAW_LABEL_MAPS: dict[str, dict[str, str]] = {
    "bts": _BTS,
    "ztf-forced": _BTS,  # fpbot headers carry BTS types
    "plasticc": _PLASTICC,
    "alerce": _ALERCE,
    "simulation": {name: name for name in CLASSES},
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
