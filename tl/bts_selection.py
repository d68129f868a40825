"""The ZTF Bright Transient Survey selection, as the survey defines it, applied to the observed peak.

BTS (Fremling et al. 2020, ApJ 895, 32; Perley et al. 2020, ApJ 904, 35) spectroscopically
classifies every transient whose peak in the public g/r alert stream is brighter than 18.5 mag
(the complete sample, > 90% classified), and fainter ones down to 19.0 mag as time allows, with a
completeness that falls with magnitude. The fall-off below is the data's: the brightest-detection
magnitudes of the BTS train split (`tl ingest bts`, split == train) in 0.25 mag bins, against
the counts that the Euclidean slope of the complete part (d log10 N / dm = 0.6 x 0.9, the bins
17.5-18.5) predicts beyond 18.5 mag: ~0.75 at 18.5-18.75 and ~0.45 at 18.75-19.0, none past 19.
Completeness is linear between the nodes.
"""

from __future__ import annotations

import numpy as np

COMPLETE_MAGNITUDE = 18.5  # Perley et al. 2020: complete to 18.5 mag peak
FAINTEST_MAGNITUDE = 19.0  # Fremling et al. 2020: classified to 19 mag when possible
# (observed peak AB mag, probability of being classified): linear in between, 0 past the last node
COMPLETENESS_NODES = ((COMPLETE_MAGNITUDE, 1.0), (18.75, 0.6), (FAINTEST_MAGNITUDE, 0.3))


def completeness(peak_magnitude) -> np.ndarray:
    """P(a transient of this observed peak magnitude is in BTS): 1 to 18.5, falling to 19, then 0."""
    magnitude = np.asarray(peak_magnitude, dtype=float)
    nodes, values = np.array(COMPLETENESS_NODES).T
    inside = np.interp(magnitude, nodes, values, left=1.0)
    return np.where(magnitude > FAINTEST_MAGNITUDE, 0.0, inside)


# Peak coverage. BTS classifies with a spectrum near peak, and its peak is the brightest detection.
# In the BTS train split few light curves start within 2 days of their brightest detection (SN Ia
# 2.4%, SN II 6.1%, SN Ibc 2.3%) or stop within 5 days after it (1.1%, 0.4%, 4.7%: fast faders); a
# survey model whose fields' seasons start and end on a given night gives 5% / 8% / 6% and 5% /
# 5% / 6% (objects caught after peak, or lost when their field sets): the data's shares are met
# with these probabilities of being kept. (days, P(kept) below that many days)
LATE_DISCOVERY = (2.0, 0.5)  # first detection -> brightest detection
EARLY_LOSS = (5.0, 0.2)  # brightest detection -> last detection


def coverage_completeness(rise_days, fade_days) -> np.ndarray:
    """P(kept) for the observed rise (first -> brightest detection) and fade (brightest -> last), days."""
    late = np.where(np.asarray(rise_days) < LATE_DISCOVERY[0], LATE_DISCOVERY[1], 1.0)
    return late * np.where(np.asarray(fade_days) < EARLY_LOSS[0], EARLY_LOSS[1], 1.0)


def selected(peak_magnitude, uniform, rise_days=None, fade_days=None) -> np.ndarray:
    """Which objects BTS keeps, given one U(0, 1) draw per object (NaN peak: never); given the rise
    and fade of the observed light curve, also by its peak coverage (coverage_completeness)."""
    probability = np.nan_to_num(completeness(peak_magnitude), nan=0.0)
    if rise_days is not None:
        probability = probability * coverage_completeness(rise_days, fade_days)
    return np.asarray(uniform) < probability


# Precision of the catalogue redshift (the metadata the network reads): a SN-template redshift is
# quoted to 2-3 decimals, a host-galaxy one to 4-5. Shares of 2 / 3 / 4 / 5 decimals per class,
# from the BTS train split (`tl ingest bts`, split == train): the decimals each redshift shows,
# corrected for the 1 in 10 that end in 0 and show one decimal fewer. Classes not listed: 3.
REDSHIFT_DECIMALS = {"SN Ia": (0.33, 0.38, 0.10, 0.19), "SN II": (0.10, 0.42, 0.17, 0.31),
                     "SN Ibc": (0.07, 0.29, 0.23, 0.41), "SLSN": (0.17, 0.49, 0.34, 0.0)}
# Nearby hosts more often have a catalogued redshift: in BTS train the share of host (4-5 decimal)
# redshifts of SN Ia, II and Ibc falls from 0.73 at z < 0.02 to 0.26 at 0.06-0.08 and 0.08 at
# 0.10-0.13. P(host | z) = 1 / (1 + exp(-(intercept + slope z))): the slope a logistic fit to those
# SNe with one intercept per class (-27.9, bootstrap 95% -33.8 to -21.8), each class's intercept
# then set so that its mean over the class's BTS train redshifts is the host share (4 + 5 decimals)
# above. Without it the simulated host redshifts were as distant as the template ones (SN Ia median
# z 0.069 for both, BTS 0.053 and 0.070), which the sim-vs-real classifier read off z alone.
# SLSN (23 in BTS train, faint dwarf hosts, no trend with z in their shares) keep their share at
# every z. (intercept, slope) per class:
SN_HOST_REDSHIFT_SLOPE = -27.9
HOST_REDSHIFT_LOGISTIC = {"SN Ia": (0.86, SN_HOST_REDSHIFT_SLOPE), "SN II": (0.98, SN_HOST_REDSHIFT_SLOPE),
                          "SN Ibc": (1.74, SN_HOST_REDSHIFT_SLOPE), "SLSN": (-0.66, 0.0)}  # SLSN: log(0.34 / 0.66)


def catalogue_redshift(redshift, label: str, rng) -> np.ndarray:
    """`redshift` rounded as the BTS catalogue quotes a `label`'s redshift: host or template by
    P(host | z) (HOST_REDSHIFT_LOGISTIC), then 4 or 5, or 2 or 3, decimals in the class's shares
    (REDSHIFT_DECIMALS); classes without shares: 3 decimals."""
    redshift = np.asarray(redshift, dtype=float)
    if label not in HOST_REDSHIFT_LOGISTIC:
        return np.round(redshift, 3)
    two, three, four, five = REDSHIFT_DECIMALS[label]
    intercept, slope = HOST_REDSHIFT_LOGISTIC[label]
    host_probability = 1.0 / (1.0 + np.exp(-(intercept + slope * redshift)))
    host = rng.random(redshift.shape) < host_probability
    finer = rng.random(redshift.shape)  # the finer of the two precisions, in the class's shares
    decimals = np.where(host, np.where(finer < five / (four + five), 5, 4),
                        np.where(finer < three / (two + three), 3, 2))
    scale = 10.0 ** decimals
    return np.round(redshift * scale) / scale
