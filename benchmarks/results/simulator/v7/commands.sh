# Simulator v7 (issue 13), 2026-12-07. The ZTF survey fields searched with the class models fixed at v6,
# scored on SN Ia, SN II and SN Ibc at once with their KS excess (benchmarks/tune_simulator.py, space "ZTF";
# study kept outside the repository; two workers sharing one SQLite file, OMP_NUM_THREADS=1 each,
# stopped by hand after 397 trials, ~10 s a trial; best in-sample 0.724 against 0.802 for v6's values):
for seed in 51 52; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space ZTF --trials 2000 \
    --sampler-seed $seed --ks-penalty 1 --storage sqlite:////work/scratch/tune_ZTF.db --study ztf-ks & done; wait
#   the 8 best re-scored on seeds 10-12, per class (AUC, KS excess, flagged counts on the 3 seeds):
#   v6's values  SN Ia 0.723 0.000 [1,0,0]; SN II 0.747 0.068 [4,3,5]; SN Ibc 0.719 0.145 [2,2,2]
#   trial 378    SN Ia 0.743 0.000 [0,0,0]; SN II 0.741 0.001 [1,0,1]; SN Ibc 0.673 0.069 [2,2,2]
#   (the others: SN Ia 0.743-0.754, SN II 0.741-0.762, SN Ibc 0.644-0.681); trial 378's values, rounded,
#   are v7's ZTF (tl/surveys.py).
# Then the SN Ia model against v7's ZTF (624 trials, stopped by hand):
for seed in 61 62; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN Ia" --trials 3000 \
    --sampler-seed $seed --ks-penalty 1 --storage sqlite:////work/scratch/tune_SNIa_v7.db --study snia-ks & done; wait
#   re-scored: trial 422 0.735 (no KS excess) against 0.744 for v6's SN Ia; validated (5 seeds x 6000) it
#   left train unchanged (0.738 against 0.740 with v6's SN Ia) and made val worse (0.692 against 0.676 with
#   v6's SN Ia, 0.668 for v6): an in-sample gain that did not carry over, so v7 keeps v6's SN Ia model
#   (rejected_snia_search.md: that candidate against v6, all 8 validations).
# The validations (5 simulator seeds, 6,000 objects each), with runval.sh of ../v5/commands.sh:
#   runval.sh /work/main v7 benchmarks/results/simulator/v7 CONFIG...
# for CONFIG = train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60; v6's are ../v6/.
python benchmarks/compare_validations.py --dir benchmarks/results/simulator/v7 --before-dir benchmarks/results/simulator/v6 \
    --before v6 --after v7 --configs train val cadence_train cadence_val train60 val60 cadence_train60 cadence_val60 \
    --out benchmarks/results/simulator/v7/comparison.md
# Then the SN Ibc model against v7's ZTF with the KS excess (544 trials; the second worker joined later):
for seed in 71 72; do OMP_NUM_THREADS=1 python benchmarks/tune_simulator.py --space "SN Ibc" --trials 3000 \
    --sampler-seed $seed --ks-penalty 1 --storage sqlite:////work/scratch/tune_SNIbc_v7.db --study snibc-ks & done; wait
#   the 8 best re-scored on seeds 10-12: trial 496 AUC 0.669, no excess, 0 flagged (v6's SN Ibc: 0.673, 0.058,
#   2 a seed; the others 0.651-0.677); rounded, on seeds 10-12 / 20-22: as searched 0.663 / 0.648 with 1 flag
#   on 3 of 6 seeds; its -0.90 slope put back to 0: 0.664 / 0.666, no flag; also host E(B-V) back to 0.30:
#   0.673 / 0.664, a flag on 4 of 6. The slope-free variant is v7's SN Ibc. All 8 validations were rerun
#   after it (the per-class simulations of the other classes are unchanged).
