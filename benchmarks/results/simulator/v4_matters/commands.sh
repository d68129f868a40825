# Does simulator v4 matter (issue 13 item 3)? Bases of 6,000 simulated BTS-like alerts from simulator v3 (dd3524f)
# and v4 (7a6a9f7), 3 replicates each, trained alike (the same small GRU and budget as cadence_matters/); then
# simulator_matters.py: zero-shot on BTS val, `tl transfer` defaults at 5% of BTS train, scored on BTS test.
# Frozen worktrees: /work/scratch/head = dd3524f (v3), /work/scratch/v4 = 7a6a9f7 (v4); training code is the same.
cd /work/runs/v4_matters
export OMP_NUM_THREADS=1
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=6000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A CODE=([v3]=/work/scratch/head [v4]=/work/scratch/v4)
date -u
for s in 1 2 3; do for v in v3 v4; do
  T="env PYTHONPATH=${CODE[$v]} /work/main/.venv/bin/python -m tl.cli"
  [ -d sim_${v}_s$s ] || $T simulate --survey ztf --n 6000 --seed $s --bts-like --alerts-only --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
done; done
date -u
ARGS=""
for v in v3 v4; do for s in 1 2 3; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
PYTHONPATH=/work/scratch/v4 /work/main/.venv/bin/python /work/scratch/v4/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --out matters $SMALL
date -u
