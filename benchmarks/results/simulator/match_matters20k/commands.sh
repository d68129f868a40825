# Does --match-real matter? v8 bases against v8 --match-real /work/runs/bts bases (BTS train split), 20,000
# BTS-like alerts each (seeds 1-5), simulated and trained by one code (CODE: a copy of tl/ and benchmarks/ taken
# just before commit f121ee2; its simulate_matched output equals f121ee2's, checked on a hash of 800 objects), the training as v7_matters20k: max_steps 30000, patience 10 epochs on validation log-loss.
# Scored on the BTS data set's own split (--folds 0): zero-shot on val, `tl transfer` defaults at 5% of train
# with early stopping on val, scored on test. Not the 5 pooled outer folds of v7_matters20k: their test
# objects include the train split, which the --match-real classifier has seen.
# usage: bash commands.sh lane VERSION   (one lane per CPU), then bash commands.sh score
# ran 2026-12-07 22:41-23:24 UTC, both lanes side by side (run.log); all 10 bases stopped on patience
cd /work/runs/v8m_matters20k
export OMP_NUM_THREADS=1
CODE=/work/scratch/wt_m
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=30000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A EXTRA=([v8]="" [v8m]="--match-real /work/runs/bts")
T="/work/main/.venv/bin/python -m tl.cli"
base() {
  v=$1; s=$2
  [ -f sim_${v}_s$s/dataset.json ] || env PYTHONPATH=$CODE $T simulate --survey ztf --n 20000 --seed $s --bts-like --alerts-only ${EXTRA[$v]} --out sim_${v}_s$s --quiet > sim_${v}_s$s.log 2>&1
  [ -f base_${v}_s$s/model.json ] || env PYTHONPATH=$CODE $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
}
if [ "$1" = lane ]; then
  for s in 1 2 3 4 5; do base $2 $s; done
elif [ "$1" = score ]; then
  ARGS=""
  for v in v8 v8m; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
  PYTHONPATH=$CODE /work/main/.venv/bin/python $CODE/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --out matters_split $SMALL
fi
date -u
