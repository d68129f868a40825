# tl simulate --match-real (tl/realism.py), issue 13, 2026-12-07: validated against real objects the matching
# classifier did not see. Simulator v8 (the tree of this commit); 5 seeds x 6,000 objects per validation.
tl ingest bts --src ../shared/data/bts --out /work/runs/bts
python benchmarks/half_split.py /work/runs/bts /work/runs/bts_A /work/runs/bts_B   # train split -> halves A, B
python benchmarks/half_split.py /work/runs/bts /work/runs/bts_Av /work/runs/bts_Bv --add-val   # the same + val
V="python benchmarks/validate_simulator.py --n 6000 --seeds 5 --out benchmarks/results/simulator/match_real"
export OMP_NUM_THREADS=1
$V --tag v8_halfB --bts /work/runs/bts_B                                   # v8 against half B
$V --tag v8m_halfB --bts /work/runs/bts_B --match-real /work/runs/bts_A    # matched to A, against B
$V --tag v8_halfA --bts /work/runs/bts_A
$V --tag v8m_halfA --bts /work/runs/bts_A --match-real /work/runs/bts_B
$V --tag v8_halfBval --bts /work/runs/bts_Bv                               # half B + val: 788 SN Ia
$V --tag v8m_halfBval --bts /work/runs/bts_Bv --match-real /work/runs/bts_A
$V --tag v8_halfAval --bts /work/runs/bts_Av
$V --tag v8m_halfAval --bts /work/runs/bts_Av --match-real /work/runs/bts_B
$V --tag v8m_val --real-split val --match-real /work/runs/bts              # matched to train, against val
$V --tag v8m_train --match-real /work/runs/bts                             # in sample: not a fair test
python benchmarks/compare_validations.py --dir benchmarks/results/simulator/match_real --before v8 --after v8m \
    --configs halfA halfB halfAval halfBval --out benchmarks/results/simulator/match_real/comparison_halves.md
python benchmarks/compare_validations.py --dir benchmarks/results/simulator/match_real \
    --before-dir benchmarks/results/simulator/v8 --before v8 --after v8m --configs val train \
    --out benchmarks/results/simulator/match_real/comparison_split.md
