# Does simulator v7 matter? v5 (4f33b24) against v7 (1e43e1c) bases of 20,000 BTS-like alerts each (seeds 1-5),
# simulated by each version's code and trained by one code (main) alike, as v5_matters20k: max_steps 30000, patience
# 10 epochs on validation log-loss; `tl transfer` defaults at 5% of each outer fold's train, scored on its test
# objects, the 5 folds pooled (every BTS object once). One lane (the other CPU was in use).
cd /work/runs/v7_matters20k
export OMP_NUM_THREADS=1
SMALL="--set model.gru_hidden=32 --set model.gru_layers=1 --set data.max_length=60 --set model.dense_hidden=32 --set model.dense_second=16"
BASE="--set train.max_steps=30000 --set train.patience=10 --set train.early_stopping_metric=val_loss --set train.lr=1e-3 --set train.class_weight_power=1.0 --set train.weight_decay=1e-4 --set model.dropout=0.2 --set train.init_bias_to_prior=false --set train.tune_logit_adjustment=false"
declare -A CODE=([v5]=/work/scratch/wt_v5 [v7]=/work/main)
T="/work/main/.venv/bin/python -m tl.cli"
date -u
base() {
  v=$1; s=$2
  [ -d sim_${v}_s$s ] || env PYTHONPATH=${CODE[$v]} $T simulate --survey ztf --n 20000 --seed $s --bts-like --alerts-only --out sim_${v}_s$s --quiet > /dev/null
  [ -f base_${v}_s$s/model.json ] || env PYTHONPATH=/work/main $T train --data sim_${v}_s$s --out base_${v}_s$s --quiet $SMALL $BASE --set train.seed=$s --set data.seed=$s > base_${v}_s$s.log 2>&1
  echo "$(date -u +%T) $v s=$s $(grep -m1 'best epoch' base_${v}_s$s.log)"
}
for s in 1 2 3 4 5; do base v5 $s; base v7 $s; done
date -u
ARGS=""
for v in v5 v7; do for s in 1 2 3 4 5; do ARGS="$ARGS --base $v=base_${v}_s$s"; done; done
PYTHONPATH=/work/main /work/main/.venv/bin/python /work/main/benchmarks/simulator_matters.py $ARGS --data /work/runs/bts --fraction 0.05 --folds 5 --out matters_folds $SMALL
date -u
