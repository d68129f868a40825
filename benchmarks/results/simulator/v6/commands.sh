# Simulator v6 (issue 13), 2026-12-07. The searches (benchmarks/tune_simulator.py; studies kept outside the
# repository; two workers per study sharing one SQLite file, OMP_NUM_THREADS=1 each, stopped by hand):
for seed in 11 12; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN Ia+ZTF" --trials 1000 \
    --sampler-seed $seed --storage sqlite:////work/scratch/tune_SNIaZTF.db & done; wait   # 1,159 trials
#   (the study was created first with today's model and one point of an earlier, lost study's best region
#   enqueued: trials 0 and 1); the 10 best re-scored on seeds 10-12 (tune_simulator.confirm): trial 781
#   0.719, the others 0.723-0.736; its values, rounded, went into tl/lightcurve_models.py and tl/surveys.py.
for seed in 21 22; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN II" --trials 1000 \
    --sampler-seed $seed --storage sqlite:////work/scratch/tune_SNII_v6.db & done; wait   # 608 trials
#   8 best re-scored: trial 574 0.736, the others 0.737-0.753 (the values before: 0.758); with 7 KS flagged,
#   so (trial 574's values in the code, trial 0 of this study) the objective with the KS excess:
for seed in 41 42; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN II" --trials 2000 \
    --sampler-seed $seed --ks-penalty 1 --storage sqlite:////work/scratch/tune_SNII_ks.db & done; wait   # 605 trials
#   the 8 best re-scored on seeds 10-12 as AUC, KS excess and flagged count: trial 586 AUC 0.737, excess 0.080,
#   flagged 3/3/5 (trial 0: 0.738, 0.139, 4/7/7); its values, rounded, are v6's SN II.
for seed in 31 32; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN Ibc" --trials 1000 \
    --sampler-seed $seed --storage sqlite:////work/scratch/tune_SNIbc.db & done; wait   # 522 trials
#   10 best re-scored: trial 136 0.697, the others 0.700-0.735 (the values before: 0.737); slope, host
#   E(B-V) and M put back to the literature's, scored on seeds 10-12 and 20-22 (README).
# The validations (5 simulator seeds, 6,000 objects each), with runval.sh of ../v5/commands.sh:
#   runval.sh /work/main v6 benchmarks/results/simulator/v6 CONFIG...
# for CONFIG = train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60; v5's are ../v5/.
python benchmarks/compare_validations.py --dir benchmarks/results/simulator/v6 --before-dir benchmarks/results/simulator/v5 \
    --before v5 --after v6 --configs train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60 \
    --out benchmarks/results/simulator/v6/comparison.md
python benchmarks/validate_simulator.py --n 6000 --seeds 1 --tag v6_train --diagnose --out /tmp/diag   # -> validation_v6_train_diagnosis.md
