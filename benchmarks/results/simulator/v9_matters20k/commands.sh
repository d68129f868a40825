# Does v9 matter? v8 bases (the 5 of ../match_matters20k, reused: /work/runs/v8m_matters20k/base_v8_s*) against
# v9 bases, 20,000 BTS-like alerts each (seeds 1-5), the training of ../match_matters20k (max_steps 30000,
# patience 10 epochs on validation log-loss). CODE: a copy of tl/ and benchmarks/ taken just before commit
# 252b664 (v9), equal to it but for two comments in tl/surveys.py; its tl/training.py is the one that trained
# the v8 bases (identical file).
# Scored on the BTS data set's own split as ../match_matters20k: zero-shot on val, `tl transfer` defaults at 5%
# of train with early stopping on val, scored on test.
# usage: bash commands.sh lane "1 3 5"; bash commands.sh lane "2 4" (one lane per CPU), then bash commands.sh score
# ran 2026-12-08 01:27-01:48 UTC (lanes side by side), score 01:50-01:51 (run.log); all 5 v9 bases stopped on
# patience (epochs run = best + 10)
cd /work/runs/v9_matters20k
export OMP_NUM_THREADS=1
CODE=/work/scratch/wt_v9
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=30000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
T="/work/main/.venv/bin/python -m tl.cli"
base() {
  s=$1
  [ -f sim_v9_s$s/dataset.json ] || env PYTHONPATH=$CODE $T simulate --survey ztf --n 20000 --seed $s --bts-like --alerts-only --out sim_v9_s$s --quiet > sim_v9_s$s.log 2>&1
  [ -f base_v9_s$s/model.json ] || env PYTHONPATH=$CODE $T train --data sim_v9_s$s --out base_v9_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_v9_s$s.log 2>&1
  echo "$(date -u +%T) v9 s=$s $(grep -m1 'best epoch' base_v9_s$s.log)"
}
if [ "$1" = lane ]; then
  for s in $2; do base $s; done
elif [ "$1" = score ]; then
  ARGS=""
  for v in v8 v9; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
  PYTHONPATH=$CODE /work/main/.venv/bin/python $CODE/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --out matters_split $SMALL
fi
date -u
