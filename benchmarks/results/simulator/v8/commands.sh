# Simulator v8 (issue 13), 2026-12-07: moonlight in the ZTF depth and a radioactive tail for SN Ia (tl/surveys.py,
# tl/lightcurve_models.py). No search: each fitted to one measured quantity of the BTS train split.
# - moon: validate_simulator.py's moon table (median 5 x flux_err of S/N < 12 detections by days from full moon)
#   is 0.61 (g) / 0.46 (r) mag shallower within 3 d of full moon in BTS train, flat in v7. Full-moon losses
#   g 0.85 / r 0.75 fitted to that modulation on 2 seeds x 6000 objects (tried g 0.85-1.05, r 0.75-0.85;
#   rms over the bins 0.03 / 0.01 mag); dark-sky depths = v7's + the mean loss over a lunation, random scatter
#   0.45 = sqrt(0.51^2 - the moon's mean variance) (v7's total kept).
# - SN Ia late_fraction / late_half_life_days on seeds 10-12 x 1500 SN Ia (with the moon), against BTS train
#   SN Ia (AUC, KS of peak -> last detection, share of objects with detections 60-100 d after the brightest;
#   real 14.0%):  none 0.745 / 0.080 / 8.4%;  0.03:30 0.740 / 0.063 / 9.7%;  0.05:30 0.740 / 0.050 / 10.8%;
#   0.03:45 0.739 / 0.046 / 11.4%;  0.05:45 0.729 / 0.032 / 13.5%;  0.06:45 0.741 / 0.036 / 16.0%;
#   0.04:60 0.736 / 0.034 / 14.1%;  0.03:60 0.733 / 0.036 / 12.2%.  Taken: 0.05:45.
# The validations (5 simulator seeds, 6,000 objects each), with runval.sh of ../v5/commands.sh:
#   runval.sh /work/main v8 benchmarks/results/simulator/v8 CONFIG...
# for CONFIG = train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60; v7's are ../v7/.
python benchmarks/compare_validations.py --dir benchmarks/results/simulator/v8 --before-dir benchmarks/results/simulator/v7 \
    --before v7 --after v8 --configs train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60 \
    --out benchmarks/results/simulator/v8/comparison.md
