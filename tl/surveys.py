"""The band table: the single source of truth for passbands.

Every band a data set may contain is one row here. The model reads a band through its effective
wavelength, so one network reads ZTF and LSST light curves alike; adding a survey is adding rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tl.errors import TLError


@dataclass(frozen=True)
class Band:
    name: str
    survey: str
    wavelength_nm: float  # effective (pivot) wavelength of the filter


# ZTF: Bellm et al. 2019 (PASP 131, 018002) filter curves, SVO pivot wavelengths.
# LSST: LSST Science Book / SVO LSST baseline filter effective wavelengths.
# DES, PS1, SDSS: pivot wavelengths sqrt(int T l dl / int T / l dl) of the filter curves shipped
# with speclite 1.0 (`decamDR1-*`: DES DR1 standard bandpasses, Abbott et al. 2018, ApJS 239, 18;
# `panstarrs-*`: Tonry et al. 2012, ApJ 750, 99; `sdss2010-*`: Doi et al. 2010, AJ 139, 1628);
# tests/test_snana.py recomputes them from those curves. A survey's SNANA filter letter is the
# part of the name after "<survey>_" (case-insensitive): ingesting a new survey needs only its rows.
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
    Band("des_g", "des", 480.9),
    Band("des_r", "des", 641.8),
    Band("des_i", "des", 781.5),
    Band("des_z", "des", 916.9),
    Band("ps1_g", "ps1", 484.9),
    Band("ps1_r", "ps1", 620.1),
    Band("ps1_i", "ps1", 753.5),
    Band("ps1_z", "ps1", 867.4),
    Band("ps1_y", "ps1", 962.8),
    Band("sdss_u", "sdss", 358.9),
    Band("sdss_g", "sdss", 470.1),
    Band("sdss_r", "sdss", 617.7),
    Band("sdss_i", "sdss", 749.7),
    Band("sdss_z", "sdss", 890.4),
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
    """The bands of one survey, in table order (rows added to BAND_BY_NAME at run time included)."""
    bands = tuple(band for band in BAND_BY_NAME.values() if band.survey == survey)
    if not bands:
        surveys = dict.fromkeys(band.survey for band in BAND_BY_NAME.values())
        raise TLError(f"unknown survey {survey!r}: known surveys are {', '.join(surveys)} "
                      "(add its rows to BANDS in tl/surveys.py)")
    return bands


def band_table() -> list[dict]:
    """The band table as plain records (saved with every model)."""
    return [{"name": b.name, "survey": b.survey, "wavelength_nm": b.wavelength_nm} for b in BANDS]


# --- Survey cadence and depth models (used by the simulator) -------------------------------------

AB_ZERO_POINT = 23.9  # AB magnitude of 1 microjansky: m = 23.9 - 2.5 log10(flux / uJy)


@dataclass(frozen=True)
class SurveyModel:
    """How a survey observes one field: which nights, which bands, how deep, how noisy.

    A field is observable `season_days` per year. In season, a night is observed with
    probability `night_probability` (cadence and weather together); an observed night has
    `visits_per_night` visits whose bands are drawn with `band_weights`. Each visit's 5-sigma
    limiting magnitude is the band's median depth plus a night-to-night scatter.
    """

    name: str
    band_weights: dict[str, float]  # band name -> share of visits
    depth: dict[str, float]  # band name -> median single-visit 5-sigma limiting AB magnitude (dark sky with a moon)
    depth_scatter: float  # magnitudes, night to night (seeing, clouds; and the moon where it has none)
    night_probability: float  # P(an in-season night is observed), median over fields
    cadence_scatter: float  # sigma of ln(night_probability) from field to field (overlaps, programs)
    visits_per_night: int  # visits on an observed night (different bands when possible)
    season_days: float  # days per year the field is observable
    poisson_coefficient: float  # source photon noise: variance term coefficient * flux_lim * flux
    calibration_floor: float  # fractional flux error floor (calibration, PSF fitting)
    start_mjd: float  # first night of the survey
    duration_days: float  # survey length
    # nightly sampling v2/v3 (defaults keep the v1 behaviour: every observed night has all its
    # visits at a random time of night, one noise model for detection and reported error)
    grid_days: int | dict[int, float] = 0  # a regular cadence: every grid_days-th night is targeted
    # (0: none; {period: share of fields}: each field its own period)
    grid_probability: float = 0.0  # P(a targeted grid night is observed); off-grid: night_probability
    grid_jitter: float = 0.0  # P(a step between grid nights is a night shorter or longer)
    # the scheduler keeps each field's cadence from its last visit: a grid night lost to weather
    # (or not taken, 1 - grid_probability) is made up on the next clear night, not skipped
    grid_reschedule: bool = False
    pair_probability: float = 1.0  # P(an observed night has visits_per_night visits, else one)
    visit_separation_days: tuple[float, float] = (0.03, 0.04)  # uniform range between a night's visits
    # a lognormal (median days, sigma of ln) clipped to visit_separation_days instead (None: uniform)
    separation_lognormal: tuple[float, float] | None = None
    weather_loss: float = 0.0  # share of nights lost to weather at the site (all fields at once)
    weather_run_nights: float = 1.0  # mean length of a run of lost nights (Markov chain)
    detection_snr: float = 5.0  # a detection (an alert) at flux / (the noise model's flux_err) >= this
    # time of night (fraction of the UT day) of a night's first visit: uniform in this range,
    # drawn anew every night (jitter None), or moving through it with the season (a field rises
    # earlier every night: late in the night when its season starts, early when it ends) with
    # N(0, jitter) night to night
    night_start: tuple[float, float] = (0.15, 0.45)
    night_start_jitter_days: float | None = None
    repeat_probability: float = 0.0  # P(a visit is repeated in its band minutes later: field overlaps)
    repeat_separation_days: tuple[float, float] = (3e-4, 0.05)  # log-uniform range of a repeat's delay (days)
    # or, when repeat_slot_days > 0: a share repeat_slot_share of repeats come k exposure slots later
    # (consecutive exposures of overlapping fields), k - 1 ~ geometric (P(k + 1) / P(k) = repeat_slot_continue),
    # the rest after a lognormal delay (median days, sigma of ln) clipped to repeat_separation_days
    repeat_slot_days: float = 0.0
    repeat_slot_share: float = 0.0
    repeat_slot_continue: float = 0.0
    repeat_separation_lognormal: tuple[float, float] = (0.02, 0.8)
    # programs differ from field to field: each field's pair and repeat probabilities ~ Beta with
    # these means and a + b = field_concentration (None: the same for every field)
    field_concentration: tuple[float, float] | None = None  # (pair, repeat)
    # with grid_reschedule: {grid period: (mean, concentration)} of the fields' pair probabilities,
    # for the periods listed (the others: pair_probability and field_concentration)
    pair_by_period: dict[int, tuple[float, float]] | None = None
    # the alert's reported error is not the detection statistic's: its background term is the noise
    # model's x a lognormal (median, sigma of ln); (1, 0): the same, flux / flux_err >= detection_snr
    reported_error_factor: tuple[float, float] = (1.0, 0.0)
    # moonlight: band -> depth lost at full moon (mag), scaled over the lunar cycle by moon_depth_loss();
    # None: no lunar cycle (the depth and depth_scatter alone)
    moon_full_loss: dict[str, float] | None = None

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.band_weights)


# ZTF (Bellm et al. 2019, PASP 131, 018002): the public survey revisits its fields every 3 nights
# (2 from late 2020) in g and r, partnership and Caltech programs add nightly and several-per-night
# fields (and i); median 30 s depths g 20.8, r 20.6, i 19.9; fields are up for ~8 months a year.
# Palomar weather: ~25% of nights lost, in runs of a few nights (Bellm et al. 2019, Sec. 6: ~70-75%
# of the time open), the same nights for every field. Fields are observed near transit, so a
# field's time of night drifts earlier through its season (sidereal time) with a small scatter.
# Nightly sampling v3, tuned to the BTS train light curves (`tl ingest bts`, split == train;
# benchmarks/validate_simulator.py): per object, the median gap between detections is ~1 / ~2 / ~3 d
# for 23 / 22 / 35% of objects (the grid period mix, with 5% of extra off-grid nights; v5 below); the grid
# is not a lattice: first detection -> brightest is uniform modulo 3 d in BTS, so each step
# between grid nights is a night shorter or longer in 20% (grid_jitter); nights with both g and
# r 16-77% (5-95% over objects; Beta a + b = 4 around pair_probability 0.56),
# 3+ visits on 8% of nights (same-band repeats minutes apart, 28% of same-night pairs, most
# fields none: Beta a + b = 2 around 8%); g/r pairs 0.02-0.10 d
# apart (log-uniform; median 0.045 d); gaps between nights within ~0.07 d (IQR) of whole days, first
# visits 0.10-0.55 of the UT day. Single-band nights are g in 39% of them.
# A field's cadence is kept from its last visit (grid_reschedule): a grid night lost to weather
# delays the next visit to the next open night rather than by a whole period. BTS train light
# curves have gaps of >= 4 nights as their most common gap in 18% of SN Ia; dropping lost grid
# nights gave 35% (v3: a median of 20 SN Ia detections against BTS's 24; v4: 22).
# v5: fields differ less in their pair probability and more in their repeats (Beta a + b = 8 and 1;
# v4 4 and 2). Per SN Ia, the share of consecutive detections on one night has a floor in BTS train:
# its 5% quantile is 0.25 / 0.24 for objects with a median gap of ~1 / ~2 nights (v4: 0.20 / 0.15), 4%
# of objects have <= 0.15 (v4 6.6%) and 5.6% >= 0.6 (v4 3.4%; v5 0.23 / 0.20, 4.1%, 4.2%); with
# them, 1-night grid fields 15% (v4 12%, 3-night 65%) keep the objects whose median gap is ~1 d at
# BTS train's 23% (v4's grid mix with v5's fields gave 19%).
# The alert stream is shallower than the 5-sigma image depth (an alert needs a real-bogus score
# and a clean subtraction; Masci et al. 2019, PASP 131, 018003, Sec. 6): detection_snr 6 on the
# noise model, i.e. ~0.2 mag brighter, with 0.4 mag night-to-night depth scatter. The alert's
# reported error (the PSF-fit sigma, not the detection statistic) is larger at the faint end: BTS
# train detections have flux / flux_err < 5 in 10% and a median of 10, which the background
# term x lognormal(1.5, 0.42) approaches (7% and 9.5 here: tests/test_simulate_v2.py). The noise
# terms were fitted to the BTS magnitude errors (median magerr 0.055 at 17.5 mag, 0.03 at 15.5 mag,
# 0.21 at 20.5 mag; calibration floor 0.02 for the median S/N ~45 of BTS train detections at 14-14.5 mag).
# v6: the cadence and depth fields above tuned jointly with the SN Ia model (benchmarks/tune_simulator.py,
# space "SN Ia+ZTF", see tl/lightcurve_models.py): grid periods 1/2/3/4 nights in 18/20/58/4% of fields
# (v5 15/16/65/4), grid nights kept 98% (v5 90%) with 2% off-grid nights (v5 5%), lost weather nights
# 28% in runs of 3.6 nights (v5 25%, 2: Palomar's clear fraction is ~70-75%, Bellm et al. 2019), depth
# scatter 0.6 mag (v5 0.4; moon phase, seeing and clouds), r 0.13 mag deeper, repeats 12% (v5 8%).
# v7: the same fields searched again with the class models fixed, scored on SN Ia, SN II and SN Ibc at
# once with their KS excess (space "ZTF", --ks-penalty 1; v6's were fitted to SN Ia alone, and left SN II's
# same-night share, g share and S/N off): median alert depth g 20.92, r 20.63 (Bellm et al. 2019: 30 s
# image depths g 20.8, r 20.6), scatter 0.51 mag, grid periods 19/21/56/4%, grid nights kept 93% with 2%
# off-grid nights, g/r pairs on 52% of nights (v6 57%), a grid step a night off in 9% (v6 18%), weather
# runs of 3.1 nights.
# v8: moonlight (moon_full_loss; Krisciunas & Schaefer's law below). In the BTS train split the median
# 5 x flux_err of detections at S/N < 12 is 0.61 (g) / 0.46 (r) mag shallower within 3 days of full
# moon than 12-15 days from it (benchmarks/validate_simulator.py's moon table); v7's independent
# night-to-night scatter had no such cycle. Full moon costs g 0.85, r 0.75 mag (fitted to that
# modulation: rms 0.03 / 0.01 mag over the bins; i not measured, none); the depths are now the dark-sky
# ones, v7's plus the losses' mean over a lunation (0.25 / 0.22 mag), and the random scatter 0.45 mag
# keeps v7's total variance (0.51^2 = 0.45^2 + the moon's mean variance).
# v9: the time structure within a night, measured on the BTS train split's detections (all classes;
# benchmarks/intra_night.py, results in benchmarks/results/simulator/v9/). g/r pairs: the gap from one
# band to the other on a night is lognormal, median 0.0453 d, sigma of ln 0.64 (5/50/95%: 0.017 / 0.045 /
# 0.12 d; ZTF spaces a night's visits for asteroid rejection, Bellm et al. 2019, PASP 131, 018002);
# v8's log-uniform 0.015-0.13 d put 13% of them below 0.02 d (real 9%) and none past 0.13 d (real 4%).
# Same-band repeats: 47% come a whole number of exposure slots later (40.3 s: a 30 s exposure and the
# slew to the next field, where overlapping fields see an object again; 1 / 2 / 3 / 4 slots in 1188 /
# 682 / 358 / 240 real gaps, each ~0.6 of the one before), the rest lognormal (median 0.0202 d, sigma of
# ln 0.82, from 330 s); v8's log-uniform repeats had a median of 0.011 d past the slots (real 0.020).
# Pairs by cadence: of the objects with a median gap of ~1 or ~2 nights, 56% have 0.3-0.4 of their
# consecutive detections on one night (v8: 38% / 43%; v9 56% / 53%): the fields' common Beta(a + b = 8)
# was too wide for them, so 1- and 2-night fields pair with probability ~ Beta(mean 0.57, a + b = 60).
# The mean was chosen among 0.52 / 0.55 / 0.57 / 0.60 (and 0.55 with a + b = 30) on 4 seeds x 1,500 SN II
# and SN Ia: 0.60 put SN II's median-gap, same-night and g-share KS at 0.10-0.11, 0.57 at 0.07-0.10.
ZTF = SurveyModel(
    name="ztf", band_weights={"ztf_g": 0.36, "ztf_r": 0.56, "ztf_i": 0.08},
    depth={"ztf_g": 21.17, "ztf_r": 20.85, "ztf_i": 19.9}, depth_scatter=0.45,
    night_probability=0.019, cadence_scatter=0.5, visits_per_night=2, season_days=240.0,
    poisson_coefficient=0.032, calibration_floor=0.02, start_mjd=58200.0, duration_days=3 * 365.25,
    grid_days={1: 0.19, 2: 0.21, 3: 0.56, 4: 0.04}, grid_probability=0.93, grid_jitter=0.09, grid_reschedule=True,
    pair_probability=0.52, visit_separation_days=(0.005, 0.3), separation_lognormal=(0.0453, 0.64),
    weather_loss=0.28, weather_run_nights=3.1, detection_snr=6.06,
    night_start=(0.13, 0.49), night_start_jitter_days=0.03, repeat_probability=0.11,
    repeat_separation_days=(0.0038, 0.2), repeat_slot_days=40.3 / 86400, repeat_slot_share=0.47,
    repeat_slot_continue=0.6, repeat_separation_lognormal=(0.0202, 0.82),
    field_concentration=(8.0, 1.0), pair_by_period={1: (0.57, 60.0), 2: (0.57, 60.0)},
    reported_error_factor=(1.5, 0.42),
    moon_full_loss={"ztf_g": 0.85, "ztf_r": 0.75},
)

# LSST WFD baseline (Ivezic et al. 2019, ApJ 873, 111, table 1; baseline v3 cadence): ~825 visits
# in 10 years, shares u 6%, g 9%, r 22%, i 22%, z 20%, y 21%, taken as same-night pairs in two
# bands (~80 visits per field per year); median single-visit depths u 23.9, g 25.0, r 24.7,
# i 24.0, z 23.3, y 22.1; fields are up ~6 months a year.
LSST = SurveyModel(
    name="lsst",
    band_weights={"lsst_u": 0.06, "lsst_g": 0.09, "lsst_r": 0.22, "lsst_i": 0.22, "lsst_z": 0.20,
                  "lsst_y": 0.21},
    depth={"lsst_u": 23.9, "lsst_g": 25.0, "lsst_r": 24.7, "lsst_i": 24.0, "lsst_z": 23.3,
           "lsst_y": 22.1},
    depth_scatter=0.3, night_probability=0.22, cadence_scatter=0.3, visits_per_night=2,
    season_days=180.0,
    poisson_coefficient=0.03, calibration_floor=0.005, start_mjd=60800.0, duration_days=3 * 365.25,
)

# DES supernova program (Bernstein et al. 2012, ApJ 753, 152; Kessler et al. 2015, AJ 150, 172):
# griz on the same night, one epoch every ~7 nights after weather, seasons of ~5.5 months
# (late August to February) for 5 years from 2013-08-31; single-visit 5-sigma depth ~23.5 mag in
# the 8 shallow fields (the 2 deep fields, ~24.5 mag, are not modelled; nor are band-to-band depth
# differences). The noise terms are LSST's, not fitted to DES data.
DES = SurveyModel(
    name="des", band_weights={"des_g": 0.25, "des_r": 0.25, "des_i": 0.25, "des_z": 0.25},
    depth={"des_g": 23.5, "des_r": 23.5, "des_i": 23.5, "des_z": 23.5}, depth_scatter=0.3,
    night_probability=1 / 7, cadence_scatter=0.3, visits_per_night=4, season_days=165.0,
    poisson_coefficient=0.03, calibration_floor=0.005, start_mjd=56535.0, duration_days=5 * 365.25,
)

SURVEY_MODELS: dict[str, SurveyModel] = {"ztf": ZTF, "lsst": LSST, "des": DES}


def survey_model(name: str) -> SurveyModel:
    """The cadence/depth model of survey `name`."""
    try:
        return SURVEY_MODELS[name]
    except KeyError:
        raise TLError(f"unknown survey {name!r}: the simulator knows {', '.join(SURVEY_MODELS)} "
                      "(add a SurveyModel in tl/surveys.py)") from None


def magnitude_to_flux(magnitude):
    """AB magnitude -> flux in microjansky."""
    return 10.0 ** (-0.4 * (magnitude - AB_ZERO_POINT))


def flux_error(flux, limiting_magnitude, model: SurveyModel):
    """1-sigma flux error (uJy) of a measurement of true `flux` at a 5-sigma `limiting_magnitude`.

    Background: sigma = flux_lim / 5 for a source-free position; plus source photon noise
    (poisson_coefficient * flux_lim * flux) and a calibration floor (calibration_floor * flux).
    """
    return flux_error_at(flux, magnitude_to_flux(np.asarray(limiting_magnitude, dtype=float)), model)


def flux_error_at(flux, flux_limit, model: SurveyModel):
    """flux_error given the 5-sigma limit as a flux (uJy): for callers that need it for several fluxes."""
    source = np.clip(np.asarray(flux, dtype=float), 0.0, None)
    variance = ((flux_limit / 5.0) ** 2 + model.poisson_coefficient * flux_limit * source
                + (model.calibration_floor * source) ** 2)
    return np.sqrt(variance)


# Moonlight (Krisciunas & Schaefer 1991, PASP 103, 1033, eq. 20): the moon's brightness falls with
# its phase angle alpha (degrees, 0 at full) as 10^(-0.4 (0.026 |alpha| + 4e-9 alpha^4)); it adds to
# the dark sky, and a background-limited 5-sigma depth moves by -1.25 log10(sky / dark sky). Phase
# from the mean synodic month and a new moon at MJD 51549.76 (2000 January 6, 18:14 UT; Meeus 1998).
SYNODIC_MONTH_DAYS = 29.530589
NEW_MOON_MJD = 51549.76


def moon_phase_angle(mjd) -> np.ndarray:
    """Phase angle of the moon (degrees, 0 at full, 180 at new) at `mjd`, from the mean synodic month."""
    phase = ((np.asarray(mjd, dtype=float) - NEW_MOON_MJD) / SYNODIC_MONTH_DAYS) % 1.0  # 0 new, 0.5 full
    return np.abs(phase - 0.5) * 360.0


def moon_depth_loss(full_loss, mjd) -> np.ndarray:
    """Depth lost to moonlight (mag, >= 0) at `mjd`, for a band that loses `full_loss` mag at full moon
    (arrays broadcast): the moon's sky brightness relative to the dark sky is c I(alpha) / I(0), with c
    such that full moon costs full_loss."""
    alpha = moon_phase_angle(mjd)
    relative = 10 ** (-0.4 * (0.026 * alpha + 4e-9 * alpha ** 4))  # I(alpha) / I(0)
    c = 10 ** (np.asarray(full_loss, dtype=float) / 1.25) - 1
    return 1.25 * np.log10(1 + c * relative)


def band_moon_loss(survey: SurveyModel, bands, band, mjd) -> np.ndarray | float:
    """moon_depth_loss of each visit (band: indices into `bands`, mjd: its time; same shape), or 0."""
    if not survey.moon_full_loss:
        return 0.0
    full = np.array([survey.moon_full_loss.get(b, 0.0) for b in bands])
    return moon_depth_loss(full[band], mjd)


def clear_nights(survey: SurveyModel, first: int, n_nights: int, rng) -> np.ndarray:
    """(n_nights,) bool from MJD `first`: nights not lost to weather, a two-state Markov chain
    with stationary loss `weather_loss` and mean bad run `weather_run_nights`."""
    if survey.weather_loss <= 0:
        return np.ones(n_nights, dtype=bool)
    to_clear = 1.0 / survey.weather_run_nights  # P(bad -> clear)
    to_bad = to_clear * survey.weather_loss / (1.0 - survey.weather_loss)  # keeps the loss stationary
    uniform = rng.random(n_nights)
    clear = np.empty(n_nights, dtype=bool)
    state = uniform[0] >= survey.weather_loss
    for k in range(n_nights):  # a few thousand nights per batch
        state = uniform[k] >= to_bad if state else uniform[k] < to_clear
        clear[k] = state
    return clear


def observed_nights(survey: SurveyModel, first_night, n_nights, rng,
                    season_offset=None, period=None) -> tuple[np.ndarray, np.ndarray]:
    """(object index, night MJD) of every observed night, sorted by object then night.

    season_offset: (n_objects,) integers in [0, 365), each field's season phase (drawn here if None).
    period: (n_objects,) each field's grid period in nights, with grid_reschedule (drawn here if None).
    """
    n_objects, width = len(first_night), int(n_nights.max(initial=0))
    if season_offset is None:
        season_offset = rng.integers(0, 365, n_objects)
    # day of the observing season of each object's first night (seasons repeat every 365 days)
    season_day = (first_night - season_offset) % 365
    field_scatter = np.exp(survey.cadence_scatter * rng.standard_normal(n_objects))
    night_probability = np.clip(survey.night_probability * field_scatter, 0, 1).astype(np.float32)
    threshold = np.broadcast_to(night_probability[:, None], (n_objects, width))
    if survey.grid_days and survey.grid_reschedule:
        observed = _rescheduled_nights(survey, first_night, n_nights, season_day, threshold, rng, period)
    else:
        if survey.grid_days:  # each field's own phase on the regular grid
            on_grid = _grid_nights(survey.grid_days, first_night, width, rng, survey.grid_jitter)
            threshold = np.where(on_grid, np.float32(survey.grid_probability), threshold)
        drawn = rng.random((n_objects, width), dtype=np.float32) < threshold
        observed = drawn & _open_nights(survey, first_night, n_nights, season_day, rng)
    obj, night = np.nonzero(observed)
    return obj, (first_night[obj] + night).astype(float)


def _open_nights(survey: SurveyModel, first_night, n_nights, season_day, rng) -> np.ndarray:
    """(n_objects, width) bool: the nights of each object's window in its field's season, not lost to weather."""
    width = int(n_nights.max(initial=0))
    in_window = np.arange(width)[None, :] < n_nights[:, None]
    open_nights = in_window & _periodic_rows(np.arange(365) < survey.season_days, season_day, width)
    if len(first_night):
        start = int(first_night.min())
        clear = clear_nights(survey, start, int((first_night + n_nights).max()) - start + 1, rng)
        open_nights &= _sliding_rows(clear, first_night - start, width)
    return open_nights


def _rescheduled_nights(survey: SurveyModel, first_night, n_nights, season_day, threshold, rng,
                        period=None) -> np.ndarray:
    """(n_objects, width) bool, the observed nights with grid_reschedule: each field's grid visits
    kept `period` nights after its last one, made up on the next open night when weather (or the
    scheduler) loses one; plus the off-grid nights (probability `threshold`)."""
    open_nights = _open_nights(survey, first_night, n_nights, season_day, rng)
    n_objects, width = open_nights.shape
    off_grid = rng.random((n_objects, width), dtype=np.float32) < threshold
    taken = open_nights & (rng.random((n_objects, width), dtype=np.float32) < survey.grid_probability)
    return open_nights & (off_grid | _scheduled_grid(survey, taken, rng, period))


def _scheduled_grid(survey: SurveyModel, taken, rng, period=None) -> np.ndarray:
    """(n_objects, width) bool: the grid visits of fields whose next visit is due `period` nights
    after the last (a night shorter or longer with probability grid_jitter) and happens on the
    first night from then on that is `taken` (open, and chosen by the scheduler). period: (n_objects,)
    nights, drawn here (_field_periods) if None."""
    n_objects, width = taken.shape
    if period is None:
        period = _field_periods(survey.grid_days, n_objects, rng)
    uniform = rng.random((width, n_objects), dtype=np.float32)
    half = survey.grid_jitter / 2
    step = np.maximum(period[None, :] - (uniform < half) + (uniform > 1 - half), 1)  # (width, n_objects)
    due = rng.integers(0, period)  # the first visit: a random phase in the period
    candidates = np.ascontiguousarray(taken.T)  # night-major: one contiguous row a night
    visits = np.zeros_like(candidates)
    for night in range(width):  # each night depends on the last visit: a sequential scan
        visits[night] = candidates[night] & (due <= night)
        due = np.where(visits[night], night + step[night], due)
    return visits.T


def _field_periods(grid_days, n_objects: int, rng) -> np.ndarray:
    """(n_objects,) grid period in nights of each object's field, drawn with the {period: share} weights."""
    grid_days = grid_days if isinstance(grid_days, dict) else {grid_days: 1.0}
    periods = np.array(list(grid_days))
    shares = np.array(list(grid_days.values()), dtype=float)
    return periods[rng.choice(len(periods), n_objects, p=shares / shares.sum())]


def _grid_nights(grid_days, first_night, width: int, rng, jitter: float = 0.0) -> np.ndarray:
    """(n_objects, width) bool: the nights of each field's regular grid, at a random phase (and,
    for a {period: share} grid_days, a period drawn per field); with `jitter`, each step from one
    grid night to the next is a night shorter or longer with that probability (a renewal process,
    not a lattice: the scheduler keeps the cadence, not the calendar)."""
    if not isinstance(grid_days, dict) and jitter == 0:
        phase = rng.integers(0, grid_days, len(first_night))
        return _periodic_rows(np.arange(grid_days) == 0, (first_night + phase) % grid_days, width)
    grid_days = grid_days if isinstance(grid_days, dict) else {grid_days: 1.0}
    periods = np.array(list(grid_days))
    period = _field_periods(grid_days, len(first_night), rng)
    on_grid = np.zeros((len(first_night), width), dtype=bool)
    if jitter == 0:
        phase = rng.integers(0, period)
        for days in periods:
            rows = period == days
            on_grid[rows] = _periodic_rows(np.arange(days) == 0, (first_night[rows] + phase[rows]) % days, width)
        return on_grid
    for days in periods:
        rows = np.flatnonzero(period == days)
        steps = width // max(days - 1, 1) + 1  # enough grid nights to cross the window
        uniform = rng.random((len(rows), steps), dtype=np.float32)
        gaps = np.maximum(days - (uniform < jitter / 2) + (uniform > 1 - jitter / 2), 1)
        nights = rng.integers(0, days, len(rows))[:, None] + np.cumsum(gaps, axis=1) - gaps
        inside = nights < width
        on_grid.reshape(-1)[(rows[:, None] * width + nights)[inside]] = True  # flat: one index, not two
    return on_grid


def _periodic_rows(pattern: np.ndarray, phase, width: int) -> np.ndarray:
    """(len(phase), width) bool: row k is `pattern` repeated, starting at pattern[phase[k]]
    (a row gather from one tiled copy: cheaper than a modulo over the whole grid)."""
    tiled = np.resize(pattern, len(pattern) + width)
    return _sliding_rows(tiled, phase, width)


def _sliding_rows(values: np.ndarray, start, width: int) -> np.ndarray:
    """(len(start), width): row k is values[start[k]: start[k] + width], padded with False past the end."""
    padded = np.concatenate([values, np.zeros(width, dtype=values.dtype)])
    return np.lib.stride_tricks.sliding_window_view(padded, width)[np.asarray(start)]


def weighted_without_replacement(weights, k: int, n: int, rng) -> np.ndarray:
    """(n, k) indices into `weights`, each row k draws without replacement, every draw with
    probability proportional to the weights not yet drawn (the order Gumbel top-k gives): each
    draw from all the weights, redrawn where it repeats an earlier one (one cumulative
    table for every draw, cheaper than per-row sorts)."""
    cumulative = np.cumsum(weights) / np.sum(weights)
    chosen = np.empty((n, k), dtype=np.intp)
    for draw in range(k):
        pending = np.arange(n)
        while len(pending):
            pick = _bisect(cumulative, rng.random(len(pending)))
            chosen[pending, draw] = pick
            pending = pending[(chosen[pending, :draw] == pick[:, None]).any(axis=1)]
    return chosen


def _bisect(cumulative, uniform) -> np.ndarray:
    """min(np.searchsorted(cumulative, uniform, side="right"), len(cumulative) - 1) for a short
    nondecreasing table: a count of the entries <= each draw (much cheaper than a search per draw)."""
    pick = np.zeros(len(uniform), dtype=np.intp)
    for edge in cumulative[:-1]:
        pick += uniform >= edge
    return pick


def schedule_visits(survey: SurveyModel, bands, first_night, n_nights, rng, season_offset=None):
    """Visits of each object's window: (object index, mjd, band index, 5-sigma limit), sorted by
    object then time. first_night, n_nights: (n_objects,) integer MJD and window length;
    season_offset: see observed_nights."""
    if season_offset is None:
        season_offset = rng.integers(0, 365, len(first_night))  # as observed_nights would draw it
    period = None  # each field's grid period: drawn here only where the pair probability depends on it
    if survey.pair_by_period and survey.grid_days and survey.grid_reschedule:
        period = _field_periods(survey.grid_days, len(first_night), rng)
    obj, night_mjd = observed_nights(survey, first_night, n_nights, rng, season_offset, period)
    weights = np.array([survey.band_weights[b] for b in bands])
    visits = min(survey.visits_per_night, len(bands))
    band = weighted_without_replacement(weights, visits, len(obj), rng)  # a single-visit night keeps the first
    earliest, latest = survey.night_start
    if survey.night_start_jitter_days is None:  # any time of the night, night after night
        start = night_mjd + earliest + rng.uniform(0, latest - earliest, len(obj))
    else:  # sidereal drift through the season, a little earlier or later night to night
        season_fraction = ((night_mjd - season_offset[obj]) % 365) / survey.season_days
        start = (night_mjd + latest - (latest - earliest) * season_fraction
                 + rng.normal(0, survey.night_start_jitter_days, len(obj)))
    if survey.separation_lognormal is not None:
        separation = clipped_lognormal(survey.separation_lognormal, survey.visit_separation_days, len(obj), rng)
    else:
        separation = rng.uniform(*survey.visit_separation_days, len(obj))
    mjd = start[:, None] + separation[:, None] * np.arange(visits)[None, :]
    depth = np.array([survey.depth[b] for b in bands])
    nightly = (depth[band] + rng.normal(0, survey.depth_scatter, len(obj))[:, None]
               - band_moon_loss(survey, bands, band, night_mjd[:, None]))
    limit = nightly + rng.normal(0, 0.1, band.shape)
    pair, repeat = _field_probabilities(survey, obj, len(first_night), rng)
    if period is not None:
        pair = _pair_by_period(survey.pair_by_period, period, pair if np.ndim(pair) else np.full(len(obj), pair),
                               obj, rng)
    keep = np.ones(band.shape, dtype=bool)
    keep[:, 1:] = (rng.random(len(obj)) < pair)[:, None]
    if survey.repeat_probability > 0:
        return _with_repeats(survey, obj, band, mjd, limit, keep, nightly, repeat, rng)
    return np.repeat(obj, visits)[keep.ravel()], mjd[keep], band[keep], limit[keep]


def clipped_lognormal(median_sigma: tuple[float, float], bounds: tuple[float, float], n: int, rng) -> np.ndarray:
    """(n,) draws of a lognormal (median, sigma of ln), clipped to (low, high) `bounds`."""
    median, sigma_ln = median_sigma
    return np.clip(median * np.exp(sigma_ln * rng.standard_normal(n)), *bounds)


def repeat_delays(survey: SurveyModel, n: int, rng) -> np.ndarray:
    """(n,) days from a visit to its same-band repeat (see SurveyModel.repeat_slot_days)."""
    if survey.repeat_slot_days <= 0:
        return np.exp(rng.uniform(*np.log(survey.repeat_separation_days), n))
    later = clipped_lognormal(survey.repeat_separation_lognormal, survey.repeat_separation_days, n, rng)
    slots = rng.geometric(1.0 - survey.repeat_slot_continue, n) * survey.repeat_slot_days
    return np.where(rng.random(n) < survey.repeat_slot_share, slots, later)


def _pair_by_period(pair_by_period: dict, period, pair, obj, rng) -> np.ndarray:
    """Per observed night: `pair`, except on the fields whose grid period is in pair_by_period,
    where it is that field's Beta(mean, concentration) draw."""
    pair = pair.copy()
    for days, (mean, concentration) in pair_by_period.items():
        fields = period == days
        field_pair = rng.beta(mean * concentration, (1 - mean) * concentration, len(period))
        nights = fields[obj]
        pair[nights] = field_pair[obj[nights]]
    return pair


def _field_probabilities(survey: SurveyModel, obj, n_objects: int, rng):
    """Per observed night (obj: its object): P(more than one band) and P(a visit is repeated),
    the survey's, or each field's own draw (field_concentration)."""
    if survey.field_concentration is None:
        return survey.pair_probability, survey.repeat_probability
    draws = []
    for mean, concentration in zip((survey.pair_probability, survey.repeat_probability), survey.field_concentration):
        a, b = mean * concentration, (1 - mean) * concentration
        draws.append(rng.beta(a, b, n_objects)[obj] if 0 < mean < 1 else np.full(len(obj), mean))
    return draws[0], draws[1][:, None]


def _with_repeats(survey: SurveyModel, obj, band, mjd, limit, keep, nightly, repeat, rng):
    """schedule_visits' output with same-band repeats: each kept visit repeated with probability
    `repeat` a log-uniform delay later (at the night's depth `nightly`), right after it; later
    visits of the night move on by the delays before them, so the output stays in time order.
    band, mjd, limit, keep, nightly: (n_nights, visits)."""
    visits = band.shape[1]
    repeated = keep & (rng.random(band.shape, dtype=np.float32) < repeat)
    n_repeats = np.count_nonzero(repeated)
    delay = repeat_delays(survey, n_repeats, rng)
    source = np.flatnonzero(repeated)  # the repeated visits in the flat (n_nights * visits) arrays
    # each visit after the repeats before it, on the nights that have one before their last visit
    early = repeated[:, :-1]
    nights = np.flatnonzero(early.any(axis=1))
    per_visit = np.zeros((len(nights), visits - 1))
    per_visit[early[nights]] = delay[source % visits < visits - 1]
    mjd = mjd.copy()
    mjd[nights, 1:] += np.cumsum(per_visit, axis=1)
    # one gather per output from the flat arrays: each kept visit, then its repeat (the same
    # element, a delay later, at a new limit), where np.insert would place it
    kept = np.flatnonzero(keep)
    after = np.flatnonzero(repeated.reshape(-1)[kept]) + np.arange(1, n_repeats + 1)  # k-th: k repeats before
    is_visit = np.ones(len(kept) + n_repeats, dtype=bool)
    is_visit[after] = False
    index = np.empty(len(is_visit), dtype=np.intp)
    index[is_visit], index[after] = kept, source
    out_mjd = mjd.reshape(-1).take(index)
    out_mjd[after] += delay
    out_limit = limit.reshape(-1).take(index)
    out_limit[after] = nightly.reshape(-1)[source] + rng.normal(0, 0.1, n_repeats)
    return obj.take(index // visits), out_mjd, band.reshape(-1).take(index), out_limit
